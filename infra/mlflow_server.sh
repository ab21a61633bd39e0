#!/usr/bin/env bash
# A shared MLflow tracking server + model registry for a team or a remote ZenML stack:
# SQL backend store and a served artifact store, so clients need no direct storage access.
#
#   infra/mlflow_server.sh                      # sqlite + ./mlartifacts on 127.0.0.1:5000
#   MLFLOW_BACKEND_STORE_URI=postgresql://user:pass@db/mlflow \
#   MLFLOW_ARTIFACTS_DESTINATION=s3://bucket/mlflow MLFLOW_HOST=0.0.0.0 infra/mlflow_server.sh
#
# Then point the pipelines at it: export MLFLOW_TRACKING_URI=http://<host>:<port>
set -euo pipefail
backend=${MLFLOW_BACKEND_STORE_URI:-sqlite:///mlflow-server.db}
artifacts=${MLFLOW_ARTIFACTS_DESTINATION:-./mlartifacts}
host=${MLFLOW_HOST:-127.0.0.1}
port=${MLFLOW_PORT:-5000}
exec mlflow server \
  --backend-store-uri "$backend" \
  --artifacts-destination "$artifacts" \
  --serve-artifacts \
  --host "$host" --port "$port" \
  --workers "${MLFLOW_WORKERS:-2}"

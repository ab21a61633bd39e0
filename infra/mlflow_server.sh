#!/usr/bin/env bash
# A shared MLflow tracking server + model registry for a team or a remote ZenML stack:
# SQL backend store and a served artifact store, so clients need no direct storage access.
#
#   infra/mlflow_server.sh                      # sqlite + ./mlartifacts on 127.0.0.1:5000
#   PGPASSFILE=/secure/pgpass \
#   MLFLOW_BACKEND_STORE_URI=postgresql://mlflow@db:5432/mlflow \
#   MLFLOW_ARTIFACTS_DESTINATION=s3://bucket/mlflow MLFLOW_HOST=0.0.0.0 infra/mlflow_server.sh
#
# A PostgreSQL password never goes in the URI (it would show in `ps` and in MLflow's logs):
# libpq reads it from PGPASSFILE (a ~/.pgpass-style file, mode 0600) or PGPASSWORD. A URI
# holding one is refused. `postgresql://` is served through psycopg 3, the project's driver.
# Then point the pipelines at it: export MLFLOW_TRACKING_URI=http://<host>:<port>
set -euo pipefail
backend=${MLFLOW_BACKEND_STORE_URI:-sqlite:///mlflow-server.db}
artifacts=${MLFLOW_ARTIFACTS_DESTINATION:-./mlartifacts}
host=${MLFLOW_HOST:-127.0.0.1}
port=${MLFLOW_PORT:-5000}
if [[ $backend =~ ^[a-z0-9+]+://[^/@]*:[^/@]*@ ]]; then
  echo "MLFLOW_BACKEND_STORE_URI holds a password: put it in PGPASSFILE or PGPASSWORD instead" >&2
  exit 2
fi
if [[ $backend == postgresql://* || $backend == postgres://* ]]; then
  backend="postgresql+psycopg://${backend#*://}"
fi
exec mlflow server \
  --backend-store-uri "$backend" \
  --artifacts-destination "$artifacts" \
  --serve-artifacts \
  --host "$host" --port "$port" \
  --workers "${MLFLOW_WORKERS:-2}"

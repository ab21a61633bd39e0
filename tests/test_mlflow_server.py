"""Registration and promotion through a real `mlflow server` process (infra/mlflow_server.sh),
on a sqlite backend store and on PostgreSQL; the training pipeline registering there; and a
PostgreSQL password that never shows in the process list or the server's log."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from zenml.client import Client
from zenml.enums import ExecutionStatus

from support import free_port, venv_env, wait_until_healthy
from pipelines import training_pipeline
from ragrouter.bundle import RouterBundle
from ragrouter.registry.model_registry import CHAMPION, register_bundle
from ragrouter.registry.promotion import manual_promote
from ragrouter.registry.tracking import configure_tracking, use_experiment
from ragrouter.routers import build_router

PROJECT_ROOT = Path(__file__).resolve().parents[1]
STRONG, WEAK = "gpt-4-1106-preview", "mistralai/Mixtral-8x7B-Instruct-v0.1"


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory):
    workdir = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    env = venv_env(MLFLOW_PORT=str(port), MLFLOW_WORKERS="1")
    log = (workdir / "server.log").open("w")
    server = subprocess.Popen([str(PROJECT_ROOT / "infra" / "mlflow_server.sh")], cwd=workdir, env=env,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(server, f"{uri}/health", workdir / "server.log")
        yield uri, workdir / "mlartifacts"
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
        log.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def server_uri(request):
    """(tracking URI, the server's artifacts folder) of a server on each backend store."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_server")
    server = request.getfixturevalue("mlflow_postgres_server")
    return server.uri, server.artifacts


def test_register_promote_and_load_through_the_server(server_uri, monkeypatch):
    uri, artifacts = server_uri
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert configure_tracking() == uri
    name = "ragrouter-on-server"
    bundle = RouterBundle(build_router("random", {"seed": 5}), 0.5, 0.5)
    with mlflow.start_run(experiment_id=use_experiment("tests")):
        version = register_bundle(bundle, name, {"P1.APGR": 0.6, "P1.split": "s"})
    manual_promote(name, version, "through the server")  # its lock: a file in the user's cache folder
    assert str(MlflowClient().get_model_version_by_alias(name, CHAMPION).version) == version

    model = mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION}")
    prompts = ["a question", "another question"]
    np.testing.assert_allclose(model.predict(prompts)["p_strong"], bundle.route(prompts)[0])
    # The server holds the artifacts: the client never wrote them locally.
    assert any(artifacts.rglob("bundle.json"))


def test_the_postgres_password_shows_in_no_process_list_or_log(mlflow_postgres_server):
    import psycopg

    server = mlflow_postgres_server
    processes = subprocess.run(["ps", "-eww", "-o", "pid=,args="], capture_output=True, text=True, check=True).stdout
    own = [line for line in processes.splitlines() if server.database in line]
    assert own, "the server's processes name their database on the command line"  # so the check below reads them
    assert server.password not in processes
    log = server.log.read_text()
    assert log.strip(), "the server logged its start-up"
    assert server.password not in log
    # The store's tables belong to the password role: the server connected as that role.
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{server.database}") as db:
        owners = {row[0] for row in db.execute("SELECT tableowner FROM pg_tables WHERE tablename IN ('experiments', 'registered_models')")}
    assert owners == {server.database}


def test_a_backend_uri_holding_a_password_is_refused(tmp_path):
    done = subprocess.run(
        [str(PROJECT_ROOT / "infra" / "mlflow_server.sh")], cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env=venv_env(MLFLOW_BACKEND_STORE_URI="postgresql://mlflow:s3cret-pw@127.0.0.1:5432/mlflow", MLFLOW_PORT=str(free_port())),
    )
    assert done.returncode == 2
    assert "PGPASSFILE" in done.stderr and "s3cret-pw" not in done.stderr + done.stdout


def test_the_training_pipeline_registers_and_promotes_on_the_postgres_server(mlflow_postgres_server, routellm_data, tmp_path, monkeypatch):
    frame = pd.read_csv(sorted((routellm_data / "mmlu").glob("mmlu_*.csv"))[0]).head(60)
    csv = tmp_path / "tiny.csv"
    frame.rename(columns={STRONG: "strong", WEAK: "weak"})[["prompt", "strong", "weak"]].to_csv(csv, index=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_postgres_server.uri)
    monkeypatch.chdir(PROJECT_ROOT)
    training_pipeline(
        sources=[{"name": "tiny", "kind": "table", "path": str(csv), "strong_column": "strong", "weak_column": "weak"}],
        protocols=[{"name": "P1", "kind": "kfold", "source": "tiny"}],
        encoder={"max_tokens": 32},
        routers={"knn": {"k": 5}},
        registration={"router": "knn", "model_name": "ragrouter-on-postgres"},
        promotion={"min_queries": 10},  # its held-out fold is 12 queries
        reports={"dir": str(tmp_path / "reports"), "experiment": "postgres-pipeline"},
    )
    run = Client().get_pipeline("training_pipeline").last_run
    assert run.status == ExecutionStatus.COMPLETED
    client = MlflowClient(tracking_uri=mlflow_postgres_server.uri, registry_uri=mlflow_postgres_server.uri)
    champion = client.get_model_version_by_alias("ragrouter-on-postgres", CHAMPION)
    assert champion.tags["zenml_run_id"] == str(run.id)
    assert "P1.knn.APGR" in client.get_run(champion.run_id).data.metrics
    assert any(mlflow_postgres_server.artifacts.rglob("bundle.json"))

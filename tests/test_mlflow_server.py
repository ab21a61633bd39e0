"""Registration and promotion through a real `mlflow server` process (infra/mlflow_server.sh)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from support import free_port, venv_env, wait_until_healthy
from ragrouter.bundle import RouterBundle
from ragrouter.registry.model_registry import CHAMPION, register_bundle
from ragrouter.registry.promotion import manual_promote
from ragrouter.registry.tracking import configure_tracking, use_experiment
from ragrouter.routers import build_router

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def server_uri(tmp_path_factory: pytest.TempPathFactory):
    workdir = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    env = venv_env(MLFLOW_PORT=str(port), MLFLOW_WORKERS="1")
    log = (workdir / "server.log").open("w")
    server = subprocess.Popen([str(PROJECT_ROOT / "infra" / "mlflow_server.sh")], cwd=workdir, env=env,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(server, f"{uri}/health", workdir / "server.log")
        yield uri, workdir
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
        log.close()


def test_register_promote_and_load_through_the_server(server_uri, monkeypatch):
    uri, workdir = server_uri
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
    assert any((workdir / "mlartifacts").rglob("bundle.json"))

"""`mlflow models serve -m models:/<name>@champion` answers /invocations (a real server process)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pytest

from support import free_port, venv_env, wait_until_healthy
from ragrouter.bundle import RouterBundle
from ragrouter.registry.model_registry import CHAMPION, register_bundle
from ragrouter.registry.tracking import configure_tracking, use_experiment
from ragrouter.routers import build_router

PROMPTS = ["What is 2+2?", "Explain the proof of the four colour theorem.", "Translate 'cat' to French."]


def _post(url: str, payload: dict) -> dict:
    request = urllib.request.Request(url, json.dumps(payload).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def served_champion(tmp_path_factory: pytest.TempPathFactory):
    name = "served-router"
    configure_tracking()
    bundle = RouterBundle(build_router("random", {"seed": 11}), 0.5, 0.5, {"models": {"strong": "big", "weak": "small"}})
    with mlflow.start_run(experiment_id=use_experiment("tests")):
        version = register_bundle(bundle, name, {})
    mlflow.MlflowClient().set_registered_model_alias(name, CHAMPION, version)

    port = free_port()
    log = (tmp_path_factory.mktemp("serve") / "server.log").open("w")
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    server = subprocess.Popen(
        [str(mlflow_cli), "models", "serve", "-m", f"models:/{name}@{CHAMPION}", "--env-manager", "local",
         "-h", "127.0.0.1", "-p", str(port), "-w", "1"],
        stdout=log, stderr=subprocess.STDOUT, env=venv_env(),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(server, f"{base}/ping", Path(log.name))
        yield base, bundle
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def test_invocations_with_a_list_of_prompts(served_champion):
    base, bundle = served_champion
    answer = _post(f"{base}/invocations", {"inputs": PROMPTS})["predictions"]
    scores, to_strong = bundle.route(PROMPTS)
    np.testing.assert_allclose([row["p_strong"] for row in answer], scores)
    assert [row["route_to_strong"] for row in answer] == to_strong.tolist()
    assert [row["model"] for row in answer] == ["big" if s else "small" for s in to_strong]


def test_invocations_with_dataframe_records(served_champion):
    base, bundle = served_champion
    answer = _post(f"{base}/invocations", {"dataframe_records": [{"prompt": p} for p in PROMPTS]})["predictions"]
    np.testing.assert_allclose([row["p_strong"] for row in answer], bundle.route(PROMPTS)[0])

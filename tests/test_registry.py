"""Registration against a real MLflow registry: a sqlite store, and an MLflow server on PostgreSQL
where the store writes differ."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from ragrouter.bundle import RouterBundle
from ragrouter.registry.model_registry import COMPLETE_TAG, load_bundle, register_bundle
from ragrouter.registry.tracking import configure_tracking, use_experiment
from ragrouter.routers import build_router
from support import SQLITE_AND_POSTGRES

PROMPTS = ["What is 2+2?", "Prove Fermat's last theorem.", "Name a colour."]


def _register(model_name: str, seed: int, apgr: float) -> str:
    configure_tracking()
    bundle = RouterBundle(build_router("random", {"seed": seed}), 0.5, 0.5, {"models": {"strong": "big", "weak": "small"}})
    with mlflow.start_run(experiment_id=use_experiment("tests")):
        return register_bundle(bundle, model_name, {"P1.APGR": apgr})


def test_registered_pyfunc_routes_prompts_like_the_bundle_in_memory():
    name = "pyfunc-roundtrip"
    version = _register(name, 4, 0.5)
    model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    expected = build_router("random", {"seed": 4}).score_prompts(PROMPTS)
    from_list = model.predict(pd.DataFrame({"prompt": PROMPTS}))
    np.testing.assert_allclose(from_list["p_strong"], expected)
    np.testing.assert_array_equal(from_list["route_to_strong"], expected >= 0.5)
    assert set(from_list["model"]) <= {"big", "small"}
    assert load_bundle(name, version).router.config.seed == 4
    assert MlflowClient().get_model_version(name, version).tags[COMPLETE_TAG] == "true"


@SQLITE_AND_POSTGRES
def test_registration_is_undone_when_tagging_fails(tracking_store, monkeypatch):
    name = "half-registered"
    configure_tracking()

    def fail(*args, **kwargs):
        raise RuntimeError("registry went away")

    monkeypatch.setattr(MlflowClient, "set_model_version_tag", fail)
    bundle = RouterBundle(build_router("random"), 0.5, 0.5)
    with mlflow.start_run(experiment_id=use_experiment("tests")), pytest.raises(RuntimeError):
        register_bundle(bundle, name, {"P1.APGR": 0.5})
    assert MlflowClient().search_model_versions(f"name = '{name}'") == []


def test_a_sqlite_store_keeps_its_registered_models_beside_its_database(tmp_path, monkeypatch):
    """Not in the working directory's ./mlruns, MLflow's default for a sqlite store."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'store' / 'ml.db'}")
    (tmp_path / "store").mkdir()
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    configure_tracking()
    experiment_id = use_experiment("a/b c")
    assert use_experiment("a/b c") == experiment_id  # found again, not created twice
    with mlflow.start_run(experiment_id=experiment_id) as run:
        register_bundle(RouterBundle(build_router("random"), 0.5, 0.5), "beside-its-store", {"P1.APGR": 0.5})
    artifacts = mlflow.get_experiment(experiment_id).artifact_location
    assert artifacts == (tmp_path / "store" / "mlruns" / "a-b-c").as_uri()
    assert run.info.artifact_uri.startswith(artifacts)
    assert list((tmp_path / "store" / "mlruns").rglob("MLmodel")) and not list(workdir.iterdir())

"""Registration and promotion against real MLflow stores: the session's sqlite store, and an
MLflow server on PostgreSQL (infra/mlflow_server.sh). The tests whose store writes differ
(a version registered, aliases moved, a lookup that misses, a registration rolled back) run
against both; those that only read back what they wrote run on sqlite (tests/test_mlflow_server.py
loads a registered model back through the PostgreSQL server)."""

from __future__ import annotations

import os

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from ragrouter.bundle import RouterBundle
from ragrouter.registry.model_registry import (
    CHALLENGER,
    CHAMPION,
    apply_promotion,
    decide_promotion,
    load_bundle,
    register_bundle,
)
from ragrouter.registry.tracking import configure_tracking, use_experiment
from ragrouter.routers import build_router

PROMPTS = ["What is 2+2?", "Prove Fermat's last theorem.", "Name a colour."]


SQLITE_AND_POSTGRES = pytest.mark.parametrize("tracking_store", ["sqlite", "postgresql-server"], indirect=True)


@pytest.fixture(params=["sqlite"])
def tracking_store(request):
    """MLFLOW_TRACKING_URI for a test: the sqlite store, or the server on PostgreSQL where a
    test is marked SQLITE_AND_POSTGRES."""
    if request.param == "sqlite":
        yield os.environ["MLFLOW_TRACKING_URI"]
        return
    server = request.getfixturevalue("mlflow_postgres_server")
    previous = os.environ["MLFLOW_TRACKING_URI"]
    os.environ["MLFLOW_TRACKING_URI"] = server.uri
    try:
        yield server.uri
    finally:
        os.environ["MLFLOW_TRACKING_URI"] = previous
        configure_tracking()


def _register(model_name: str, seed: int, apgr: float, split: str = "s1") -> str:
    configure_tracking()
    bundle = RouterBundle(build_router("random", {"seed": seed}), 0.5, 0.5, {"models": {"strong": "big", "weak": "small"}})
    with mlflow.start_run(experiment_id=use_experiment("tests")):
        return register_bundle(bundle, model_name, {"P1.APGR": apgr, "P1.split": split})


def _promote(model_name: str, version: str, apgr: float, split: str = "s1", reevaluated: float | None = None):
    calls = []

    def reevaluate(champion):
        calls.append(str(champion.version))
        return reevaluated

    decision = decide_promotion(model_name, version, "P1.APGR", "P1.split", apgr, split, reevaluate)
    apply_promotion(model_name, version, decision)
    return decision, calls


def _alias(model_name: str, alias: str) -> str:
    return str(MlflowClient().get_model_version_by_alias(model_name, alias).version)


@SQLITE_AND_POSTGRES
def test_champion_moves_only_to_a_version_at_least_as_good(tracking_store):
    name = "promotion-both-ways"
    v1 = _register(name, 1, 0.60)
    assert _promote(name, v1, 0.60)[0].alias == CHAMPION
    v2 = _register(name, 2, 0.55)
    decision, _ = _promote(name, v2, 0.55)
    assert decision.alias == CHALLENGER and "0.5500 < champion v1 0.6000" in decision.reason
    assert _alias(name, CHAMPION) == v1 and _alias(name, CHALLENGER) == v2
    v3 = _register(name, 3, 0.60)
    assert _promote(name, v3, 0.60)[0].alias == CHAMPION  # ties promote: "at least"
    assert _alias(name, CHAMPION) == v3
    assert MlflowClient().get_model_version(name, v2).tags["promotion"].startswith("P1.APGR 0.5500 <")


@SQLITE_AND_POSTGRES
def test_a_version_missing_from_the_store_fails_clearly_and_moves_no_alias(tracking_store):
    name = "promotion-missing-version"
    v1 = _register(name, 1, 0.60)
    _promote(name, v1, 0.60)
    with pytest.raises(LookupError, match=r"version 7 is not in the MLflow registry at .*enable_cache: false"):
        _promote(name, "7", 0.90)  # e.g. a cached registration from a store since deleted
    assert _alias(name, CHAMPION) == v1
    # a registry that has never heard of the model: same error, nothing created
    with pytest.raises(LookupError, match="'never-registered' version 1 is not in"):
        _promote("never-registered", "1", 0.90)


def test_a_champion_from_another_split_is_re_evaluated_on_this_one(tracking_store):
    name = "promotion-other-split"
    v1 = _register(name, 1, 0.70, split="old")
    _promote(name, v1, 0.70, split="old")
    v2 = _register(name, 2, 0.65, split="new")
    decision, calls = _promote(name, v2, 0.65, split="new", reevaluated=0.62)
    assert calls == [v1] and decision.alias == CHAMPION and decision.champion_metric == 0.62
    assert "re-evaluated" in decision.reason


def test_registered_pyfunc_routes_prompts_like_the_bundle_in_memory(tracking_store):
    name = "pyfunc-roundtrip"
    version = _register(name, 4, 0.5)
    model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    expected = build_router("random", {"seed": 4}).score_prompts(PROMPTS)
    from_list = model.predict(pd.DataFrame({"prompt": PROMPTS}))
    np.testing.assert_allclose(from_list["p_strong"], expected)
    np.testing.assert_array_equal(from_list["route_to_strong"], expected >= 0.5)
    assert set(from_list["model"]) <= {"big", "small"}
    assert load_bundle(name, version).router.config.seed == 4


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

"""Lineage: two training runs on the mini data (the first on ZenML's default stack, the second on
`ragrouter-local` with the MLflow experiment tracker), then `ragrouter lineage` read back from
the real ZenML store and MLflow registry (isolated by conftest.py)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from zenml.client import Client
from zenml.enums import ExecutionStatus, ModelStages

import ragrouter_cli
from pipelines import training_pipeline
from ragrouter.registry.model_registry import CHAMPION, load_bundle, register_bundle
from stack.local import register_local_stack
from test_pipeline import _mini_params, mini_csv  # noqa: F401  (fixture)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
MODEL = "ragrouter-lineage-test"


def _lineage(*args: str) -> subprocess.CompletedProcess:
    """`ragrouter lineage ...` as a user runs it: a new process, this checkout's code."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "ragrouter_cli", "lineage", *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)


@pytest.fixture(scope="module")
def two_versions(mini_csv, tmp_path_factory):  # noqa: F811
    """v1 (knn k=10, default stack, no tracker) and v2 (k=5, the local stack with the tracker):
    the two pipeline runs."""
    client = Client()
    previous_stack, store = client.active_stack_model.name, os.environ["MLFLOW_TRACKING_URI"]
    reports = tmp_path_factory.mktemp("lineage-reports")
    training_pipeline(**_mini_params(mini_csv, MODEL, reports, promotion={"min_queries": 50}))
    first = client.get_pipeline("training_pipeline").last_run
    register_local_stack()
    try:
        training_pipeline(**_mini_params(mini_csv, MODEL, reports, routers={"knn": {"k": 5}}, promotion={"min_queries": 50}))
        second = client.get_pipeline("training_pipeline").last_run
    finally:  # the session's other tests: the default stack, and the store the tracker left unset
        client.activate_stack(previous_stack)
        os.environ["MLFLOW_TRACKING_URI"] = store
        mlflow.set_tracking_uri(store)
    assert (first.status, second.status) == (ExecutionStatus.COMPLETED, ExecutionStatus.COMPLETED)
    return first, second


def test_lineage_of_the_champion_names_data_code_run_and_decision(two_versions, mini_csv, capsys):  # noqa: F811
    first, second = two_versions
    champion = MlflowClient().get_model_version_by_alias(MODEL, CHAMPION)
    done = _lineage(f"models:/{MODEL}@{CHAMPION}", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    lineage = json.loads(done.stdout)

    assert lineage["model"]["version"] == str(champion.version) and CHAMPION in lineage["model"]["aliases"]
    registering = first if champion.tags["zenml_run_id"] == str(first.id) else second
    assert lineage["zenml"]["run_id"] == str(registering.id) and lineage["zenml"]["run_name"] == registering.name
    # the data file, by its content
    source = lineage["data"]["mini"]
    assert source["records"] == len(registering.steps["ingest_data"].outputs["routing_records"][0].load()) > 250
    assert source["files"] == {str(mini_csv.resolve()): hashlib.sha256(mini_csv.read_bytes()).hexdigest()}
    # the code: this checkout's commit
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True).stdout.strip()
    assert lineage["code"]["git_commit"] == head and lineage["code"]["git_dirty"] in ("true", "false")
    # the MLflow run and its metrics
    assert lineage["mlflow_run"]["id"] == champion.run_id and "P1.knn.APGR" in lineage["mlflow_run"]["metrics"]
    # the decision: its MLflow tags and the promote_router artifact of the run that decided
    assert lineage["promotion"]["tags"] and all(k.startswith("promotion") for k in lineage["promotion"]["tags"])
    decisions = lineage["promotion"]["artifacts"]
    assert len(decisions) == 1 and decisions[0]["value"]["alias"] == CHAMPION
    # every input artifact version, each one tagged on the MLflow version
    by_output = {(a["step"], a["output"]): a for a in lineage["artifacts"]}
    for key in [("validate_data", "validation_report"), ("make_labels", "labels"), ("extract_features", "query_features"),
                ("build_index", "faiss_index"), ("ingest_data", "routing_records")]:
        assert lineage["zenml"]["artifact_ids"][".".join(key)] == by_output[key]["id"]
    assert lineage["validation"]["success"] and lineage["validation"]["rows"] == source["records"]
    assert lineage["config"]["routers"]["knn"]["k"] in (10, 5)

    assert ragrouter_cli.main(["lineage", f"models:/{MODEL}@{CHAMPION}"]) == 0
    text = capsys.readouterr().out
    assert hashlib.sha256(mini_csv.read_bytes()).hexdigest() in text and head in text and registering.name in text


def test_lineage_diff_shows_the_config_change_and_the_same_data(two_versions, capsys):
    assert ragrouter_cli.main(["lineage", "diff", f"models:/{MODEL}/1", f"models:/{MODEL}/2", "--json"]) == 0
    diff = json.loads(capsys.readouterr().out)["diff"]
    assert {"key": "routers.knn.k", "a": 10, "b": 5} in diff["config"]
    assert diff["data"] == []  # the same file, the same records
    assert any(change["key"] == "P1.knn.APGR" for change in diff["metrics"])
    assert ragrouter_cli.main(["lineage", "diff", f"models:/{MODEL}/1", f"models:/{MODEL}/2"]) == 0
    text = capsys.readouterr().out
    assert "routers.knn.k: 10 -> 5" in text and "data: same" in text


def test_the_tracker_links_steps_to_the_mlflow_run_and_the_zenml_model_mirrors_the_alias(two_versions):
    first, second = two_versions
    client = MlflowClient()
    v1, v2 = client.get_model_version(MODEL, "1"), client.get_model_version(MODEL, "2")
    # With the tracker (second run) each logging step ran in the one MLflow run the tracker
    # started, and ZenML recorded it on the step; without it (first run) no step names a run.
    for step in ("evaluate_routers", "publish_report", "register_router"):
        metadata = Client().get_run_step(second.steps[step].id).run_metadata
        assert metadata["mlflow_run_id"] == v2.run_id and "experiment_tracker_url" in metadata
        assert "mlflow_run_id" not in first.steps[step].run_metadata
    assert client.get_run(v2.run_id).data.tags["zenml_run_id"] == str(second.id)
    assert client.get_run(v1.run_id).data.tags["zenml_run_id"] == str(first.id)

    zenml = Client()
    for run, version in ((first, v1), (second, v2)):
        model_version = zenml.get_model_version(MODEL, version.tags["zenml.model_version_id"])
        assert str(model_version.id) in [str(mv.id) for mv in zenml.list_model_versions(MODEL, size=50).items]
        assert model_version.run_metadata["mlflow_model_version"] == str(version.version)
        assert str(run.id) in [str(r) for r in model_version.pipeline_run_ids.values()]
    champion = client.get_model_version_by_alias(MODEL, CHAMPION)
    production = zenml.get_model_version(MODEL, ModelStages.PRODUCTION)
    assert production.run_metadata["mlflow_model_version"] == str(champion.version)


def test_unknown_models_and_versions_without_zenml_stop_with_exit_2(two_versions, capsys):
    cases = {
        f"models:/no-such-model@{CHAMPION}": "no registered model 'no-such-model'",
        f"models:/{MODEL}@nobody": "has no alias 'nobody'",
        f"models:/{MODEL}/99": "has no version 99",
        "ragrouter@champion": "not a registered model",
    }
    # a version registered by hand, outside any pipeline run
    with mlflow.start_run():
        register_bundle(load_bundle(MODEL, "1"), "ragrouter-lineage-by-hand", {})
    capsys.readouterr()  # the download's progress bar
    cases["models:/ragrouter-lineage-by-hand/1"] = "registered without ZenML"
    for uri, message in cases.items():
        assert ragrouter_cli.main(["lineage", uri]) == 2, uri
        captured = capsys.readouterr()
        assert captured.err.startswith("error: ") and message in captured.err and "Traceback" not in captured.out + captured.err, (uri, captured.err)
    done = _lineage(f"models:/{MODEL}/99")  # as a user sees it
    assert done.returncode == 2 and done.stderr.strip().endswith("has no version 99") and "Traceback" not in done.stderr

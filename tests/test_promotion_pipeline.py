"""The gate through the real training pipeline (ZenML store, MLflow registry, FAISS; isolated by
conftest.py), on one model across a sequence of runs that share their cached steps:

1. ~60 evaluated queries: under promotion.min_queries (200), nothing promoted;
2. min_queries 50: the same version becomes the first champion (it is the knn baseline);
3. six rows: refused at validation (exit 2), nothing promoted;
4. relabelled data: the fingerprint changes, the champion's recipe is re-scored, no promotion;
5. a run SIGKILLed after its version exists, untagged: no alias moves; the next run deletes
   the unfinished version, closes the RUNNING MLflow run as KILLED, reuses every cached step,
   and is itself killed after deciding (under the lock) to promote: no alias moves; the run
   after it promotes that version from the cache.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from zenml.client import Client
from zenml.enums import ExecutionStatus

import ragrouter_cli
from ragrouter.registry.decision import CHALLENGER, CHAMPION
from ragrouter.registry.kill_point import KILL_AT
from ragrouter.registry.model_registry import COMPLETE_TAG
from ragrouter.registry.promotion import HISTORY_TAG
from test_pipeline import _mini_params, mini_csv  # noqa: F401  (fixture)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
MODEL = "ragrouter-gate-test"
UPSTREAM = ("ingest_data", "validate_data", "make_labels", "make_splits", "extract_features", "build_index", "score_knn", "evaluate_routers", "train_router")


def _champion() -> str | None:
    try:
        return str(MlflowClient().get_model_version_by_alias(MODEL, CHAMPION).version)
    except MlflowException:
        return None


def _versions() -> dict[str, dict[str, str]]:
    return {str(v.version): v.tags for v in MlflowClient().search_model_versions(f"name = '{MODEL}'")}


def _config(path: Path, params: dict, **steps) -> Path:
    path.write_text(yaml.safe_dump({"parameters": params, **({"steps": steps} if steps else {})}))
    return path


def _cli(config: Path, **env: str) -> subprocess.CompletedProcess:
    """`ragrouter run training` from this checkout, in a process of its own."""
    return subprocess.run([sys.executable, "-m", "ragrouter_cli", "run", "training", "--config", str(config)],
                          cwd=PROJECT_ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=600)


def _last_run():
    return Client().get_pipeline("training_pipeline").last_run


def _decision(run):
    return run.steps["promote_router"].outputs["promotion_decision"][0].load()


@pytest.fixture(scope="module")
def runs(mini_csv, tmp_path_factory):  # noqa: F811  (the fixture imported above)
    """The sequence of runs, once; each test reads what it checks."""
    root = tmp_path_factory.mktemp("gate")
    cwd = os.getcwd()
    os.chdir(PROJECT_ROOT)
    try:
        yield _run_sequence(mini_csv, root)
    finally:
        os.chdir(cwd)


def _run_sequence(mini_csv: Path, root: Path) -> dict:
    csv = root / "mini.csv"
    shutil.copy(mini_csv, csv)
    params = _mini_params(csv, MODEL, root / "reports")
    seen: dict = {}

    assert ragrouter_cli.main(["run", "training", "--config", str(_config(root / "default.yaml", params))]) == 0
    seen["too_few"] = (_decision(_last_run()), _champion())
    params["promotion"] = {"min_queries": 50}
    assert ragrouter_cli.main(["run", "training", "--config", str(_config(root / "fifty.yaml", params))]) == 0
    seen["first"] = (_last_run(), _decision(_last_run()), _champion(), dict(_versions()))

    tiny = root / "tiny.csv"
    pd.read_csv(mini_csv).iloc[::50].to_csv(tiny, index=False)  # six rows, from six subjects
    tiny_config = _config(root / "tiny.yaml", _mini_params(tiny, MODEL, root / "reports"))
    seen["tiny"] = (ragrouter_cli.main(["run", "training", "--config", str(tiny_config)]), _last_run(), _champion())

    frame = pd.read_csv(csv)
    flipped = frame.index % 3 == 0
    frame.loc[flipped, ["big_ok", "small_ok"]] = frame.loc[flipped, ["small_ok", "big_ok"]].to_numpy()  # the same prompts, relabelled
    frame.to_csv(csv, index=False)
    relabelled = _config(root / "relabelled.yaml", params)
    assert ragrouter_cli.main(["run", "training", "--config", str(relabelled)]) == 0
    seen["relabelled"] = (_last_run(), _decision(_last_run()), _champion(), dict(_versions()))

    # killed once its version exists (register_router re-runs; everything before it is cached)
    reregister = _config(root / "reregister.yaml", params, register_router={"enable_cache": False})
    seen["killed_registering"] = (_cli(reregister, **{KILL_AT: "registered"}), _champion(), dict(_versions()))
    # the next run, with a gate any candidate passes, cleans up, registers again, and is killed
    # once it has decided to promote, before the alias moves
    params["promotion"] = {"min_queries": 50, "margin": -1.0, "tolerance": 1.0}
    lenient = _config(root / "lenient.yaml", params, register_router={"enable_cache": False})
    seen["killed_deciding"] = (_cli(lenient, **{KILL_AT: "decided"}), _last_run(), _champion(), dict(_versions()))
    assert ragrouter_cli.main(["run", "training", "--config", str(_config(root / "lenient-cached.yaml", params))]) == 0
    seen["promoted"] = (_last_run(), _decision(_last_run()), _champion())
    return seen


def test_too_few_queries_promote_nothing_then_the_first_champion_must_pass_the_baseline(runs):
    decision, champion = runs["too_few"]
    assert champion is None and decision.alias == CHALLENGER and decision.version == "1"
    assert 50 <= decision.queries < 200  # P1's held-out fold of 300 rows
    assert decision.reason.startswith(f"{decision.queries} evaluated queries < promotion.min_queries 200")
    run, first, champion, versions = runs["first"]
    assert champion == "1" and first.alias == CHAMPION and first.champion_read is None and first.queries == decision.queries
    [baseline] = first.comparisons  # the candidate is the `knn` entry, so it is the baseline and ties it
    assert baseline.against == "baseline knn" and baseline.candidate == baseline.other and baseline.passed
    assert run.steps["register_router"].status == ExecutionStatus.CACHED
    tags = versions["1"]
    assert tags["promotion.decision"] == CHAMPION and tags[COMPLETE_TAG] == "true"
    assert json.loads(tags["promotion.record"])["comparisons"][0]["rule"] == "candidate >= baseline"


def test_six_rows_are_refused_at_validation_and_move_no_alias(runs):
    code, run, champion = runs["tiny"]
    assert code == 2 and run.status == ExecutionStatus.FAILED and champion == "1"
    report = run.steps["validate_data"].outputs["validation_report"][0].load()
    assert not report.success and "6 row(s); at least 50 needed" in str(report.problems)
    assert "register_router" not in run.steps


def test_relabelled_data_re_scores_the_champion_on_the_new_labels(runs):
    first_run, _, _, first_versions = runs["first"]
    run, decision, champion, versions = runs["relabelled"]
    new = decision.version
    assert champion == "1" and decision.alias == CHALLENGER and decision.champion_read == "1"
    assert versions[new]["P1.split"] != first_versions["1"]["P1.split"]  # the same ids, other labels
    assert decision.split_fingerprint == versions[new]["P1.split"]
    gain = decision.comparisons[1]
    # the champion's recipe (knn, k=10) fitted on the relabelled folds scores as the candidate does,
    # not as its recorded APGR on the old labels
    assert gain.against == "champion v1" and gain.other == pytest.approx(gain.candidate)
    assert abs(gain.other - float(first_versions["1"]["P1.APGR"])) > 1e-3
    assert "fails interval low > margin 0.0" in decision.reason


def test_a_run_killed_while_registering_moves_nothing_and_the_next_run_cleans_up_and_resumes(runs):
    killed, champion, versions = runs["killed_registering"]
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    unfinished = [v for v, tags in versions.items() if COMPLETE_TAG not in tags]
    assert champion == "1" and len(unfinished) == 1
    killed, run, champion, after = runs["killed_deciding"]  # the next run
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert unfinished[0] not in after and all(tags.get(COMPLETE_TAG) == "true" for tags in after.values())
    assert champion == "1"
    assert {run.steps[name].status for name in UPSTREAM} == {ExecutionStatus.CACHED}
    assert run.steps["register_router"].status == ExecutionStatus.COMPLETED
    experiment = MlflowClient().get_experiment_by_name("pipeline-tests")
    statuses = [r.info.status for r in MlflowClient().search_runs([experiment.experiment_id])]
    assert "RUNNING" not in statuses and "KILLED" in statuses


def test_a_run_killed_after_deciding_moves_nothing_and_the_rerun_promotes(runs):
    _, killed_run, champion, _ = runs["killed_deciding"]
    assert champion == "1"  # it had decided for the champion alias
    run, decision, champion = runs["promoted"]
    assert decision.alias == CHAMPION and decision.champion_read == "1" and champion == decision.version
    assert run.steps["register_router"].status == ExecutionStatus.CACHED
    # the cached registration is the last one made with caching on (the relabelled run's); the
    # killed run's, made with caching off, stays a complete version that nothing promoted
    assert decision.version == runs["relabelled"][1].version != killed_run.steps["register_router"].outputs["model_version"][0].load()
    assert json.loads(MlflowClient().get_registered_model(MODEL).tags[HISTORY_TAG]) == ["1", decision.version]
    assert ragrouter_cli.main(["rollback", MODEL, "--reason", "test"]) == 0
    assert _champion() == "1"

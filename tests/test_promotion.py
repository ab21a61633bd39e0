"""The promotion gate, compare-and-set under the lock, and promote/rollback by hand, against a
real MLflow sqlite registry (conftest.py); two real processes race for the champion alias."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

import ragrouter_cli
from promotion_race import synthetic_scores
from ragrouter.bundle import RouterBundle
from ragrouter.config import PromotionConfig
from ragrouter.registry.decision import CHALLENGER, CHAMPION, PromotionDecision
from ragrouter.registry.gate import gate_decision
from ragrouter.registry.model_registry import COMPLETE_TAG, UnknownVersionError, register_bundle
from ragrouter.registry.promotion import HISTORY_TAG, promote_by_gate
from ragrouter.registry.promotion_lock import lock_file, promotion_lock
from ragrouter.registry.tracking import configure_tracking, use_experiment
from ragrouter.routers import build_router
from support import SQLITE_AND_POSTGRES

PROJECT_ROOT = Path(__file__).resolve().parents[1]
GOOD, MEDIUM, POOR, RANDOMISH = 0.3, 1.0, 3.0, 5.0  # score noise: less is a better router


_LOGGED: dict[str, str] = {}  # tracking URI -> the logged router's source


@pytest.fixture
def logged_model(tracking_store: str) -> str:
    """One router logged once per registry (a real pyfunc); the tests register it as many versions."""
    if tracking_store not in _LOGGED:
        bundle = RouterBundle(build_router("random", {"seed": 0}), 0.5, 0.5)
        with mlflow.start_run(experiment_id=use_experiment("tests")):
            version = register_bundle(bundle, "gate-logged-once", {})
        _LOGGED[tracking_store] = MlflowClient().get_model_version("gate-logged-once", version).source
    return _LOGGED[tracking_store]


def _register(model_name: str, noise: float, source: str) -> str:
    """A new complete version of `source`, its synthetic scores' noise in a tag."""
    version = str(mlflow.register_model(source, model_name).version)
    for key, value in (("test.noise", str(noise)), (COMPLETE_TAG, "true")):
        MlflowClient().set_model_version_tag(model_name, version, key, value)
    return version


def _gate(model_name, version, noise, champion=None, champion_noise=None, **config):
    return lambda read: gate_decision(
        model_name, version, synthetic_scores(noise), synthetic_scores(RANDOMISH), read,
        synthetic_scores(champion_noise) if read else None, PromotionConfig(**config), "synthetic", resamples=300,
    )


def _alias(model_name: str, alias: str = CHAMPION) -> str | None:
    try:
        return str(MlflowClient().get_model_version_by_alias(model_name, alias).version)
    except mlflow.exceptions.MlflowException:
        return None


def test_the_gate_promotes_only_a_clear_win_over_champion_and_baseline_on_enough_queries():
    noisy = synthetic_scores(POOR)
    first = gate_decision("m", "1", noisy, synthetic_scores(RANDOMISH), None, None, PromotionConfig(), "f")
    assert first.alias == CHAMPION and first.reason.endswith("(no champion yet)") and first.queries == 600
    [baseline] = first.comparisons
    assert baseline.against == "baseline knn" and baseline.passed and baseline.candidate > baseline.other
    # worse than the baseline, even with no champion: not promoted
    assert gate_decision("m", "1", synthetic_scores(RANDOMISH), noisy, None, None, PromotionConfig(), "f").alias == CHALLENGER

    better = gate_decision("m", "2", synthetic_scores(GOOD), synthetic_scores(RANDOMISH), "1", noisy, PromotionConfig(), "f")
    assert better.alias == CHAMPION, better.reason
    gain, guard = better.comparisons[1:]
    assert (gain.against, gain.metric, guard.metric) == ("champion v1", "APGR", "CPT50")
    assert 0 < gain.low <= gain.candidate - gain.other <= gain.high and guard.high <= 0.05
    # the same router again: a tie is no win
    tie = gate_decision("m", "2", noisy, synthetic_scores(RANDOMISH), "1", noisy, PromotionConfig(), "f")
    assert tie.alias == CHALLENGER and "fails interval low > margin 0.0" in tie.reason
    assert (tie.comparisons[1].low, tie.comparisons[1].high) == (0.0, 0.0)
    # a margin the win does not clear, a guard it breaks, too few queries: each stops it
    assert gate_decision("m", "2", synthetic_scores(GOOD), noisy, "1", noisy, PromotionConfig(margin=0.9), "f").alias == CHALLENGER
    guarded = gate_decision("m", "2", synthetic_scores(GOOD), noisy, "1", noisy, PromotionConfig(tolerance=-0.9), "f")
    assert guarded.alias == CHALLENGER and guarded.reason.startswith("CPT50")
    few = gate_decision("m", "2", synthetic_scores(GOOD, 150), synthetic_scores(RANDOMISH, 150), "1", synthetic_scores(POOR, 150), PromotionConfig(), "f")
    assert few.alias == CHALLENGER and few.reason.startswith("150 evaluated queries < promotion.min_queries 200")
    assert PromotionDecision.from_dict(json.loads(json.dumps(better.to_dict()))) == better


@SQLITE_AND_POSTGRES
def test_a_decision_is_recorded_on_the_version_and_the_champion_history(logged_model):
    name = "gate-records"
    v1, v2, v3 = (_register(name, noise, logged_model) for noise in (POOR, GOOD, MEDIUM))
    assert promote_by_gate(name, v1, _gate(name, v1, POOR)).alias == CHAMPION
    decision = promote_by_gate(name, v2, _gate(name, v2, GOOD, champion_noise=POOR))
    assert decision.alias == CHAMPION and decision.champion_read == v1
    assert promote_by_gate(name, v3, _gate(name, v3, MEDIUM, champion_noise=GOOD)).alias == CHALLENGER
    assert (_alias(name), _alias(name, CHALLENGER)) == (v2, v3)
    tags = MlflowClient().get_model_version(name, v2).tags
    assert tags["promotion.decision"] == CHAMPION and tags["promotion.champion_read"] == v1 and tags["promotion.decided_by"] == "gate"
    low, high = json.loads(tags["promotion.champion.APGR.difference_interval"])
    assert 0 < low < high and PromotionDecision.from_dict(json.loads(tags["promotion.record"])) == decision
    assert json.loads(MlflowClient().get_registered_model(name).tags[HISTORY_TAG]) == [v1, v2]
    # the champion promoted again (a cached re-run): nothing moves, nothing is re-decided
    again = promote_by_gate(name, v2, lambda read: pytest.fail("re-decided"))
    assert again.alias == CHAMPION and "already the champion" in again.reason


def test_unknown_and_unfinished_versions_are_refused(logged_model):
    name = "gate-refusals"
    v1 = _register(name, POOR, logged_model)
    with pytest.raises(UnknownVersionError, match=r"version 7 is not in the MLflow registry at .*enable_cache: false"):
        promote_by_gate(name, "7", _gate(name, "7", GOOD))
    with pytest.raises(UnknownVersionError, match="'never-registered' version 1 is not in"):
        promote_by_gate("never-registered", "1", _gate("never-registered", "1", GOOD))
    MlflowClient().delete_model_version_tag(name, v1, COMPLETE_TAG)
    with pytest.raises(UnknownVersionError, match="never completely registered"):
        promote_by_gate(name, v1, _gate(name, v1, GOOD))
    assert _alias(name) is None


@SQLITE_AND_POSTGRES
def test_two_promotions_at_once_leave_the_better_candidate_champion(logged_model, tmp_path):
    """Both read champion v1 and decide before either moves the alias; whichever gets the lock
    second finds the champion moved and decides again against the new one."""
    name = "gate-race"
    v1 = _register(name, POOR, logged_model)
    promote_by_gate(name, v1, _gate(name, v1, POOR))
    medium, good = _register(name, MEDIUM, logged_model), _register(name, GOOD, logged_model)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT), str(PROJECT_ROOT / "tests")])}
    racers = [
        subprocess.Popen([sys.executable, str(PROJECT_ROOT / "tests" / "promotion_race.py"), name, v, str(barrier)],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for v in (medium, good)
    ]
    outputs = [r.communicate(timeout=300) for r in racers]
    assert [r.returncode for r in racers] == [0, 0], [err[-2000:] for _, err in outputs]
    decisions = {d.version: d for d in (PromotionDecision.from_dict(json.loads(out.strip().splitlines()[-1])) for out, _ in outputs)}
    assert _alias(name) == good and decisions[good].alias == CHAMPION
    assert decisions[medium].champion_read in (v1, good)  # it read v1 and won first, or decided again against the better one
    history = json.loads(MlflowClient().get_registered_model(name).tags[HISTORY_TAG])
    assert history in ([v1, good], [v1, medium, good])
    assert (decisions[medium].alias == CHAMPION) == (history == [v1, medium, good])
    assert lock_file(mlflow.get_registry_uri()).name.endswith(".lock")  # beside a sqlite database, or in the cache for a server


@SQLITE_AND_POSTGRES
def test_promote_and_rollback_by_hand(logged_model, capsys, monkeypatch):
    name = "gate-by-hand"
    v1, v2 = _register(name, POOR, logged_model), _register(name, MEDIUM, logged_model)
    monkeypatch.setenv("USER", "alice")
    assert ragrouter_cli.main(["promote", name, v1]) == 0
    assert ragrouter_cli.main(["promote", name, v2, "--reason", "hotfix for the sports traffic"]) == 0
    assert _alias(name) == v2 and "is the champion (was v1)" in capsys.readouterr().out
    tags = MlflowClient().get_model_version(name, v2).tags
    assert tags["promotion.reason"] == "manual by alice: hotfix for the sports traffic" and tags["promotion.decided_by"] == "manual by alice"
    assert tags["promotion.champion_read"] == v1
    assert ragrouter_cli.main(["rollback", name, "--reason", "hotfix broke math"]) == 0
    assert _alias(name) == v1 and MlflowClient().get_model_version(name, v1).tags["promotion.reason"] == "manual by alice: hotfix broke math"
    assert ragrouter_cli.main(["rollback", name]) == 2  # v1 was the first champion
    captured = capsys.readouterr()
    assert "has no earlier champion to roll back to (champion: " + v1 in captured.err and "Traceback" not in captured.err
    assert _alias(name) == v1
    for argv, expected in ((["promote", name, "99"], "version 99 is not in the MLflow registry"),
                           (["promote", "no-such-model", "1"], "'no-such-model' version 1 is not in"),
                           (["rollback", "no-such-model"], "'no-such-model' is not in the MLflow registry")):
        assert ragrouter_cli.main(argv) == 2
        captured = capsys.readouterr()
        assert expected in captured.err and "Traceback" not in captured.err + captured.out
    assert _alias(name) == v1


def test_the_postgresql_lock_keeps_a_second_promotion_waiting():
    """The advisory lock of a PostgreSQL registry (the server at 127.0.0.1:5432, no database created)."""
    psycopg = pytest.importorskip("psycopg")
    try:
        psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", connect_timeout=2).close()
    except psycopg.OperationalError:
        pytest.skip("no PostgreSQL at 127.0.0.1:5432")
    mlflow.set_registry_uri("postgresql+psycopg://postgres@127.0.0.1:5432/postgres")  # only the lock connects to it
    held, release = threading.Event(), threading.Event()

    def first():
        with promotion_lock("pg-lock-test"):
            held.set()
            release.wait(30)

    holder = threading.Thread(target=first)
    holder.start()
    assert held.wait(30)
    with pytest.raises(TimeoutError, match="another promotion of 'pg-lock-test' has held its PostgreSQL advisory lock"):
        with promotion_lock("pg-lock-test", timeout_s=0.5):
            pass
    with promotion_lock("another-model", timeout_s=5):  # one lock per model
        pass
    release.set()
    start = time.monotonic()
    with promotion_lock("pg-lock-test", timeout_s=30):
        assert time.monotonic() - start < 30
    holder.join()
    configure_tracking()  # the tests' sqlite registry again

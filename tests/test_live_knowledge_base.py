"""The live knowledge base: feedback recorded through one served router reaches every router
that reads the same log (a real MMLU slice, the real encoder and FAISS, a JSONL log)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ragrouter.labels import Labels, gains
from ragrouter.routers import Queries, Router, TrainingSet, build_router
from ragrouter.serving.feedback import JsonlFeedbackStore, Outcome, outcome_from_feedback
from ragrouter.serving.knowledge_base import LiveKnowledgeBase
from ragrouter.training import train_bundle

TRAINED = 200


@pytest.fixture(scope="module")
def labelled(mmlu_vectors):
    """The first TRAINED queries train, the rest are traffic."""
    records, queries = mmlu_vectors
    frame = records.frame
    return queries, gains(records), frame["strong_quality"].to_numpy(), frame["weak_quality"].to_numpy()


def _knn(labelled) -> Router:
    """A knn router trained on the first TRAINED queries (its own index: one TrainingSet each)."""
    queries, gain, _, _ = labelled
    rows = np.arange(TRAINED)
    return build_router("knn", {"k": 10}).fit(TrainingSet(_rows(queries, rows), gain[rows]))


def _rows(queries: Queries, rows: np.ndarray) -> Queries:
    return Queries([queries.prompts[i] for i in rows], queries.features.subset(rows))


def test_feedback_recorded_by_one_process_reaches_another_and_a_restarted_one_replays_it_all(labelled, tmp_path):
    queries, _, strong, weak = labelled
    traffic = np.arange(TRAINED, len(queries.prompts))
    outcomes = [Outcome(queries.prompts[i], strong[i], weak[i], "both", 100.0 + n) for n, i in enumerate(traffic)]
    log = tmp_path / "feedback.jsonl"
    one, other = LiveKnowledgeBase(_knn(labelled), JsonlFeedbackStore(log)), LiveKnowledgeBase(_knn(labelled), JsonlFeedbackStore(log))
    assert one.learns and other.learns and one.size == other.size == TRAINED
    asked = _rows(queries, traffic)
    static = other.router.score(asked)

    one.record(outcomes[:30])
    assert one.size == TRAINED  # recorded, not yet remembered: the scoring thread syncs
    assert other.sync() == 30 and other.size == TRAINED + 30 and other.sync() == 0
    moved = other.router.score(asked)
    target = (np.array([o.gain for o in outcomes[:30]]) + 1) / 2
    # the queries with feedback now find their own outcome among their neighbours
    assert np.abs(moved[:30] - target).mean() < np.abs(static[:30] - target).mean() - 0.05
    one.record(outcomes[30:])
    assert one.sync() == len(outcomes) and other.sync() == len(outcomes) - 30
    np.testing.assert_allclose(one.router.score(asked), other.router.score(asked))

    restarted = LiveKnowledgeBase(_knn(labelled), JsonlFeedbackStore(log))
    assert restarted.sync() == len(outcomes) and restarted.size == TRAINED + len(outcomes)
    np.testing.assert_allclose(restarted.router.score(asked), other.router.score(asked))
    # a version trained after the first 30 outcomes were logged takes only the later ones
    newer = LiveKnowledgeBase(_knn(labelled), JsonlFeedbackStore(log), since=outcomes[30].created_at)
    assert newer.sync() == len(outcomes) - 30


def test_a_router_that_retrieves_nothing_does_not_learn_and_leaves_the_log_alone(tmp_path):
    store = JsonlFeedbackStore(tmp_path / "feedback.jsonl")
    base = LiveKnowledgeBase(build_router("random", {"seed": 0}), store)
    base.record([Outcome("a prompt", 1.0, 0.0, "both", 1.0)])
    assert not base.learns and base.sync() == 0 and base.size == 0
    assert len(store.read_since(0)[0]) == 1  # still recorded, for the next training run


def test_a_trained_bundle_records_the_quality_means_that_one_models_feedback_imputes(mmlu_vectors):
    records, queries = mmlu_vectors
    features = dataclasses.replace(queries.features, ids=records.frame["id"].tolist())  # the records' own, row for row
    bundle = train_bundle(build_router("knn", {"k": 10}), records, Labels.of(records), 0.5, {"models": {"strong": "big", "weak": "small"}}, features)
    frame = records.frame
    means = bundle.metadata["quality_means"]
    assert means == pytest.approx({"strong": frame["strong_quality"].mean(), "weak": frame["weak_quality"].mean()}) and means["strong"] > means["weak"]
    assert bundle.metadata["models"] == {"strong": "big", "weak": "small"}
    outcome = outcome_from_feedback("a prompt", model="weak", quality=0, quality_means=means)
    assert outcome.strong_quality == means["strong"] and outcome.gain == means["strong"]

"""Prequential scores: a router fed each outcome after scoring its query (knn on a real MMLU
slice, the real encoder and FAISS)."""

from __future__ import annotations

import numpy as np
import pytest

from ragrouter.evaluation.prequential import prequential_scores
from ragrouter.labels import gains
from ragrouter.routers import Queries, TrainingSet, build_router

TRAINED = 150


def test_with_feedback_a_repeated_querys_later_copies_score_closer_to_its_outcome(mmlu_vectors):
    records, queries = mmlu_vectors
    gain = gains(records)
    train, asked = np.arange(TRAINED), np.arange(TRAINED, len(gain))
    stream = np.random.default_rng(0).permutation(np.tile(asked, 3))  # each held-out query asked three times
    copy = np.array([np.sum(stream[:t] == q) for t, q in enumerate(stream)])  # 0 for a query's first time

    def knn():
        return build_router("knn", {"k": 10}).fit(TrainingSet(_rows(queries, train), gain[train]))

    static = knn().score(_rows(queries, stream))
    router = knn()
    fed = prequential_scores(router, _rows(queries, stream), gain[stream])
    target = (gain[stream] + 1) / 2
    later = copy > 0
    assert np.abs(fed - target)[later].mean() < np.abs(static - target)[later].mean() - 0.02
    assert fed[0] == pytest.approx(static[0])  # the first query knows no outcome yet
    assert router.knowledge_size == TRAINED + len(stream)
    # one block of everything: every query scored before any outcome is known, as statically
    np.testing.assert_allclose(prequential_scores(knn(), _rows(queries, stream), gain[stream], block=len(stream)), static)
    blocks = prequential_scores(knn(), _rows(queries, stream), gain[stream], block=50)
    assert np.abs(fed - target)[later].mean() < np.abs(blocks - target)[later].mean() < np.abs(static - target)[later].mean()


def test_prequential_scores_refuse_a_router_that_does_not_learn_and_a_bad_block():
    queries = Queries(["a", "b"])
    with pytest.raises(ValueError, match="router 'random' retrieves nothing"):
        prequential_scores(build_router("random", {"seed": 0}), queries, np.zeros(2))
    with pytest.raises(ValueError, match="block: must be at least 1, got 0"):
        prequential_scores(build_router("random", {"seed": 0}), queries, np.zeros(2), block=0)
    with pytest.raises(ValueError, match=r"gain: expected one value per query, shape \(2,\)"):
        prequential_scores(build_router("random", {"seed": 0}), queries, np.zeros(3))


def _rows(queries: Queries, rows: np.ndarray) -> Queries:
    return Queries([queries.prompts[i] for i in rows], queries.features.subset(rows))

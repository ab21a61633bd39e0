"""RouteLLM's SW-ranking and matrix-factorization routers checked against their definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from ragrouter.labels import pairwise_outcome
from ragrouter.routers import Queries, TrainingSet, build_router, load_router
from support import vector_features


def _unit(rng: np.random.Generator, n: int, d: int = 16) -> np.ndarray:
    v = rng.normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _battles(n: int = 80, seed: int = 0) -> TrainingSet:
    rng = np.random.default_rng(seed)
    return TrainingSet(Queries([f"q{i}" for i in range(n)], vector_features(_unit(rng, n))), rng.choice([-1.0, 0.0, 1.0], size=n))


def test_pairwise_outcomes_count_ties_and_respect_the_label_threshold():
    gain = np.array([1.0, 0.0, -1.0, 0.3, -0.3])
    np.testing.assert_array_equal(pairwise_outcome(gain), [1, 0.5, 0, 1, 0])
    np.testing.assert_array_equal(pairwise_outcome(gain, 0.5), [1, 0.5, 0, 0.5, 0])


def test_sw_weights_follow_routellm_formula():
    router = build_router("sw_ranking")
    sims = np.array([[0.2, 0.4, 0.8]])
    # w = gamma ** (1 + s / max s), gamma = 10 (RouteLLM's 10 * 10 ** (s / max s))
    np.testing.assert_allclose(router.weights(sims), [[10**1.25, 10**1.5, 100.0]])


def test_sw_score_is_the_weighted_bradley_terry_fit_with_ties_as_one_win_each():
    train = _battles()
    router = build_router("sw_ranking").fit(train)
    query = _unit(np.random.default_rng(9), 1)
    weights = router.weights(query @ train.queries.features.pooled.T)[0]
    # RouteLLM's fit: every battle twice; a tie = one strong win + one weak win; logistic
    # regression without intercept or penalty on +-ln(10) model indicators.
    outcome = pairwise_outcome(train.gain)
    labels = np.concatenate([outcome == 1, (outcome == 1) | (outcome == 0.5)]).astype(float)
    design = np.tile([[math.log(10), -math.log(10)]], (2 * len(outcome), 1))
    lr = LogisticRegression(fit_intercept=False, C=np.inf, tol=1e-10, max_iter=10_000)
    lr.fit(design, labels, sample_weight=np.concatenate([weights, weights]))
    expected = 1 / (1 + math.exp(-(design[0] @ lr.coef_[0])))
    assert router.score(Queries(["new"], vector_features(query)))[0] == pytest.approx(expected, abs=1e-6)


def test_sw_with_one_dominant_neighbour_reproduces_its_outcome_and_leaves_itself_out():
    train = _battles()
    router = build_router("sw_ranking", {"gamma": 1e100}).fit(train)
    # Each training query's most similar battle is itself: its own outcome comes back.
    np.testing.assert_allclose(router.score(train.queries), pairwise_outcome(train.gain), atol=1e-6)
    loo = router.score_training(train)
    sims = train.queries.features.pooled @ train.queries.features.pooled.T
    order = np.argsort(-sims, axis=1)
    rows = np.arange(len(sims))
    # Where the nearest other battle clearly dominates the next one, it decides the score.
    clear = sims[rows, order[:, 1]] - sims[rows, order[:, 2]] > 0.1
    assert clear.sum() > 10
    np.testing.assert_allclose(loo[clear], pairwise_outcome(train.gain)[order[clear, 1]], atol=1e-6)


def test_sw_leave_one_out_scores_a_training_query_as_unseen_traffic():
    train = _battles()
    loo = build_router("sw_ranking").fit(train).score_training(train)
    for i in (0, 17, 53):
        rest = np.arange(len(train.gain)) != i
        others = TrainingSet(Queries(["x"] * int(rest.sum()), vector_features(train.queries.features.pooled[rest])), train.gain[rest])
        unseen = build_router("sw_ranking").fit(others).score(Queries(["q"], vector_features(train.queries.features.pooled[i : i + 1])))
        assert loo[i] == pytest.approx(unseen[0], rel=1e-6)  # float32 products


def _separable(n: int, seed: int) -> TrainingSet:
    """Queries whose first coordinate decides who wins: the MF router must learn it."""
    rng = np.random.default_rng(seed)
    vectors = _unit(rng, n)
    gain = np.where(vectors[:, 0] > 0, 1.0, -1.0)
    return TrainingSet(Queries([f"q{i}" for i in range(n)], vector_features(vectors)), gain)


def test_mf_probability_is_the_sigmoid_of_the_bilinear_score_difference():
    train = _separable(200, 0)
    router = build_router("mf", {"epochs": 2}).fit(train)
    state = router.model_.state_dict()
    models = torch.nn.functional.normalize(state["model_embedding.weight"], dim=1).numpy()
    projected = train.queries.features.pooled @ state["text_proj.weight"].numpy().T
    w = state["classifier.weight"].numpy()[0]
    bilinear = (projected * (models[0] - models[1])) @ w
    scores = router.score(train.queries)
    np.testing.assert_allclose(scores, 1 / (1 + np.exp(-bilinear)), rtol=1e-5)
    assert (np.diff(scores[np.argsort(bilinear)]) >= -1e-12).all()  # monotone in the bilinear form


def test_mf_learns_a_separable_problem_reproducibly_and_round_trips(tmp_path):
    train, test = _separable(400, 1), _separable(200, 2)
    router = build_router("mf", {"epochs": 30}).fit(train)
    scores = router.score(test.queries)
    assert roc_auc_score(test.gain > 0, scores) > 0.9
    np.testing.assert_array_equal(build_router("mf", {"epochs": 30}).fit(train).score(test.queries), scores)
    router.save(tmp_path / "mf")
    np.testing.assert_allclose(load_router(tmp_path / "mf").score(test.queries), scores, rtol=1e-6)


def test_sw_round_trips(tmp_path):
    train = _battles()
    router = build_router("sw_ranking").fit(train)
    router.save(tmp_path / "sw")
    queries = Queries(["a", "b"], vector_features(_unit(np.random.default_rng(4), 2)))
    np.testing.assert_allclose(load_router(tmp_path / "sw").score(queries), router.score(queries))


def test_training_subset_keeps_prompt_gain_pairs_and_is_seeded():
    from ragrouter.routers.fine_tuning import training_subset

    prompts = [f"question {i}" for i in range(50)]
    train = TrainingSet(Queries(prompts), np.arange(50, dtype=float), 0.0)
    subset = training_subset(train, 20, seed=3)
    assert len(subset.queries) == 20 and len(set(subset.queries.prompts)) == 20
    assert all(p == f"question {int(g)}" for p, g in zip(subset.queries.prompts, subset.gain))
    assert subset.queries.prompts == training_subset(train, 20, seed=3).queries.prompts
    assert subset.queries.prompts != training_subset(train, 20, seed=4).queries.prompts
    assert training_subset(train, None, seed=3) is train and training_subset(train, 50, seed=3) is train

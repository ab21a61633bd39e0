"""Routing metrics checked against hand-computed curves, brute force and known properties."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from support import score_rows
from ragrouter.evaluation.metrics import (
    apgr,
    apgr_routellm,
    cpt,
    evaluate_scores,
    routing_curve,
    summarize,
)

# 4 queries. Descending score order: 0.9, 0.5, 0.3, 0.1 with gains (strong - weak) 1, -1, 1, 0.
HAND_SCORES = [0.9, 0.1, 0.5, 0.3]
HAND_STRONG = [1.0, 1.0, 0.0, 1.0]
HAND_WEAK = [0.0, 1.0, 1.0, 0.0]


def test_hand_computed_curve() -> None:
    curve = routing_curve(HAND_SCORES, HAND_STRONG, HAND_WEAK)
    # weak mean = 2/4, strong mean = 3/4; cumulative gain 0, 1, 0, 1, 1; PGR = cumulative / total gain (1).
    assert curve.weak_mean == pytest.approx(0.5)
    assert curve.strong_mean == pytest.approx(0.75)
    assert curve.n == 4
    np.testing.assert_allclose(curve.fractions, [0, 0.25, 0.5, 0.75, 1])
    # quality = 0.5 + cumulative gain / 4
    np.testing.assert_allclose(curve.quality, [0.5, 0.75, 0.5, 0.75, 0.75])
    np.testing.assert_allclose(curve.pgr, [0, 1, 0, 1, 1])
    # trapezoids of width 1/4: (0+1)/2 + (1+0)/2 + (0+1)/2 + (1+1)/2 = 2.5, times 1/4 = 0.625
    assert apgr(curve) == pytest.approx(0.625)


def test_cpt_interpolates_first_crossing() -> None:
    curve = routing_curve(HAND_SCORES, HAND_STRONG, HAND_WEAK)
    # PGR rises 0 -> 1 on [0, 0.25]: PGR(f) = 4f, so CPT(x) = x / 4.
    assert cpt(curve, 0.2) == pytest.approx(0.05)
    assert cpt(curve, 0.5) == pytest.approx(0.125)
    assert cpt(curve, 0.8) == pytest.approx(0.2)
    # PGR = 1 again at 0.75 and 1.0, but the first fraction reaching it is 0.25.
    assert cpt(curve, 1.0) == pytest.approx(0.25)
    assert cpt(curve, 0.0) == 0.0
    assert cpt(curve, -0.3) == 0.0
    assert math.isnan(cpt(curve, 1.01))


def test_all_tied_scores_give_the_diagonal() -> None:
    curve = routing_curve([0.3] * 5, [1, 0, 1, 1, 0], [0, 0, 1, 0, 1])
    np.testing.assert_array_equal(curve.fractions, [0.0, 1.0])
    np.testing.assert_array_equal(curve.pgr, [0.0, 1.0])
    assert apgr(curve) == 0.5
    assert cpt(curve, 0.2) == pytest.approx(0.2)
    assert cpt(curve, 0.8) == pytest.approx(0.8)
    assert apgr_routellm([0.3] * 5, [1, 0, 1, 1, 0], [0, 0, 1, 0, 1]) == 0.5


def test_partial_tie_is_linear_inside_the_group() -> None:
    # Descending: 4 (gain 1), tie {2, 2} (gains 1 and 0), 1 (gain -1); total gain 1.
    scores, strong, weak = [2, 4, 1, 2], [0, 1, 0, 1], [0, 0, 1, 0]
    curve = routing_curve(scores, strong, weak)
    # No knot at 0.5: the tie group spans [0.25, 0.75].
    np.testing.assert_allclose(curve.fractions, [0, 0.25, 0.75, 1])
    np.testing.assert_allclose(curve.pgr, [0, 1, 2, 1])
    # 0.25 * (0+1)/2 + 0.5 * (1+2)/2 + 0.25 * (2+1)/2 = 0.125 + 0.75 + 0.375
    assert apgr(curve) == pytest.approx(1.25)
    # The two tie-breaks: gain 1 first, PGR 0, 1, 2, 2, 1: (0.5 + 1.5 + 2 + 1.5) / 4 = 1.375;
    # gain 0 first, PGR 0, 1, 1, 2, 1: (0.5 + 1 + 1.5 + 1.5) / 4 = 1.125. Their mean is 1.25.
    assert apgr(routing_curve([2, 4, 1, 2.5], strong, weak)) == pytest.approx(1.375)
    assert apgr(routing_curve([2.5, 4, 1, 2], strong, weak)) == pytest.approx(1.125)


def test_ties_equal_mean_over_all_tie_breaks() -> None:
    rng = np.random.default_rng(3)
    scores = np.array([3, 1, 3, 2, 3, 2], dtype=float)
    strong, weak = rng.random(6), rng.random(6)
    breaks = []
    for perm in itertools.permutations(range(6)):
        # Break ties by adding a tiny amount following the permutation order.
        breaks.append(apgr(routing_curve(scores + np.array(perm) * 1e-6, strong, weak)))
    assert apgr(routing_curve(scores, strong, weak)) == pytest.approx(np.mean(breaks))


def test_oracle_order_maximises_apgr() -> None:
    rng = np.random.default_rng(7)
    strong, weak = rng.random(6), rng.random(6)
    best = max(apgr(routing_curve(perm, strong, weak)) for perm in itertools.permutations(range(6)))
    oracle = apgr(routing_curve(strong - weak, strong, weak))
    assert oracle == pytest.approx(best)
    worst = apgr(routing_curve(weak - strong, strong, weak))
    assert worst < 0.5 < oracle


def test_random_scores_give_apgr_near_half() -> None:
    rng = np.random.default_rng(11)
    n = 20_000
    strong = (rng.random(n) < 0.8).astype(float)
    weak = (rng.random(n) < 0.6).astype(float)
    summary = summarize(rng.random(n), strong, weak)
    assert summary["APGR"] == pytest.approx(0.5, abs=0.03)
    assert summary["APGR_routellm"] == pytest.approx(0.5, abs=0.03)
    assert summary["CPT50"] == pytest.approx(0.5, abs=0.05)


def test_routellm_matches_exact_when_deciles_are_knots() -> None:
    # 10 distinct scores: the decile edges select exactly 10, 9, ..., 1, 0 queries, every knot.
    rng = np.random.default_rng(5)
    scores, strong, weak = rng.permutation(10), rng.random(10), rng.random(10)
    assert apgr_routellm(scores, strong, weak) == pytest.approx(apgr(routing_curve(scores, strong, weak)))


def test_routellm_draws_chords_across_deciles() -> None:
    # 20 queries, descending gains 1, 0, 1, 0, ...: total gain 10.
    scores = np.arange(20, 0, -1, dtype=float)
    strong = np.tile([1.0, 0.0], 10)
    weak = np.zeros(20)
    # Exact: pair j spans two knots of width 1/20 with cumulative gain j, j+1, j+1:
    # area (j + 0.5 + j + 1) / 20 = (4j + 3) / 40; sum over j = 0..9 is 210 / 40 = 5.25; / 10 = 0.525.
    assert apgr(routing_curve(scores, strong, weak)) == pytest.approx(0.525)
    # Deciles edges 1, 2.9, 4.8, ... select 20, 18, ..., 2, 0 queries: PGR at f = 2j/20 is j/10 = f,
    # the diagonal, area 0.5.
    assert apgr_routellm(scores, strong, weak) == pytest.approx(0.5)


def test_routellm_equals_direct_threshold_routing() -> None:
    """Route score >= each decile edge (score > max for the last), average quality, trapezoid."""
    rng = np.random.default_rng(2)
    scores = rng.integers(0, 40, 300).astype(float)  # many ties, distinct decile edges
    strong, weak = (rng.random(300) < 0.7).astype(float), (rng.random(300) < 0.5).astype(float)
    edges = pd.qcut(scores, 10, retbins=True)[1]
    points = []
    for i, edge in enumerate(edges):
        to_strong = scores > edge if i == len(edges) - 1 else scores >= edge
        points.append((to_strong.mean(), np.where(to_strong, strong, weak).mean()))
    fraction, quality = np.array(sorted(points)).T
    expected = np.trapezoid((quality - weak.mean()) / (strong.mean() - weak.mean()), fraction)
    assert apgr_routellm(scores, strong, weak) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("scores", "strong", "weak", "message"),
    [
        ([1, 2], [1, 0, 1], [0, 0, 0], "differ in length"),
        ([], [], [], "no queries"),
        ([1, np.nan], [1, 0], [0, 0], "scores contains NaN"),
        ([1, 2], [1, np.nan], [0, 0], "strong_quality contains NaN"),
        ([1, 2], [1, 0], [np.nan, 0], "weak_quality contains NaN"),
        ([1, 2], [1, 0], [0, 1], "PGR is undefined"),
    ],
)
def test_invalid_inputs_raise(scores: list, strong: list, weak: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        routing_curve(scores, strong, weak)
    with pytest.raises(ValueError, match=message):
        apgr_routellm(scores, strong, weak)


def _scores_frame() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    parts = []
    for protocol, n in (("P1", 40), ("P3", 30)):
        strong, weak = rng.random(n), rng.random(n) * 0.8
        for router, score in (("oracle", strong - weak), ("random", rng.random(n)), ("adverse", weak - strong)):
            parts.append(score_rows(protocol, router, score, strong, weak))
    return pd.concat(parts, ignore_index=True)


def test_evaluate_scores_pools_folds_per_protocol_and_router() -> None:
    frame = _scores_frame()
    table = evaluate_scores(frame)
    assert list(table.columns) == ["protocol", "router", "APGR", "CPT20", "CPT50", "CPT80", "APGR_routellm", "n"]
    assert list(zip(table["protocol"], table["router"])) == [
        ("P1", "oracle"),
        ("P1", "random"),
        ("P1", "adverse"),
        ("P3", "oracle"),
        ("P3", "random"),
        ("P3", "adverse"),
    ]
    assert table.set_index(["protocol", "router"])["n"].to_dict()[("P3", "random")] == 30
    pooled = frame[(frame["protocol"] == "P1") & (frame["router"] == "random")]
    row = table[(table["protocol"] == "P1") & (table["router"] == "random")].iloc[0]
    expected = summarize(pooled["score"], pooled["strong_quality"], pooled["weak_quality"])
    assert {k: row[k] for k in expected} == pytest.approx(expected)
    assert ((table[["CPT20", "CPT50", "CPT80"]] >= 0) & (table[["CPT20", "CPT50", "CPT80"]] <= 1)).all().all()


def test_evaluate_scores_rejects_duplicates_and_missing_columns() -> None:
    frame = _scores_frame()
    with pytest.raises(ValueError, match="more than once"):
        evaluate_scores(pd.concat([frame, frame.iloc[:1]], ignore_index=True))
    with pytest.raises(ValueError, match="lacks columns"):
        evaluate_scores(frame.drop(columns="fold"))

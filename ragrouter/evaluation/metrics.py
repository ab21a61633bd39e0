"""Routing metrics over the curve "mean quality vs fraction of strong-model calls".

A router's scores rank the queries; sending the top k to the strong model and the rest to
the weak one gives a mean quality for each k. The metrics below summarise that curve:

- PGR(f), performance gap recovered: (quality(f) - weak mean) / (strong mean - weak mean).
- APGR: the exact area under PGR on [0, 1].
- CPT(x): the smallest strong-call fraction whose PGR reaches x.
- APGR_routellm: RouteLLM's 11-point approximation, kept for comparison with published figures.

Tied scores carry no ranking information, so a tie group is charged the expected value of a
random tie-break: the curve is a straight line across it (knots only at tie-group bounds).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

# one row per test query per (protocol, fold): what every metric here is computed from
SCORE_COLUMNS = ("id", "protocol", "fold", "router", "score", "strong_quality", "weak_quality")
CPT_LEVELS = {"CPT20": 0.2, "CPT50": 0.5, "CPT80": 0.8}
METRIC_COLUMNS = ("APGR", *CPT_LEVELS, "APGR_routellm")
TABLE_COLUMNS = ("protocol", "router", *METRIC_COLUMNS)
ROUTELLM_POINTS = 11
EQUAL_MEANS_ATOL = 1e-12

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class RoutingCurve:
    """The piecewise-linear curve's knots, from f=0 (all weak) to f=1 (all strong).

    `fractions` is strictly increasing; `quality` and `pgr` are the values at those knots and
    linear between them. pgr[0] = 0 and pgr[-1] = 1 exactly; in between PGR may leave [0, 1]
    (an oracle beats the strong model by keeping the queries the weak model wins).
    """

    fractions: FloatArray
    quality: FloatArray
    pgr: FloatArray
    weak_mean: float
    strong_mean: float
    n: int


def _validated(scores: npt.ArrayLike, strong: npt.ArrayLike, weak: npt.ArrayLike) -> tuple[FloatArray, ...]:
    """The three inputs as equal-length, non-empty, NaN-free 1-D float arrays."""
    named = {
        "scores": np.asarray(scores, dtype=np.float64),
        "strong_quality": np.asarray(strong, dtype=np.float64),
        "weak_quality": np.asarray(weak, dtype=np.float64),
    }
    for name, array in named.items():
        if array.ndim != 1:
            raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
        if np.isnan(array).any():
            raise ValueError(f"{name} contains NaN")
    lengths = {name: len(array) for name, array in named.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"scores and qualities differ in length: {lengths}")
    if lengths["scores"] == 0:
        raise ValueError("no queries to evaluate")
    return tuple(named.values())


def routing_curve(
    scores: npt.ArrayLike, strong: npt.ArrayLike, weak: npt.ArrayLike, counts: npt.ArrayLike | None = None
) -> RoutingCurve:
    """The exact quality/PGR curve when queries go to the strong model in descending score order.

    `counts` (non-negative integers, one per query) gives the curve of the query set where
    query i appears counts[i] times: a bootstrap draw without copying the queries.
    Raises ValueError on malformed input, or when both models have the same mean quality
    (within EQUAL_MEANS_ATOL), where PGR is undefined.
    """
    score, strong_q, weak_q = _validated(scores, strong, weak)
    if counts is not None:
        counts = np.asarray(counts, dtype=np.float64)
        if counts.shape != score.shape or (counts < 0).any() or counts.sum() == 0:
            raise ValueError(f"counts must be {len(score)} non-negative numbers, not all zero")
        drawn = counts > 0
        score, strong_q, weak_q, counts = score[drawn], strong_q[drawn], weak_q[drawn], counts[drawn]
    else:
        counts = np.ones_like(score)
    n = float(counts.sum())
    weak_mean, strong_mean = float(counts @ weak_q / n), float(counts @ strong_q / n)
    if abs(strong_mean - weak_mean) <= EQUAL_MEANS_ATOL:
        raise ValueError(f"strong and weak mean quality are equal ({strong_mean:.6g}); PGR is undefined")
    order = np.argsort(-score, kind="stable")
    ranked_score, ranked_gain, ranked_counts = score[order], (strong_q - weak_q)[order], counts[order]
    # A knot after each tie group: the last position of every run of equal scores.
    group_ends = np.flatnonzero(np.append(ranked_score[1:] != ranked_score[:-1], True)) + 1
    cumulative_gain = np.concatenate(([0.0], np.cumsum(ranked_gain * ranked_counts)[group_ends - 1]))
    fractions = np.concatenate(([0.0], np.cumsum(ranked_counts)[group_ends - 1] / n))
    # Dividing by the summed gain (not the difference of means) makes pgr[-1] exactly 1.
    pgr = cumulative_gain / cumulative_gain[-1]
    quality = weak_mean + cumulative_gain / n
    for array in (fractions, quality, pgr):
        array.setflags(write=False)
    return RoutingCurve(fractions, quality, pgr, weak_mean, strong_mean, int(n))


def apgr(curve: RoutingCurve) -> float:
    """Exact area under PGR on [0, 1]: trapezoids are exact on a piecewise-linear curve."""
    return float(np.trapezoid(curve.pgr, curve.fractions))


def cpt(curve: RoutingCurve, x: float) -> float:
    """Smallest strong-call fraction f with PGR(f) >= x, interpolated inside the crossing segment.

    PGR need not be monotone, so this is the first crossing. x <= 0 gives 0.0; since PGR(1) = 1,
    every x <= 1 is reached; an x above the curve's maximum (only an oracle-like curve exceeds 1)
    is never reached and gives NaN rather than a fraction that would not achieve it.
    """
    if np.isnan(x):
        raise ValueError("cpt level x is NaN")
    reached = np.flatnonzero(curve.pgr >= x)
    if len(reached) == 0:
        return float("nan")
    j = int(reached[0])
    if j == 0:
        return 0.0
    f0, f1 = curve.fractions[j - 1], curve.fractions[j]
    p0, p1 = curve.pgr[j - 1], curve.pgr[j]
    return float(f0 + (x - p0) / (p1 - p0) * (f1 - f0))


def _apgr_routellm(scores: FloatArray, curve: RoutingCurve) -> float:
    """RouteLLM's 11-point APGR, read off the exact curve (see apgr_routellm)."""
    thresholds = np.unique(np.quantile(scores, np.linspace(0.0, 1.0, ROUTELLM_POINTS))[:-1])
    fractions = np.sort(np.append([(scores >= t).mean() for t in thresholds], 0.0))
    return float(np.trapezoid(np.interp(fractions, curve.fractions, curve.pgr), fractions))


def apgr_routellm(scores: npt.ArrayLike, strong: npt.ArrayLike, weak: npt.ArrayLike) -> float:
    """RouteLLM's 11-point APGR (lm-sys/RouteLLM, routellm/evals/benchmarks.py + evaluate.py).

    RouteLLM takes the 11 decile edges of the scores (pd.qcut(scores, 10) bins: linearly
    interpolated quantiles 0, 0.1, ..., 1), routes score >= edge to the strong model for every
    edge but the last, and score > max (nobody) for the last; each edge gives a point (actual
    strong-call fraction, mean quality), and APGR is the trapezoid area of PGR over those points.

    Every such selection is a union of whole tie groups, so its point is a knot of the exact
    curve; the two metrics differ only because the 11 points draw chords across each decile
    (a concave curve loses area, a noisy one may gain). Where ties make edges coincide,
    RouteLLM's qcut raises; here duplicate edges are dropped (constant scores give the
    diagonal, 0.5).
    """
    curve = routing_curve(scores, strong, weak)
    return _apgr_routellm(np.asarray(scores, dtype=np.float64), curve)


def summarize(scores: npt.ArrayLike, strong: npt.ArrayLike, weak: npt.ArrayLike) -> dict[str, float]:
    """APGR, CPT20/50/80 (fractions in [0, 1]) and APGR_routellm of one router's scores."""
    curve = routing_curve(scores, strong, weak)
    return {
        "APGR": apgr(curve),
        **{name: cpt(curve, level) for name, level in CPT_LEVELS.items()},
        "APGR_routellm": _apgr_routellm(np.asarray(scores, dtype=np.float64), curve),
    }


def evaluate_scores(scores_frame: pd.DataFrame) -> pd.DataFrame:
    """One row of metrics per (protocol, router), pooled over that protocol's out-of-fold rows.

    Pooling is what the protocols define: each query is scored once, by the router trained
    without it, and the curve is drawn over the whole set. A query scored twice for one
    protocol and router means the folds overlap, so it is rejected.
    """
    missing = [c for c in SCORE_COLUMNS if c not in scores_frame.columns]
    if missing:
        raise ValueError(f"scores frame lacks columns {missing}")
    rows = []
    for (protocol, router), group in scores_frame.groupby(["protocol", "router"], sort=False):
        duplicated = group["id"].duplicated()
        if duplicated.any():
            raise ValueError(
                f"{protocol}/{router}: queries scored more than once, e.g. {group['id'][duplicated].iloc[0]!r}"
            )
        metrics = summarize(group["score"], group["strong_quality"], group["weak_quality"])
        rows.append({"protocol": protocol, "router": router, **metrics, "n": len(group)})
    table = pd.DataFrame(rows, columns=[*TABLE_COLUMNS, "n"])
    return table.sort_values(["protocol", "APGR"], ascending=[True, False], ignore_index=True)


def apgr_of_gains(scores: npt.ArrayLike, gain: npt.ArrayLike) -> float:
    """APGR from per-query gains (strong - weak quality), as training loops see their
    validation split; NaN where strong and weak tie over the whole set (PGR undefined)."""
    gain = np.asarray(gain, dtype=np.float64)
    if np.isclose(gain.sum(), 0.0):
        return float("nan")
    return apgr(routing_curve(scores, gain.clip(0, None), (-gain).clip(0, None)))

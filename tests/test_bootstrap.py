"""Bootstrap intervals: weighted curves equal repeated queries, intervals are paired and honest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from support import score_rows
from ragrouter.evaluation.ablation import write_ablation_tables
from ragrouter.evaluation.bootstrap import INTERVAL_COLUMNS, with_intervals
from ragrouter.evaluation.metrics import apgr, cpt, evaluate_scores, routing_curve
from ragrouter.evaluation.report import results_markdown, write_report


def _outcomes(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    return (rng.random(n) < 0.8).astype(float), (rng.random(n) < 0.5).astype(float)


def test_counts_give_the_curve_of_the_repeated_queries() -> None:
    rng = np.random.default_rng(3)
    strong, weak = _outcomes(rng, 40)
    scores = np.round(rng.random(40), 1)  # ties across and within repeats
    counts = rng.integers(0, 4, 40)
    weighted = routing_curve(scores, strong, weak, counts)
    repeated = routing_curve(np.repeat(scores, counts), np.repeat(strong, counts), np.repeat(weak, counts))
    np.testing.assert_allclose(weighted.fractions, repeated.fractions)
    np.testing.assert_allclose(weighted.pgr, repeated.pgr)
    np.testing.assert_allclose(weighted.quality, repeated.quality)
    assert weighted.n == repeated.n == counts.sum()
    assert apgr(weighted) == pytest.approx(apgr(repeated))
    assert cpt(weighted, 0.5) == pytest.approx(cpt(repeated, 0.5))


@pytest.mark.parametrize("counts", [np.zeros(5), -np.ones(5), np.ones(4)])
def test_bad_counts_are_refused(counts: np.ndarray) -> None:
    with pytest.raises(ValueError, match="counts must be 5 non-negative"):
        routing_curve(np.arange(5.0), np.ones(5), np.zeros(5), counts)


@pytest.fixture()
def scores_frame() -> pd.DataFrame:
    """An informative router, its exact copy under another name, and a random one, on 600 queries."""
    rng = np.random.default_rng(0)
    strong, weak = _outcomes(rng, 600)
    informative = strong - weak + rng.normal(0, 0.8, 600)
    return pd.concat(
        [
            score_rows("P1", "informative", informative, strong, weak),
            score_rows("P1", "copy", informative, strong, weak),
            score_rows("P1", "random", rng.random(600), strong, weak),
        ],
        ignore_index=True,
    )


def test_intervals_hold_the_estimate_and_separate_a_real_gap(scores_frame: pd.DataFrame) -> None:
    table = with_intervals(evaluate_scores(scores_frame), scores_frame, resamples=300).set_index("router")
    for row in table.itertuples():
        assert row.APGR_low < row.APGR < row.APGR_high
        assert row.CPT50_low < row.CPT50 < row.CPT50_high
    best = table["APGR"].idxmax()
    assert best in {"informative", "copy"} and np.isnan(table.loc[best, "best_wins"])
    random = table.loc["random"]
    assert random.APGR_gap_low > 0 and random.CPT50_gap_low > 0 and random.best_wins > 0.99
    # The copy is scored on the very same draws as the best: paired, so its gap is exactly 0.
    twin = table.loc[({"informative", "copy"} - {best}).pop()]
    assert twin.APGR_gap_low == twin.APGR_gap_high == 0.0 and twin.best_wins == 0.0


def test_intervals_are_seeded_and_narrow_with_more_queries(scores_frame: pd.DataFrame) -> None:
    table = evaluate_scores(scores_frame)
    first = with_intervals(table, scores_frame, resamples=100, seed=1)
    pd.testing.assert_frame_equal(first, with_intervals(table, scores_frame, resamples=100, seed=1))
    small = scores_frame[scores_frame["id"].isin([f"P1-{i}" for i in range(150)])]
    narrow = first.set_index("router")
    wide = with_intervals(evaluate_scores(small), small, resamples=100, seed=1).set_index("router")
    assert (wide["APGR_high"] - wide["APGR_low"] > narrow["APGR_high"] - narrow["APGR_low"]).all()
    with pytest.raises(ValueError, match="resamples must be >= 1"):
        with_intervals(table, scores_frame, resamples=0)


def test_report_shows_and_keeps_the_intervals(scores_frame: pd.DataFrame, tmp_path: Path) -> None:
    table = with_intervals(evaluate_scores(scores_frame), scores_frame, resamples=50)
    text = results_markdown(table)
    random = table.set_index("router").loc["random"]
    assert "APGR 95% CI" in text and "paired bootstrap" in text
    assert f"| {random.APGR_low:.3f} to {random.APGR_high:.3f} |" in text
    assert f"| {random.best_wins * 100:.1f}% |" in text
    written = pd.read_csv(write_report(table, scores_frame, tmp_path)["table.csv"])
    assert set(INTERVAL_COLUMNS) <= set(written.columns)
    np.testing.assert_allclose(written.set_index("router").loc["random", list(INTERVAL_COLUMNS)].to_numpy(float), random[list(INTERVAL_COLUMNS)].to_numpy(float))


def test_ablation_deltas_are_paired(scores_frame: pd.DataFrame, tmp_path: Path) -> None:
    table = evaluate_scores(scores_frame)
    tables = write_ablation_tables(table, scores_frame, {"same": ("informative", "copy"), "worse": ("informative", "random")}, tmp_path, resamples=200)
    same, worse = tables["same"].iloc[0], tables["worse"].iloc[0]
    assert same.APGR_delta_low == same.APGR_delta_high == 0.0
    assert worse.APGR_delta_low <= worse.APGR_delta <= worse.APGR_delta_high < 0
    assert worse.CPT50_delta_low > 0  # the random variant needs more strong calls
    assert f"{worse.APGR_delta:+.3f} ({worse.APGR_delta_low:+.3f} to {worse.APGR_delta_high:+.3f})" in (tmp_path / "ablations.md").read_text()

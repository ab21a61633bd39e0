"""Bootstrap intervals for the results table: how sure its numbers and its ranking are.

Each protocol's queries are drawn with replacement, the same draws for every router, so the
differences between routers are paired; a router's curve on a draw is its curve with the
drawn counts as query weights (no retraining). So the intervals hold the sampling noise of the
evaluated queries, not the noise of training the routers again (seeds, machines), which adds
to it. Columns added to the table, as fractions like the table's own:

- APGR_low / APGR_high and CPT50_low / CPT50_high: the central 95% (LEVEL) of the draws;
- APGR_gap_low / APGR_gap_high: the interval of (the protocol's best router's APGR - this
  router's), the best being the table's top APGR; CPT50_gap_low / CPT50_gap_high: of (this
  router's CPT(50%) - the best's), so positive gaps favour the best router on both;
- best_wins: the share of draws where the best router's APGR is above this router's.
The best router's own row leaves the gap columns empty.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ragrouter.evaluation.metrics import EQUAL_MEANS_ATOL, apgr, cpt, routing_curve

INTERVAL_COLUMNS = (
    "APGR_low", "APGR_high", "CPT50_low", "CPT50_high", "APGR_gap_low", "APGR_gap_high", "CPT50_gap_low", "CPT50_gap_high", "best_wins"
)
DEFAULT_RESAMPLES = 1000
DRAWN_METRICS = ("APGR", "CPT50", "CPT20", "CPT80")  # the columns of each draw, in this order
LEVEL = 0.95  # the central share of the draws an interval holds


def with_intervals(table: pd.DataFrame, scores_frame: pd.DataFrame, resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """`table` (evaluate_scores' rows) with INTERVAL_COLUMNS from `resamples` paired draws."""
    rows = []
    for protocol, draws in resampled_metrics(scores_frame, resamples, seed).items():
        routers = table[table["protocol"] == protocol].sort_values("APGR", ascending=False)["router"].tolist()
        best = draws[routers[0]]
        for router in routers:
            row = {"protocol": protocol, "router": router}
            for name, values in (("APGR", draws[router][:, 0]), ("CPT50", draws[router][:, 1])):
                row[f"{name}_low"], row[f"{name}_high"] = interval(values)
            if router != routers[0]:
                apgr_gaps = best[:, 0] - draws[router][:, 0]
                row["APGR_gap_low"], row["APGR_gap_high"] = interval(apgr_gaps)
                row["CPT50_gap_low"], row["CPT50_gap_high"] = interval(draws[router][:, 1] - best[:, 1])
                drawn = apgr_gaps[~np.isnan(apgr_gaps)]
                row["best_wins"] = float(np.mean(drawn > 0)) if len(drawn) else np.nan
            rows.append(row)
    intervals = pd.DataFrame(rows, columns=["protocol", "router", *INTERVAL_COLUMNS])
    return table.drop(columns=[c for c in INTERVAL_COLUMNS if c in table.columns]).merge(intervals, on=["protocol", "router"], how="left")


def interval(values: np.ndarray) -> tuple[float, float]:
    """Central LEVEL interval of the draws that are defined (NaN: undefined PGR, or a CPT never reached)."""
    drawn = values[~np.isnan(values)]
    if len(drawn) == 0:
        return np.nan, np.nan
    low, high = np.quantile(drawn, [(1.0 - LEVEL) / 2.0, (1.0 + LEVEL) / 2.0])
    return float(low), float(high)


def resampled_metrics(scores_frame: pd.DataFrame, resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """Protocol -> router -> (resamples, len(DRAWN_METRICS)) array of APGR and CPT(50%, 20%,
    80%), every router of a protocol on the same draws of its queries."""
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    rng = np.random.default_rng(seed)
    return {str(protocol): _resampled_metrics(scored, resamples, rng) for protocol, scored in scores_frame.groupby("protocol", sort=True)}


def _resampled_metrics(scored: pd.DataFrame, resamples: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One protocol's draws; NaN for a draw where the two models' mean qualities tie (PGR is undefined)."""
    ids = scored["id"].drop_duplicates().to_numpy()
    position = pd.Series(np.arange(len(ids)), index=ids)
    columns = {
        str(router): (group["score"].to_numpy(), group["strong_quality"].to_numpy(), group["weak_quality"].to_numpy(), position[group["id"]].to_numpy())
        for router, group in scored.groupby("router", sort=True)
    }
    draws = {router: np.full((resamples, len(DRAWN_METRICS)), np.nan) for router in columns}
    for r in tqdm(range(resamples), desc=f"bootstrap {scored['protocol'].iloc[0]}", leave=False):
        counts = rng.multinomial(len(ids), np.full(len(ids), 1.0 / len(ids)))
        for router, (score, strong, weak, rows) in columns.items():
            weights = counts[rows]
            if abs(weights @ (strong - weak)) <= EQUAL_MEANS_ATOL * max(weights.sum(), 1):
                continue
            curve = routing_curve(score, strong, weak, weights)
            draws[router][r] = apgr(curve), cpt(curve, 0.5), cpt(curve, 0.2), cpt(curve, 0.8)
    return draws

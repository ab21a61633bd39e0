"""Ablation tables (the paper's Tables 5 and 6): the full router beside one variant per table,
per protocol, with the differences and their paired bootstrap intervals (is a difference more
than the noise of the evaluated queries?), from the same run's results table and scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ragrouter.evaluation.bootstrap import DEFAULT_RESAMPLES, interval, resampled_metrics

ABLATION_COLUMNS = (
    "protocol", "APGR_full", "APGR_variant", "APGR_delta", "APGR_delta_low", "APGR_delta_high",
    "CPT50_full", "CPT50_variant", "CPT50_delta", "CPT50_delta_low", "CPT50_delta_high",
)  # fmt: skip


def ablation_table(table: pd.DataFrame, full: str, variant: str, draws: dict[str, dict[str, np.ndarray]]) -> pd.DataFrame:
    """One row per protocol both routers were evaluated on; delta = variant - full, with its
    interval over `draws` (bootstrap.resampled_metrics of the same scores)."""
    metrics = table.set_index(["router", "protocol"])[["APGR", "CPT50"]]
    missing = {full, variant} - set(table["router"])
    if missing:
        raise ValueError(f"the results table has no rows for {sorted(missing)}; it has {sorted(table['router'].unique())}")
    joined = metrics.loc[full].join(metrics.loc[variant], lsuffix="_full", rsuffix="_variant", how="inner")
    for column, metric in enumerate(("APGR", "CPT50")):
        joined[f"{metric}_delta"] = joined[f"{metric}_variant"] - joined[f"{metric}_full"]
        bounds = [interval(draws[p][variant][:, column] - draws[p][full][:, column]) for p in joined.index]
        joined[f"{metric}_delta_low"], joined[f"{metric}_delta_high"] = [b[0] for b in bounds], [b[1] for b in bounds]
    return joined.reset_index()[list(ABLATION_COLUMNS)]


def ablation_markdown(name: str, full: str, variant: str, rows: pd.DataFrame) -> str:
    lines = [
        f"## Ablation: {name} (`{variant}` vs `{full}`)",
        "",
        "| protocol | APGR full | APGR variant | Δ APGR (95% CI) | CPT(50%) full | CPT(50%) variant | Δ CPT(50%) (95% CI) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows.itertuples(index=False):
        lines.append(
            f"| {r.protocol} | {r.APGR_full:.3f} | {r.APGR_variant:.3f} | "
            f"{r.APGR_delta:+.3f} ({r.APGR_delta_low:+.3f} to {r.APGR_delta_high:+.3f}) | "
            f"{100 * r.CPT50_full:.1f}% | {100 * r.CPT50_variant:.1f}% | "
            f"{100 * r.CPT50_delta:+.1f} pt ({100 * r.CPT50_delta_low:+.1f} to {100 * r.CPT50_delta_high:+.1f}) |"
        )
    lines += ["", "Intervals: paired bootstrap draws of the queries (the routers are not retrained)."]
    return "\n".join(lines) + "\n"


def write_ablation_tables(
    table: pd.DataFrame, scores_frame: pd.DataFrame, comparisons: dict[str, tuple[str, str]], out_dir: Path, resamples: int = DEFAULT_RESAMPLES
) -> dict[str, pd.DataFrame]:
    """`ablation_<name>.csv` and `.md` per ablation name -> (full router, variant), plus
    `ablations.md` with all of them."""
    out_dir.mkdir(parents=True, exist_ok=True)
    # Only the compared routers are rescored on each draw; the draws depend on the queries alone.
    compared = {router for pair in comparisons.values() for router in pair}
    draws = resampled_metrics(scores_frame[scores_frame["router"].isin(compared)], resamples)
    tables, sections = {}, []
    for name, (full, variant) in comparisons.items():
        rows = ablation_table(table, full, variant, draws)
        rows.to_csv(out_dir / f"ablation_{name}.csv", index=False)
        section = ablation_markdown(name, full, variant, rows)
        (out_dir / f"ablation_{name}.md").write_text(section)
        tables[name], sections = rows, [*sections, section]
    (out_dir / "ablations.md").write_text("\n".join(sections))
    return tables

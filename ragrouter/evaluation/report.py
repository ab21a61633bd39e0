"""Human-readable results: a markdown table, one curve plot per protocol, CSVs to recompute them.

Figures are drawn on matplotlib.figure.Figure directly (no pyplot), so nothing depends on a
display or on pyplot's global figure registry.
"""

from __future__ import annotations

import math
import os
import re
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from ragrouter.evaluation.bootstrap import INTERVAL_COLUMNS
from ragrouter.evaluation.metrics import CPT_LEVELS, SCORE_COLUMNS, TABLE_COLUMNS, apgr, routing_curve

_MARKDOWN_HEADER = ("router", "APGR", *CPT_LEVELS, "APGR (RouteLLM 11-pt)")
_INTERVAL_HEADER = ("APGR 95% CI", "CPT50 95% CI", "best - this: APGR", "this - best: CPT50", "draws the best wins")
_INTERVAL_NOTE = (
    "95% intervals from paired bootstrap draws of the queries (the same draws for every router; "
    "the routers are not retrained), best = the top APGR."
)


def _fmt(value: float, percent: bool) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value * 100:.1f}%" if percent else f"{value:.3f}"


def _fmt_interval(low: float, high: float, percent: bool) -> str:
    if math.isnan(low):
        return "n/a"
    return f"{_fmt(low, percent)} to {_fmt(high, percent)}"


def _interval_cells(row: Any) -> list[str]:
    cells = [_fmt_interval(row.APGR_low, row.APGR_high, False), _fmt_interval(row.CPT50_low, row.CPT50_high, True)]
    if math.isnan(row.best_wins):
        return cells + ["best", "best", ""]
    return cells + [
        _fmt_interval(row.APGR_gap_low, row.APGR_gap_high, False),
        _fmt_interval(row.CPT50_gap_low, row.CPT50_gap_high, True),
        _fmt(row.best_wins, percent=True),
    ]


def results_markdown(table: pd.DataFrame) -> str:
    """One markdown section per protocol; CPT as % of strong calls (1 decimal), APGR to 3 decimals;
    with bootstrap intervals (ragrouter.evaluation.bootstrap) when the table holds them."""
    intervals = all(c in table.columns for c in INTERVAL_COLUMNS)
    header = (*_MARKDOWN_HEADER, *_INTERVAL_HEADER) if intervals else _MARKDOWN_HEADER
    lines = ["# Routing results", ""] + ([_INTERVAL_NOTE, ""] if intervals else [])
    for protocol, rows in table.groupby("protocol", sort=True):
        size = f" (n={int(rows['n'].iloc[0])})" if "n" in rows else ""
        lines += [f"## {protocol}{size}", "", "| " + " | ".join(header) + " |"]
        lines.append("| --- |" + " ---: |" * (len(header) - 1))
        for row in rows.itertuples(index=False):
            cells = [
                str(row.router),
                _fmt(row.APGR, percent=False),
                *(_fmt(getattr(row, name), percent=True) for name in CPT_LEVELS),
                _fmt(row.APGR_routellm, percent=False),
                *(_interval_cells(row) if intervals else []),
            ]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def plot_curves(scores_frame: pd.DataFrame, protocol: str) -> Figure:
    """Mean quality vs % strong calls for each router of a protocol, with weak, strong and oracle.

    The oracle ranks by the true gain (strong - weak quality): the upper bound any router's
    curve can reach on these queries.
    """
    rows = scores_frame[scores_frame["protocol"] == protocol]
    if rows.empty:
        raise ValueError(f"no scores for protocol {protocol!r}")
    outcomes = rows.drop_duplicates("id")
    strong, weak = outcomes["strong_quality"], outcomes["weak_quality"]
    curves = {
        str(router): routing_curve(group["score"], group["strong_quality"], group["weak_quality"])
        for router, group in rows.groupby("router", sort=True)
    }
    oracle = routing_curve(strong - weak, strong, weak)

    figure = Figure(figsize=(9, 6), layout="constrained")
    axes = figure.subplots()
    for router, curve in sorted(curves.items(), key=lambda item: -apgr(item[1])):
        axes.plot(curve.fractions * 100, curve.quality, linewidth=1.6, label=f"{router} (APGR {apgr(curve):.3f})")
    axes.plot(
        oracle.fractions * 100, oracle.quality, color="black", linestyle=":", label=f"oracle (APGR {apgr(oracle):.3f})"
    )
    axes.axhline(oracle.strong_mean, color="black", linestyle="--", label=f"strong only ({oracle.strong_mean:.3f})")
    axes.axhline(oracle.weak_mean, color="grey", linestyle="--", label=f"weak only ({oracle.weak_mean:.3f})")
    axes.set_xlim(0, 100)
    axes.set_xlabel("strong-model calls (%)")
    axes.set_ylabel("mean quality")
    axes.set_title(f"{protocol}: quality vs strong-model calls (n={len(outcomes)})")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize="small")
    return figure


def _file_safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def write_report(table: pd.DataFrame, scores_frame: pd.DataFrame, out_dir: Path) -> dict[str, Path]:
    """Write table.md, table.csv (with the query count and bootstrap intervals when the table
    has them), scores.csv and curves_<protocol>.png; return paths by file name.

    scores.csv is written alongside so that every number in the table can be recomputed.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: out_dir / name for name in ("table.md", "table.csv", "scores.csv")}
    paths["table.md"].write_text(results_markdown(table), encoding="utf-8")
    columns = [*TABLE_COLUMNS, *(c for c in ("n", *INTERVAL_COLUMNS) if c in table.columns)]
    table.loc[:, columns].to_csv(paths["table.csv"], index=False)
    scores_frame.loc[:, list(SCORE_COLUMNS)].to_csv(paths["scores.csv"], index=False)
    for protocol in sorted(scores_frame["protocol"].unique()):
        name = f"curves_{_file_safe(str(protocol))}.png"
        paths[name] = out_dir / name
        plot_curves(scores_frame, protocol).savefig(paths[name], dpi=120)
    return paths


def update_latest_link(reports_root: Path, run_dir: Path) -> Path:
    """Point reports_root/latest at run_dir with a relative symlink, swapped in atomically.

    Relative, so the reports folder can be moved or mounted elsewhere; atomic (a temporary
    link renamed over the old one), so a reader never sees a missing or half-made link.
    """
    if not run_dir.is_dir():
        raise ValueError(f"run directory {run_dir} does not exist")
    reports_root.mkdir(parents=True, exist_ok=True)
    link = reports_root / "latest"
    temporary = reports_root / f".latest.{uuid.uuid4().hex}"
    os.symlink(os.path.relpath(run_dir.resolve(), reports_root.resolve()), temporary, target_is_directory=True)
    try:
        os.replace(temporary, link)
    except BaseException:
        temporary.unlink()
        raise
    return link

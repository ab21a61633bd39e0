"""Feedback without retraining, measured prequentially on P2 (issue 35, item 3).

    python bench/prequential.py [--sample-fraction 0.3] [--block 1] [--data-root data/routellm]

P2 holds out whole MMLU subjects: a fold's test subjects are unseen in its training. On each
P2 fold, knn and ragrouter (with configs/benchmark.yaml's settings, the README's table) train on
the fold's train part and score its test part twice:

- static: every test query scored by the trained router, as the out-of-fold scores are today;
- prequential: the test queries in a fixed order, a shuffle seeded with (--seed, fold), each
  scored before its own outcome is fed back (`prequential_scores`, in blocks of --block
  queries, 1 = strictly one at a time), as a served router with a live knowledge base meets
  traffic from subjects it was not trained on.

Pooled over the folds: exact APGR and CPT(50%) of both, APGR's 95% bootstrap interval, the
paired difference prequential - static (the same draws of the queries) and that difference as
a share of the gap between today's P1 and P2 figures (the issue's target: at least half of it,
without retraining); the same over the later half of each fold's stream, where every query has
at least half of its fold's outcomes fed back before it. Written to --output-dir as prequential.json and prequential.md (with the
CPU model, the sample fraction and the stage times), and printed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ragrouter.config import RouterSpec, RunConfig, feature_configs
from ragrouter.data.ingest import ingest_sources
from ragrouter.data.records import RoutingRecords
from ragrouter.evaluation.bootstrap import interval, resampled_metrics
from ragrouter.evaluation.metrics import evaluate_scores
from ragrouter.evaluation.out_of_fold import fold_ids, queries_of
from ragrouter.evaluation.prequential import prequential_scores
from ragrouter.features.query_features import QueryFeatures, extract_features
from ragrouter.labels import Labels
from ragrouter.routers import TrainingSet, build_router
from ragrouter.splits import DEFAULT_PROTOCOLS, make_splits
from ragrouter_cli import run_parameters

from machine import cpu_model  # bench/, beside this script

logger = logging.getLogger("prequential")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PROTOCOL = "P2"
# issue 35's figures for today's routers (all of MMLU, pooled out-of-fold APGR): the gap to close
TODAY = {"ragrouter": {"P1": 0.695, "P2": 0.657}, "knn": {"P1": 0.671, "P2": 0.592}}
MODES = ("static", "prequential")


def run_config(data_root: Path, sample_fraction: float | None) -> RunConfig:
    """MMLU, protocol P2, and knn and ragrouter as configs/benchmark.yaml sets them."""
    routers = run_parameters(str(PROJECT_ROOT / "configs" / "benchmark.yaml"))["routers"]
    return RunConfig.from_dict(
        {
            "sources": [
                {"name": "mmlu", "kind": "routellm_mmlu", "path": str(data_root / "mmlu"), "conflicting_duplicates": "drop", "sample_fraction": sample_fraction}
            ],
            "protocols": [p.to_dict() for p in DEFAULT_PROTOCOLS if p.name == PROTOCOL],
            "routers": {name: routers[name] for name in TODAY},
        }
    )


def router_scores(
    spec: RouterSpec, records: RoutingRecords, labels: Labels, splits: pd.DataFrame, features: QueryFeatures, block: int, seed: int, stage: dict[str, float]
) -> pd.DataFrame:
    """Per fold: train, score the test part in its fixed order statically, then prequentially
    (which changes the router, so it comes second). Rows of SCORE_COLUMNS, router "<name> <mode>"."""
    frame = records.frame.set_index("id", drop=False)
    parts = []
    for protocol, fold, train_ids, test_ids in fold_ids(splits):
        started = time.perf_counter()
        router = build_router(spec.kind, spec.to_dict())
        router.fit(TrainingSet(queries_of(frame, train_ids, features), labels.gain_of(train_ids), labels.threshold))
        trained = time.perf_counter()
        ordered = test_ids[np.random.default_rng([seed, fold]).permutation(len(test_ids))]
        test, gain = queries_of(frame, ordered, features), labels.gain_of(ordered)
        scores = {"static": router.score(test)}
        scored = time.perf_counter()
        scores["prequential"] = prequential_scores(router, test, gain, block)
        done = time.perf_counter()
        for name, seconds in (("train", trained - started), ("static", scored - trained), ("prequential", done - scored)):
            stage[name] = stage.get(name, 0.0) + seconds
        logger.info("%s fold %d: trained on %d in %.0f s; %d test queries scored in %.0f s, prequentially in %.0f s", spec.name, fold, len(train_ids), trained - started, len(ordered), scored - trained, done - scored)
        outcomes = frame.loc[ordered]
        for mode in MODES:
            parts.append(
                pd.DataFrame(
                    {
                        "id": ordered,
                        "protocol": protocol,
                        "fold": fold,
                        "router": f"{spec.name} {mode}",
                        "score": scores[mode],
                        "strong_quality": outcomes["strong_quality"].to_numpy(),
                        "weak_quality": outcomes["weak_quality"].to_numpy(),
                        "position": np.arange(len(ordered)) / len(ordered),  # share of the fold's stream before it
                    }
                )
            )
    return pd.concat(parts, ignore_index=True)


def summary(scores: pd.DataFrame, resamples: int) -> dict[str, dict]:
    """Per router: static and prequential APGR (95% intervals), CPT(50%), their paired
    difference and its share of today's P2 -> P1 gap."""
    table = evaluate_scores(scores).set_index("router")
    draws = resampled_metrics(scores, resamples)[PROTOCOL]
    result = {}
    for name, today in TODAY.items():
        static, fed = (table.loc[f"{name} {mode}"] for mode in MODES)
        static_draws, fed_draws = (draws[f"{name} {mode}"][:, 0] for mode in MODES)
        gap, difference = today["P1"] - today["P2"], fed["APGR"] - static["APGR"]
        low, high = interval(fed_draws - static_draws)
        result[name] = {
            "static": {"APGR": static["APGR"], "APGR_interval": interval(static_draws), "CPT50": static["CPT50"]},
            "prequential": {"APGR": fed["APGR"], "APGR_interval": interval(fed_draws), "CPT50": fed["CPT50"]},
            "difference": {"APGR": difference, "APGR_interval": (low, high), "wins": float(np.mean(fed_draws > static_draws))},
            "today": today,
            "gap_closed": {"share": difference / gap, "interval": (low / gap, high / gap)},
            "target": gap / 2,
            "target_met": bool(difference >= gap / 2),  # by the point estimate
            "target_met_by_whole_interval": bool(low >= gap / 2),
            "n": int(static["n"]),
        }
    return result


def markdown(result: dict[str, dict], later: dict[str, dict], header: list[str]) -> str:
    lines = [*header, "", "All test queries:", "", *table_lines(result), ""]
    for name, r in result.items():
        today, low = r["today"], r["difference"]["APGR_interval"][0]
        verdict = ("met" if r["target_met"] else "not met") + " by the point estimate, " + ("and" if r["target_met_by_whole_interval"] else "not") + f" by the whole interval (low end {low:+.3f})"
        lines.append(
            f"- {name}: today's P1 {today['P1']:.3f}, P2 {today['P2']:.3f} (gap {today['P1'] - today['P2']:.3f}); target +{r['target']:.3f} APGR "
            f"without retraining: {verdict}; prequential above static on {100 * r['difference']['wins']:.0f}% of the bootstrap draws."
        )
    lines += ["", "The later half of each fold's stream (queries with at least half of their fold's outcomes fed back before them):", "", *table_lines(later)]
    return "\n".join(lines) + "\n"


def table_lines(result: dict[str, dict]) -> list[str]:
    lines = ["| router | static APGR [95%] | prequential APGR [95%] | prequential - static [95%] | share of today's P2 -> P1 gap closed [95%] | CPT(50%) static -> prequential |", "| --- | --- | --- | --- | --- | --- |"]
    for name, r in result.items():
        s, p, d, g = r["static"], r["prequential"], r["difference"], r["gap_closed"]
        lines.append(
            f"| {name} | {s['APGR']:.3f} [{s['APGR_interval'][0]:.3f}, {s['APGR_interval'][1]:.3f}] "
            f"| {p['APGR']:.3f} [{p['APGR_interval'][0]:.3f}, {p['APGR_interval'][1]:.3f}] "
            f"| {d['APGR']:+.3f} [{d['APGR_interval'][0]:+.3f}, {d['APGR_interval'][1]:+.3f}] "
            f"| {100 * g['share']:.0f}% [{100 * g['interval'][0]:.0f}%, {100 * g['interval'][1]:.0f}%] "
            f"| {100 * s['CPT50']:.1f}% -> {100 * p['CPT50']:.1f}% |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample-fraction", type=float, default=None, help="a deterministic share of MMLU (SourceConfig.sample_fraction), for a quick run; default: all")
    parser.add_argument("--data-root", type=Path, default=PROJECT_ROOT / "data" / "routellm")
    parser.add_argument("--block", type=int, default=1, help="queries scored before their outcomes are fed back (1: strictly prequential)")
    parser.add_argument("--seed", type=int, default=0, help="seeds each fold's order of test queries, with the fold")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap draws")
    parser.add_argument("--output-dir", type=Path, default=PROJECT_ROOT / "bench" / "results")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    started, cpu = time.perf_counter(), cpu_model()
    logger.info("CPU: %s", cpu)

    run = run_config(args.data_root, args.sample_fraction)
    records, _ = ingest_sources(run.sources)
    labels = Labels.of(records, run.labels.threshold)
    splits = make_splits(records, run.protocols)
    began, features = time.perf_counter(), {}
    for key, config in feature_configs(list(run.routers.values())).items():  # one set: both routers read one encoder
        features[key] = extract_features(records.prompts, config, progress=True)
        features[key].ids = records.frame["id"].tolist()
    stages = {"features": {"encode and parse": time.perf_counter() - began}}
    scores = pd.concat(
        [router_scores(spec, records, labels, splits, features[spec.feature_key], args.block, args.seed, stages.setdefault(spec.name, {})) for spec in run.routers.values()],
        ignore_index=True,
    )
    result, later = summary(scores, args.resamples), summary(scores[scores["position"] >= 0.5], args.resamples)
    elapsed = time.perf_counter() - started

    sample = "all of MMLU" if args.sample_fraction is None else f"MMLU sample fraction {args.sample_fraction}"
    header = [
        "# Feedback without retraining: P2, static and prequential",
        "",
        f"{sample}: {len(records)} queries, {records.frame['group'].nunique()} subjects; P2's {splits['fold'].nunique()} folds (test subjects unseen in training);",
        f"each fold's test queries in a shuffle seeded with ({args.seed}, fold), scored in blocks of {args.block} before their outcomes are fed back;",
        f"{args.resamples} paired bootstrap draws. {datetime.date.today().isoformat()}, {cpu}; run time {elapsed / 60:.1f} min.",
        "Stage times (s): " + "; ".join(f"{name}: " + ", ".join(f"{k} {v:.0f}" for k, v in times.items()) for name, times in stages.items()),
    ]
    report = markdown(result, later, header)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "prequential.md").write_text(report)
    document = {
        "date": datetime.date.today().isoformat(),
        "cpu": cpu,
        "sample_fraction": args.sample_fraction,
        "queries": len(records),
        "block": args.block,
        "seed": args.seed,
        "resamples": args.resamples,
        "run_time_s": elapsed,
        "stage_times_s": stages,
        "routers": result,
        "later_half": later,
    }
    (args.output_dir / "prequential.json").write_text(json.dumps(document, indent=2))
    print(report)


if __name__ == "__main__":
    main()

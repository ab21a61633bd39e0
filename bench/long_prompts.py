"""Head or tail: what a router should read of a long prompt, measured on MMLU.

    python bench/long_prompts.py [--sample 0.2] [--output-dir bench/results/long_prompts]

The encoder reads `max_tokens` (256) tokens of a prompt; `keep` picks which end
(ragrouter/encoder.py). Two copies of a deterministic MMLU sample are routed:

- plain: the prompts as they are (question, options, "Answer:");
- few-shot: the same prompts behind one fixed block of five worked MMLU questions that are
  not in the sample ("The following are multiple choice questions (with answers)." + five
  examples + the prompt), the shape of real traffic with a shared preamble and the question
  last. The examples' answer letters are placeholders (the data has no answer key); a router
  reads them as part of a block every prompt shares, so their truth does not matter.

For each copy and each rule (head, tail), knn, sw_ranking, mf and ragrouter are scored out of
fold on the same five folds (the plain prompts' P1 folds, reused for the few-shot copy, whose
records keep their ids and qualities), and random once per copy as a reference (it reads no
encoder, so both rules give it the same scores). The results: APGR with its 95% bootstrap
interval and CPT(50%) per copy and rule, and per router the paired difference tail - head
(the same queries on the same bootstrap draws). Written to the output dir as results.md,
results.csv (every metric and interval), differences.csv and scores.csv.gz, and printed.
"""

from __future__ import annotations

import argparse
import datetime
import glob
import logging
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ragrouter.config import RunConfig, feature_configs
from ragrouter.data.ingest import ingest_sources
from ragrouter.data.records import RoutingRecords, prompt_hash
from ragrouter.data.sources import SourceConfig
from ragrouter.encoder import Encoder, EncoderConfig
from ragrouter.evaluation.bootstrap import interval, resampled_metrics, with_intervals
from ragrouter.evaluation.metrics import evaluate_scores
from ragrouter.evaluation.out_of_fold import out_of_fold_scores
from ragrouter.features.query_features import extract_features
from ragrouter.labels import Labels
from ragrouter.routers.registry import build_router
from ragrouter.splits import make_splits

from machine import cpu_model  # bench/, beside this script

logger = logging.getLogger("long_prompts")

MMLU = "data/routellm/mmlu"
RULES = ("head", "tail")
ROUTERS = {"knn": {"k": 50}, "sw_ranking": {}, "mf": {"dim": 128, "epochs": 100}, "ragrouter": {}}
REFERENCE = {"random": {"seed": 0}}
ROUTER_ORDER = ("ragrouter", "knn", "sw_ranking", "mf", "random")
FEW_SHOT_HEADER = "The following are multiple choice questions (with answers).\n\n"
PLACEHOLDER_ANSWERS = ("B", "D", "A", "C", "B")  # not the true answers: the data has no key
EXAMPLE_CHARS = (150, 400)  # worked examples of a typical MMLU length
SAMPLE_BUCKETS = 10_000  # as SourceConfig.sample_fraction buckets prompt_hash


def load_records(sample: float) -> RoutingRecords:
    records, _ = ingest_sources([SourceConfig("mmlu", "routellm_mmlu", MMLU, conflicting_duplicates="drop", sample_fraction=sample)])
    return records


def few_shot_examples(records: RoutingRecords, count: int = len(PLACEHOLDER_ANSWERS)) -> list[str]:
    """`count` MMLU prompts from different subjects, none in `records`: those in the highest
    sampling buckets (outside any sample fraction below ~1, so the block stays the same
    whatever --sample), ties by hash; each closed with a placeholder answer letter."""
    taken = set(records.prompts)
    candidates = []
    for file in sorted(glob.glob(os.path.join(MMLU, "*.csv"))):
        subject = Path(file).stem.removeprefix("mmlu_")
        for prompt in pd.read_csv(file)["prompt"].dropna().drop_duplicates():
            if prompt not in taken and EXAMPLE_CHARS[0] <= len(prompt) <= EXAMPLE_CHARS[1] and prompt.rstrip().endswith("Answer:"):
                digest = prompt_hash(prompt)
                candidates.append((-(digest % SAMPLE_BUCKETS), digest, subject, prompt.rstrip()))
    chosen, subjects = [], set()
    for _, _, subject, prompt in sorted(candidates):
        if subject not in subjects:
            subjects.add(subject)
            chosen.append(prompt)
        if len(chosen) == count:
            break
    logger.info("few-shot examples from %s", sorted(subjects))
    return [f"{prompt} {letter}" for prompt, letter in zip(chosen, PLACEHOLDER_ANSWERS)]


def with_few_shot(records: RoutingRecords, examples: list[str]) -> RoutingRecords:
    """The same records (ids, groups, qualities) with the examples' block before each prompt."""
    block = FEW_SHOT_HEADER + "\n\n".join(examples) + "\n\n"
    frame = records.frame.copy()
    frame["prompt"] = [block + prompt for prompt in frame["prompt"]]
    return RoutingRecords(frame)


def token_lengths(prompts: list[str]) -> np.ndarray:
    """Untruncated token counts (special tokens included) under the default encoder."""
    tokenized = Encoder(EncoderConfig(max_tokens=100_000)).tokenize(prompts)
    return np.array([len(ids) for ids in tokenized.ids])


def run_config(keep: str) -> RunConfig:
    return RunConfig.from_dict(
        {
            "sources": [{"name": "mmlu", "kind": "routellm_mmlu", "path": MMLU}],
            "protocols": [{"name": "P1", "kind": "kfold", "source": "mmlu", "folds": 5}],
            "encoder": {"keep": keep},
            "routers": {**REFERENCE, **ROUTERS},
        }
    )


def scores_of(records: RoutingRecords, labels: Labels, splits: pd.DataFrame, keep: str, names: list[str], stage: dict[str, float]) -> pd.DataFrame:
    """Out-of-fold scores of the routers `names` reading through the encoder with `keep`."""
    specs = [spec for name, spec in run_config(keep).routers.items() if name in names]
    features = {}
    started = time.perf_counter()
    for key, config in feature_configs(specs).items():
        logger.info("features %s", key)
        features[key] = extract_features(records.prompts, config, progress=True)
        features[key].ids = records.frame["id"].tolist()
    stage["features"] = time.perf_counter() - started
    parts = []
    for spec in specs:
        started = time.perf_counter()
        make = lambda spec=spec: build_router(spec.kind, spec.to_dict())  # noqa: E731
        parts.append(out_of_fold_scores(spec.name, make, records, labels, splits, features.get(spec.feature_key)))
        stage[spec.name] = time.perf_counter() - started
        logger.info("%s scored in %.0f s", spec.name, stage[spec.name])
    return pd.concat(parts, ignore_index=True)


def paired_differences(scores: pd.DataFrame, resamples: int) -> pd.DataFrame:
    """Per set and router, tail - head in APGR and CPT(50%): the point value and its 95%
    interval over paired bootstrap draws (both rules' scores of a query on the same draw)."""
    rows = []
    for set_name in scores["set"].unique():
        part = scores[scores["set"] == set_name].assign(protocol=set_name)
        part = part.assign(router=part["router"] + "@" + part["rule"])
        table = evaluate_scores(part.drop(columns=["set", "rule"])).set_index("router")
        draws = resampled_metrics(part.drop(columns=["set", "rule"]), resamples)[set_name]
        for router in sorted({r.split("@")[0] for r in part["router"]} - set(REFERENCE), key=ROUTER_ORDER.index):
            tail, head = f"{router}@tail", f"{router}@head"
            row = {"set": set_name, "router": router}
            for metric, column in (("APGR", 0), ("CPT50", 1)):
                row[f"{metric}_diff"] = table.loc[tail, metric] - table.loc[head, metric]
                row[f"{metric}_diff_low"], row[f"{metric}_diff_high"] = interval(draws[tail][:, column] - draws[head][:, column])
            rows.append(row)
    return pd.DataFrame(rows)


def markdown(table: pd.DataFrame, differences: pd.DataFrame, lengths: dict[str, np.ndarray], header: list[str]) -> str:
    protocols = [f"{s}/{r}" for s in lengths for r in RULES]
    indexed = table.set_index(["protocol", "router"])
    lines = [*header, ""]
    for set_name, counts in lengths.items():
        lines.append(
            f"- {set_name}: {int((counts > 256).sum())} of {len(counts)} prompts ({100 * np.mean(counts > 256):.1f}%) exceed 256 tokens; "
            f"tokens median {int(np.median(counts))}, 95th percentile {int(np.percentile(counts, 95))}, max {int(counts.max())}"
        )
    lines += ["", "APGR [95% interval] and CPT(50%), pooled out-of-fold scores:", ""]
    lines.append("| router | " + " | ".join(f"{p} APGR | {p} CPT(50%)" for p in protocols) + " |")
    lines.append("| --- |" + " --- | --- |" * len(protocols))
    for router in ROUTER_ORDER:
        cells = []
        for protocol in protocols:
            row = indexed.loc[(protocol, router)]
            cells += [f"{row['APGR']:.3f} [{row['APGR_low']:.3f}, {row['APGR_high']:.3f}]", f"{100 * row['CPT50']:.1f}%"]
        lines.append(f"| {router} | " + " | ".join(cells) + " |")
    lines += ["", "tail - head, paired (same queries, same bootstrap draws); CPT(50%) in points, negative favours tail:", ""]
    sets = list(lengths)
    lines.append("| router | " + " | ".join(f"{s} ΔAPGR [95%] | {s} ΔCPT(50%) [95%]" for s in sets) + " |")
    lines.append("| --- |" + " --- | --- |" * len(sets))
    for router in [r for r in ROUTER_ORDER if r not in REFERENCE]:
        cells = []
        for set_name in sets:
            d = differences[(differences["set"] == set_name) & (differences["router"] == router)].iloc[0]
            cells.append(f"{d['APGR_diff']:+.3f} [{d['APGR_diff_low']:+.3f}, {d['APGR_diff_high']:+.3f}]")
            cells.append(f"{100 * d['CPT50_diff']:+.1f} [{100 * d['CPT50_diff_low']:+.1f}, {100 * d['CPT50_diff_high']:+.1f}]")
        lines.append(f"| {router} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=float, default=0.2, help="fraction of MMLU (SourceConfig.sample_fraction)")
    parser.add_argument("--output-dir", type=Path, default=Path("bench/results/long_prompts"))
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap draws")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    started, cpu = time.perf_counter(), cpu_model()
    logger.info("CPU: %s", cpu)

    plain = load_records(args.sample)
    sets = {"plain": plain, "few-shot": with_few_shot(plain, few_shot_examples(plain))}
    labels = Labels.of(plain, 0.0)
    splits = make_splits(plain, run_config("tail").protocols)  # the few-shot copy keeps these folds
    lengths = {name: token_lengths(records.prompts) for name, records in sets.items()}
    chars = {name: records.frame["prompt"].str.len() for name, records in sets.items()}
    for name in sets:
        logger.info("%s: %d prompts, %d-%d characters, %d over 256 tokens", name, len(chars[name]), chars[name].min(), chars[name].max(), (lengths[name] > 256).sum())

    parts, stages = [], {}
    for set_name, records in sets.items():
        reference = scores_of(records, labels, splits, "tail", list(REFERENCE), {})
        for rule in RULES:
            logger.info("=== %s / %s ===", set_name, rule)
            stage = stages[f"{set_name}/{rule}"] = {}
            scores = pd.concat([scores_of(records, labels, splits, rule, list(ROUTERS), stage), reference], ignore_index=True)
            parts.append(scores.assign(set=set_name, rule=rule))
    scores = pd.concat(parts, ignore_index=True)
    scores["protocol"] = scores["set"] + "/" + scores["rule"]
    table = with_intervals(evaluate_scores(scores.drop(columns=["set", "rule"])), scores, args.resamples)
    differences = paired_differences(scores, args.resamples)

    elapsed = time.perf_counter() - started
    header = [
        "# Long prompts: head or tail",
        "",
        f"MMLU sample {args.sample} ({len(plain)} prompts, {plain.frame['group'].nunique()} subjects), 5 folds (the plain prompts' P1 folds for both sets),",
        f"{args.resamples} bootstrap draws; {datetime.date.today().isoformat()}, {cpu}; run time {elapsed / 60:.1f} min.",
        "Stage times (s): " + "; ".join(f"{k}: " + ", ".join(f"{n} {v:.0f}" for n, v in s.items()) for k, s in stages.items()),
    ]
    report = markdown(table, differences, lengths, header)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "results.md").write_text(report)
    table.to_csv(args.output_dir / "results.csv", index=False)
    differences.to_csv(args.output_dir / "differences.csv", index=False)
    scores.to_csv(args.output_dir / "scores.csv.gz", index=False)
    print(report)


if __name__ == "__main__":
    main()

"""Router comparison without ZenML, like RouteLLM's `router_strategy_comparison.py`:

    python -m ragrouter.compare --datasets mmlu gsm8k --strategies random knn --output-dir out/

Each dataset is cross-validated in-distribution (5 folds by prompt hash) with every strategy;
`out/` receives table.md, table.csv, curves_<dataset>.png and scores.csv.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from ragrouter.data.ingest import ingest_sources
from ragrouter.config import RunConfig, feature_configs
from ragrouter.encoder import DTYPES, EncoderConfig
from ragrouter.errors import RAGRouterError
from ragrouter.evaluation.bootstrap import DEFAULT_RESAMPLES, with_intervals
from ragrouter.evaluation.metrics import evaluate_scores
from ragrouter.evaluation.out_of_fold import out_of_fold_scores
from ragrouter.evaluation.report import write_report
from ragrouter.features.query_features import extract_features
from ragrouter.labels import Labels
from ragrouter.routers.registry import build_router, router_names
from ragrouter.splits import make_splits

DATASETS = {
    "mmlu": {"kind": "routellm_mmlu", "path": "mmlu", "conflicting_duplicates": "drop"},
    "gsm8k": {"kind": "routellm_gsm8k", "path": "gsm8k/gsm8k_responses.csv"},
}


def compare(
    datasets: list[str],
    strategies: list[str],
    output_dir: Path,
    data_root: Path,
    encoder: EncoderConfig,
    folds: int = 5,
    sample_fraction: float | None = None,
    resamples: int = DEFAULT_RESAMPLES,
) -> pd.DataFrame:
    """Out-of-fold scores of every strategy on every dataset; writes the report and returns the table."""
    run = RunConfig.from_dict(
        {
            "sources": [
                {"name": d, **DATASETS[d], "path": str(data_root / DATASETS[d]["path"]), "sample_fraction": sample_fraction} for d in datasets
            ],
            "protocols": [{"name": d, "kind": "kfold", "source": d, "folds": folds} for d in datasets],
            "encoder": encoder.to_dict(),
            "routers": {s: {} for s in strategies},
        }
    )
    records, _ = ingest_sources(run.sources)
    labels = Labels.of(records, run.labels.threshold)
    splits = make_splits(records, run.protocols)
    features = {key: extract_features(records.prompts, config, progress=True) for key, config in feature_configs(list(run.routers.values())).items()}
    for computed in features.values():
        computed.ids = records.frame["id"].tolist()
    scores = pd.concat(
        [
            out_of_fold_scores(name, lambda spec=spec: build_router(spec.kind, spec.to_dict()), records, labels, splits, features.get(spec.feature_key))
            for name, spec in run.routers.items()
        ],
        ignore_index=True,
    )
    table = with_intervals(evaluate_scores(scores), scores, resamples=resamples)
    write_report(table, scores, output_dir)
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", type=str.lower, choices=sorted(DATASETS), default=["mmlu", "gsm8k"])
    parser.add_argument("--strategies", nargs="+", choices=router_names(), default=["random", "knn"])
    parser.add_argument("--output-dir", "--output_dir", type=Path, required=True)
    parser.add_argument("--data-root", type=Path, default=Path("data/routellm"))
    parser.add_argument("--encoder", default=EncoderConfig.name)
    parser.add_argument("--max-tokens", type=int, default=EncoderConfig.max_tokens)
    parser.add_argument("--keep", choices=("tail", "head"), default=EncoderConfig.keep, help="which end of a long prompt the encoder reads")
    parser.add_argument("--encoder-dtype", choices=DTYPES, default=EncoderConfig.dtype)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--sample-fraction", type=float, default=None, help="a deterministic sample, for quick runs")
    parser.add_argument("--resamples", type=int, default=DEFAULT_RESAMPLES, help="bootstrap draws for the intervals")
    args = parser.parse_args(argv)
    try:
        encoder = EncoderConfig.from_dict({"name": args.encoder, "max_tokens": args.max_tokens, "keep": args.keep, "dtype": args.encoder_dtype}, "encoder")
        table = compare(
            args.datasets, args.strategies, args.output_dir, args.data_root, encoder, args.folds, args.sample_fraction, args.resamples
        )
    except RAGRouterError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(table.to_string(index=False))
    print(f"report: {args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

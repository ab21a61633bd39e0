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
from ragrouter.data.sources import SourceConfig
from ragrouter.errors import RAGRouterError
from ragrouter.evaluation.bootstrap import DEFAULT_RESAMPLES, with_intervals
from ragrouter.evaluation.metrics import evaluate_scores
from ragrouter.evaluation.out_of_fold import out_of_fold_scores
from ragrouter.evaluation.report import write_report
from ragrouter.features.embeddings import embed_records
from ragrouter.features.semantic import DEFAULT_ENCODER, DEFAULT_ENCODER_DTYPE, ENCODER_DTYPES, Encoder
from ragrouter.routers.registry import router_names, with_encoder
from ragrouter.splits import ProtocolConfig, make_splits

DATASETS = {
    "mmlu": {"kind": "routellm_mmlu", "path": "mmlu", "conflicting_duplicates": "drop"},
    "gsm8k": {"kind": "routellm_gsm8k", "path": "gsm8k/gsm8k_responses.csv"},
}


def compare(
    datasets: list[str],
    strategies: list[str],
    output_dir: Path,
    data_root: Path,
    encoder: Encoder,
    folds: int = 5,
    sample_fraction: float | None = None,
    resamples: int = DEFAULT_RESAMPLES,
) -> pd.DataFrame:
    """Out-of-fold scores of every strategy on every dataset; writes the report and returns the table."""
    sources = [
        SourceConfig.from_dict(
            {"name": d, **DATASETS[d], "path": str(data_root / DATASETS[d]["path"]), "sample_fraction": sample_fraction}
        )
        for d in datasets
    ]
    records, _ = ingest_sources(sources)
    splits = make_splits(records, [ProtocolConfig(d, "kfold", d, folds=folds) for d in datasets])
    embeddings = embed_records(records, encoder)
    encoder_settings = {"name": encoder.name, "max_seq_length": encoder.max_seq_length, "dtype": encoder.dtype}
    scores = pd.concat(
        [out_of_fold_scores(s, with_encoder(s, {}, encoder_settings), records, splits, embeddings) for s in strategies],
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
    parser.add_argument("--encoder", default=DEFAULT_ENCODER)
    parser.add_argument("--max-seq-length", type=int, default=256)
    parser.add_argument("--encoder-dtype", choices=ENCODER_DTYPES, default=DEFAULT_ENCODER_DTYPE)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--sample-fraction", type=float, default=None, help="a deterministic sample, for quick runs")
    parser.add_argument("--resamples", type=int, default=DEFAULT_RESAMPLES, help="bootstrap draws for the intervals")
    args = parser.parse_args(argv)
    encoder = Encoder(args.encoder, max_seq_length=args.max_seq_length, dtype=args.encoder_dtype)
    try:
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

"""Benchmark pipeline: every configured router on the same records and splits of every
protocol, one table and one plot of curves per protocol (the paper's Tables 1 and 2);
nothing is registered."""

from __future__ import annotations

from typing import Any

import materializers  # noqa: F401  (registers the project's materializers)
from zenml import pipeline
from zenml.enums import ExecutionMode

from pipelines.stages import evaluated, extracted_features, labelled_records
from ragrouter.config import RunConfig
from steps import make_splits


@pipeline(enable_cache=True, execution_mode=ExecutionMode.FAIL_FAST)
def benchmark_pipeline(
    sources: list[dict[str, Any]] | None = None,
    protocols: list[dict[str, Any]] | None = None,
    encoder: dict[str, Any] | None = None,
    judge: dict[str, Any] | None = None,
    labels: dict[str, Any] | None = None,
    validation: dict[str, Any] | None = None,
    routers: dict[str, dict[str, Any]] | None = None,
    reports: dict[str, Any] | None = None,
) -> None:
    run = RunConfig.from_dict(locals())
    records, record_labels = labelled_records(run)
    splits = make_splits(records, protocols=[p.to_dict() for p in run.protocols])
    routers_ = list(run.routers.values())
    evaluated(run, records, record_labels, splits, extracted_features(records, routers_), routers_)

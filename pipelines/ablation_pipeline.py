"""Ablation pipeline (the paper's Tables 5 and 6): RAGRouter beside variants that each change
one part (`ablations:`), on the same records, splits and protocols, one table per ablation.
Other routers in `routers:` join the run's comparison table, not the ablation tables."""

from __future__ import annotations

from typing import Any

import materializers  # noqa: F401  (registers the project's materializers)
from zenml import pipeline
from zenml.enums import ExecutionMode

from pipelines.stages import evaluated, extracted_features, labelled_records
from ragrouter.config import RunConfig
from steps import make_splits, publish_ablations


@pipeline(enable_cache=True, execution_mode=ExecutionMode.FAIL_FAST)
def ablation_pipeline(
    sources: list[dict[str, Any]] | None = None,
    protocols: list[dict[str, Any]] | None = None,
    encoder: dict[str, Any] | None = None,
    judge: dict[str, Any] | None = None,
    labels: dict[str, Any] | None = None,
    validation: dict[str, Any] | None = None,
    routers: dict[str, dict[str, Any]] | None = None,
    ablations: dict[str, dict[str, Any]] | None = None,
    reports: dict[str, Any] | None = None,
) -> None:
    run = RunConfig.from_dict(locals()).with_ablations()
    records, record_labels = labelled_records(run)
    splits = make_splits(records, protocols=[p.to_dict() for p in run.protocols])
    routers_ = list(run.routers.values())
    report, report_dir = evaluated(run, records, record_labels, splits, extracted_features(records, routers_), routers_)
    # each variant `<router>-<change>` against its `<router>` entry
    comparisons = {
        spec.name.removeprefix(f"{spec.kind}-"): [spec.kind, spec.name] for spec in routers_ if spec.name != spec.kind and spec.kind in run.routers
    }
    publish_ablations(report, report_dir, comparisons=comparisons)

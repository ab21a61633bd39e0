"""Training pipeline, the production retraining pipeline: ingest -> validate -> label ->
features -> index -> the candidate and the baseline scored on the promotion protocol ->
trained on all records -> registered in MLflow -> promoted if it passes the gate (over the
champion, re-scored on the same split, and the baseline: docs/promotion.md) -> the MLflow
version and the run's ZenML Model version linked both ways (docs/lineage.md)."""

from __future__ import annotations

from typing import Any

import materializers  # noqa: F401  (registers the project's materializers)
from zenml import pipeline
from zenml.enums import ExecutionMode

from pipelines.model_control import attach_model
from pipelines.stages import evaluated, extracted_features, labelled_records
from pipelines.tracking import tracker_options
from ragrouter.config import RunConfig
from steps import build_index, link_model_version, make_splits, promote_router, register_router, train_router


@pipeline(enable_cache=True, execution_mode=ExecutionMode.FAIL_FAST)
def training_pipeline(
    sources: list[dict[str, Any]] | None = None,
    protocols: list[dict[str, Any]] | None = None,
    encoder: dict[str, Any] | None = None,
    judge: dict[str, Any] | None = None,
    labels: dict[str, Any] | None = None,
    validation: dict[str, Any] | None = None,
    routers: dict[str, dict[str, Any]] | None = None,
    registration: dict[str, Any] | None = None,
    promotion: dict[str, Any] | None = None,
    reports: dict[str, Any] | None = None,
) -> None:
    run = RunConfig.from_dict(locals())
    attach_model(run.registration.model_name)
    candidate, baseline, protocol = run.candidate, run.baseline, run.promotion_protocol
    scored = [candidate] if baseline.name == candidate.name else [candidate, baseline]
    records, record_labels = labelled_records(run)
    splits = make_splits(records, protocols=[protocol.to_dict()])
    features = extracted_features(records, scored)
    index = build_index(features[candidate.feature_key]) if candidate.config.retrieves else None
    report, _ = evaluated(run, records, record_labels, splits, features, scored)
    strong_model, weak_model = run.model_names
    bundle = train_router(
        records,
        record_labels,
        name=candidate.name,
        router=candidate.kind,
        router_config=candidate.to_dict(),
        strong_fraction=run.registration.strong_fraction,
        strong_model=strong_model,
        weak_model=weak_model,
        features=features.get(candidate.feature_key),
        index=index,
    )
    tracked = tracker_options(run.reports.experiment)  # every step that reads or writes MLflow
    version = register_router.with_options(**tracked)(
        bundle, report, records, splits, model_name=run.registration.model_name, experiment=run.reports.experiment
    )
    promote_router.with_options(**tracked)(
        version,
        report,
        records,
        record_labels,
        splits,
        router=candidate.name,
        baseline=baseline.name,
        model_name=run.registration.model_name,
        promotion=run.promotion.to_dict(),
        experiment=run.reports.experiment,
        features=features.get(candidate.feature_key),
    )
    link_model_version.with_options(**tracked)(version, model_name=run.registration.model_name, after="promote_router")

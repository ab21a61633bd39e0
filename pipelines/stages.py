"""The stages the pipelines share, wired from a checked RunConfig (never by building routers):
records -> (judge grades, where enabled) -> validation -> labels; features per encoder; out-of-fold scores -> evaluation ->
report files."""

from __future__ import annotations

from typing import Any

from pipelines.tracking import tracker_options
from ragrouter.config import RouterSpec, RunConfig, feature_configs
from ragrouter.data.fingerprint import fingerprint_sources
from steps import evaluate_routers, extract_features, ingest_data, label_with_judge, make_labels, publish_report, score_out_of_fold, validate_data


def labelled_records(run: RunConfig) -> tuple[Any, Any]:
    """(validated records, their labels); records whose sources give responses, not qualities,
    are graded by the judge first, when `judge.enabled`."""
    sources = [source.to_dict() for source in run.sources]
    records = ingest_data(sources=sources, data_fingerprint=fingerprint_sources(sources))
    if run.judge.enabled:
        records = label_with_judge(records, judge_config=run.judge.to_dict())
    records, _ = validate_data(records, max_prompt_chars=run.validation.max_prompt_chars, min_rows=run.validation.min_rows)
    return records, make_labels(records, threshold=run.labels.threshold)


def extracted_features(records: Any, routers: list[RouterSpec]) -> dict[str, Any]:
    """One extract_features step per encoder the routers read; feature key -> its output."""
    outputs = {}
    for i, (key, config) in enumerate(feature_configs(routers).items()):
        outputs[key] = extract_features(records, feature_config=config.to_dict(), id="extract_features" if i == 0 else f"extract_features_{i}")
    return outputs


def evaluated(run: RunConfig, records: Any, labels: Any, splits: Any, features: dict[str, Any], routers: list[RouterSpec]) -> tuple[Any, Any]:
    """Out-of-fold scores of every router on `splits`, evaluated and published once:
    (evaluation report, report folder). The two steps that log to MLflow run under the active
    stack's MLflow tracker where it has one."""
    tracked = tracker_options(run.reports.experiment)
    scores = [
        score_out_of_fold(
            records,
            labels,
            splits,
            name=spec.name,
            router=spec.kind,
            router_config=spec.to_dict(),
            features=features.get(spec.feature_key),
            id=f"score_{spec.name}",
        )
        for spec in routers
    ]
    report, _ = evaluate_routers.with_options(**tracked)(scores, experiment=run.reports.experiment, bootstrap_resamples=run.reports.bootstrap_resamples)
    return report, publish_report.with_options(**tracked)(report, reports_dir=run.reports.dir, experiment=run.reports.experiment)

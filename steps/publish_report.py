from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import mlflow
from zenml import get_step_context, log_metadata, step
from zenml.client import Client

from ragrouter.evaluation.artifacts import EvaluationReport
from ragrouter.evaluation.report import update_latest_link, write_report
from ragrouter.registry.tracking import configure_tracking, pipeline_run

logger = logging.getLogger(__name__)


@step(enable_cache=False)
def publish_report(report: EvaluationReport, reports_dir: str, experiment: str) -> Annotated[str, "report_dir"]:
    """The report's files, written once: under reports/<pipeline>/<run>/ (reports/latest ->
    it, every run, cached or not) and into the run's MLflow artifacts.

    A relative `reports_dir` is taken from the ZenML repository root (else the working directory).
    """
    context = get_step_context()
    root = Path(reports_dir)
    if not root.is_absolute():
        root = (Client().root or Path.cwd()) / root
    run_dir = root / context.pipeline.name / context.pipeline_run.name
    write_report(report.table, report.scores, run_dir)
    update_latest_link(root, run_dir)
    configure_tracking()
    with pipeline_run(experiment, str(context.pipeline_run.id), context.pipeline_run.name):
        mlflow.log_artifacts(str(run_dir), artifact_path="report")
    logger.info("report: %s (table.md, table.csv, curves_*.png, scores.csv)", run_dir)
    log_metadata({"report_dir": str(run_dir)})
    return str(run_dir)

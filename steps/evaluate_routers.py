from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import mlflow
import pandas as pd
from zenml import get_step_context, log_metadata, step
from zenml.types import MarkdownString

from ragrouter.evaluation.artifacts import EvaluationReport, OutOfFoldScores
from ragrouter.evaluation.metrics import evaluate_scores
from ragrouter.evaluation.report import results_markdown, update_latest_link, write_report
from ragrouter.registry.tracking import configure_tracking, pipeline_run

logger = logging.getLogger(__name__)


@step
def evaluate_routers(
    scores: list[OutOfFoldScores], reports_dir: str = "reports", experiment: str = "ragrouter-training"
) -> tuple[Annotated[EvaluationReport, "evaluation_report"], Annotated[MarkdownString, "results_table"]]:
    """Metrics per router and protocol, as a table, curves, MLflow metrics and files under reports/."""
    all_scores = pd.concat([s.frame for s in scores], ignore_index=True)
    table = evaluate_scores(all_scores)
    markdown = results_markdown(table)
    logger.info("results:\n%s", markdown)

    context = get_step_context()
    run = context.pipeline_run
    run_dir = Path(reports_dir) / context.pipeline.name / run.name
    paths = write_report(table, all_scores, run_dir)
    update_latest_link(Path(reports_dir), run_dir)
    logger.info("report written to %s", run_dir)

    configure_tracking()
    with pipeline_run(experiment, str(run.id), run.name):
        for row in table.itertuples(index=False):
            for metric in ("APGR", "CPT20", "CPT50", "CPT80", "APGR_routellm"):
                mlflow.log_metric(f"{row.protocol}.{row.router}.{metric}", float(getattr(row, metric)))
        for path in paths.values():
            mlflow.log_artifact(str(path), artifact_path="report")
    log_metadata({f"{r.protocol}/{r.router}/APGR": float(r.APGR) for r in table.itertuples(index=False)})
    return EvaluationReport(table, all_scores), MarkdownString(markdown)

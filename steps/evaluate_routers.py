from __future__ import annotations

import logging
import math
from typing import Annotated

import mlflow
import pandas as pd
from zenml import get_step_context, log_metadata, step
from zenml.types import MarkdownString

from ragrouter.evaluation.artifacts import EvaluationReport, OutOfFoldScores
from ragrouter.evaluation.bootstrap import DEFAULT_RESAMPLES, INTERVAL_COLUMNS, with_intervals
from ragrouter.evaluation.metrics import METRIC_COLUMNS, evaluate_scores
from ragrouter.evaluation.report import results_markdown
from ragrouter.registry.tracking import configure_tracking, pipeline_run, tracking_store_identity
from steps.cache_policy import library_cache_policy

logger = logging.getLogger(__name__)


# Its metrics land in one MLflow store: a new store gets them again.
@step(cache_policy=library_cache_policy(__file__, cache_func=tracking_store_identity))
def evaluate_routers(
    scores: list[OutOfFoldScores], experiment: str, bootstrap_resamples: int = DEFAULT_RESAMPLES
) -> tuple[Annotated[EvaluationReport, "evaluation_report"], Annotated[MarkdownString, "results_table"]]:
    """Metrics per router and protocol with bootstrap intervals and gaps to the best router: a
    table (shown in ZenML) and MLflow metrics; publish_report writes the files."""
    all_scores = pd.concat([s.frame for s in scores], ignore_index=True)
    table = with_intervals(evaluate_scores(all_scores), all_scores, resamples=bootstrap_resamples)
    markdown = results_markdown(table)
    logger.info("results:\n%s", markdown)

    run = get_step_context().pipeline_run
    configure_tracking()
    with pipeline_run(experiment, str(run.id), run.name):
        for row in table.itertuples(index=False):
            for metric in (*METRIC_COLUMNS, *INTERVAL_COLUMNS):
                if not math.isnan(value := float(getattr(row, metric))):
                    mlflow.log_metric(f"{row.protocol}.{row.router}.{metric}", value)
    log_metadata(
        {
            f"{r.protocol}/{r.router}/{metric}": float(getattr(r, metric))
            for r in table.itertuples(index=False)
            for metric in ("APGR", "APGR_low", "APGR_high")
        }
    )
    return EvaluationReport(table, all_scores), MarkdownString(markdown)

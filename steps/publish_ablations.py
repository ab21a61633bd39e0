from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

from zenml import log_metadata, step

from ragrouter.evaluation.ablation import write_ablation_tables
from ragrouter.evaluation.artifacts import EvaluationReport

logger = logging.getLogger(__name__)


@step(enable_cache=False)
def publish_ablations(
    report: EvaluationReport, report_dir: str, comparisons: dict[str, list[str]]
) -> Annotated[str, "ablations_markdown"]:
    """One table per ablation (name -> [full router, variant], per protocol) beside the run's report."""
    pairs = {name: (full, variant) for name, (full, variant) in comparisons.items()}
    tables = write_ablation_tables(report.table, report.scores, pairs, Path(report_dir))
    for name, rows in tables.items():
        log_metadata(
            {
                f"ablation.{name}": {
                    r.protocol: {"APGR_delta": round(r.APGR_delta, 4), "APGR_delta_95ci": [round(r.APGR_delta_low, 4), round(r.APGR_delta_high, 4)]}
                    for r in rows.itertuples()
                }
            }
        )
    markdown = (Path(report_dir) / "ablations.md").read_text()
    logger.info("ablations:\n%s", markdown)
    return markdown

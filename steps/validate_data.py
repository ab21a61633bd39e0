from __future__ import annotations

import logging
from typing import Annotated

from zenml import log_metadata, save_artifact, step

from ragrouter.data.records import RoutingRecords
from ragrouter.data.validate import ValidationReport, ensure_valid, validate_records
from steps.cache_policy import library_cache_policy

logger = logging.getLogger(__name__)


@step(cache_policy=library_cache_policy(__file__))
def validate_data(
    records: RoutingRecords, max_prompt_chars: int = 100_000, min_rows: int = 1
) -> tuple[Annotated[RoutingRecords, "validated_records"], Annotated[ValidationReport, "validation_report"]]:
    """Great Expectations checks; a failure keeps the report as an artifact and stops the run."""
    report = validate_records(records, max_prompt_chars=max_prompt_chars, min_rows=min_rows)
    log_metadata({"validation_success": report.success, "problems": len(report.problems), "rows": report.n_rows})
    if not report.success:
        save_artifact(report, name="validation_report")
        ensure_valid(report)
    logger.info("validation passed on %d records (%d expectations)", report.n_rows, len(report.expectations))
    return records, report

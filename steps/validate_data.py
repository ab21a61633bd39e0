from __future__ import annotations

import logging
from typing import Annotated

from zenml import get_step_context, log_metadata, save_artifact, step

from ragrouter.data.records import RoutingRecords
from ragrouter.data.validate import ValidationReport, ensure_valid, validate_records
from steps.cache_policy import library_cache_policy

logger = logging.getLogger(__name__)


@step(cache_policy=library_cache_policy(__file__))
def validate_data(
    records: RoutingRecords, max_prompt_chars: int = 100_000, min_rows: int = 1
) -> tuple[Annotated[RoutingRecords, "validated_records"], Annotated[ValidationReport, "validation_report"]]:
    """Great Expectations checks; a failure keeps the report as an artifact and stops the run.

    The validated records' metadata carries their history: the records per source, the
    ingest step's counts (from the input artifact's metadata) and this step's.
    """
    report = validate_records(records, max_prompt_chars=max_prompt_chars, min_rows=min_rows)
    log_metadata({"validation_success": report.success, "problems": len(report.problems), "rows": report.n_rows})
    if not report.success:  # its materializer's metadata count the rows it rejected
        save_artifact(report, name="validation_report")
        ensure_valid(report)
    ingested = get_step_context().inputs["records"][0].run_metadata.get("ingest_data", {})
    counts = {"checked": report.n_rows, "rejected": report.rejected_rows, "problems": len(report.problems), "warnings": report.warnings}
    log_metadata(
        {"records": len(records), "by_source": records.counts_by_source(), "ingest_data": ingested, "validate_data": counts},
        artifact_name="validated_records", infer_artifact=True,
    )
    logger.info("validation passed on %d records (%d expectations)", report.n_rows, len(report.expectations))
    return records, report

from __future__ import annotations

import logging
from typing import Annotated, Any

from zenml import log_metadata, step

from ragrouter.data.ingest import ingest_sources
from ragrouter.data.records import RoutingRecords
from ragrouter.data.sources import SourceConfig
from steps.cache_policy import library_cache_policy

logger = logging.getLogger(__name__)


@step(cache_policy=library_cache_policy(__file__))
def ingest_data(sources: list[dict[str, Any]], data_fingerprint: str) -> Annotated[RoutingRecords, "routing_records"]:
    """Read every configured source into routing records.

    `data_fingerprint` (a hash of the files' bytes, computed when the pipeline is built)
    is a parameter only so that changed files invalidate this step's cache. The artifact's
    metadata (the dashboard's) counts the records per source and what ingestion did to each
    source's rows: read, normalised, dropped, collapsed, kept.
    """
    records, summary = ingest_sources([SourceConfig.from_dict(s) for s in sources])
    logger.info("ingested %d records: %s (fingerprint %s)", len(records), records.counts_by_source(), data_fingerprint)
    log_metadata({"records": len(records), "by_source": records.counts_by_source(), "ingest_data": summary.to_dict()}, infer_artifact=True)
    return records

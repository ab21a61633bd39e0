from __future__ import annotations

import logging
from typing import Annotated, Any

from zenml import log_metadata, step

from ragrouter.data.fingerprint import file_digests
from ragrouter.data.ingest import ingest_sources
from ragrouter.data.records import RoutingRecords
from ragrouter.data.sources import SourceConfig
from steps.cache_policy import library_cache_policy

logger = logging.getLogger(__name__)


@step(cache_policy=library_cache_policy(__file__))
def ingest_data(sources: list[dict[str, Any]], data_fingerprint: str) -> Annotated[RoutingRecords, "routing_records"]:
    """Read every configured source into routing records.

    `data_fingerprint` (a hash of the files' bytes, computed when the pipeline is built)
    is a parameter only so that changed files invalidate this step's cache. The records
    artifact's metadata (the dashboard's) counts the records per source and what ingestion did
    to each source's rows (read, normalised, dropped, collapsed, kept), and names each file
    read by its sha256: a registered model's lineage (`ragrouter lineage`) names its data by them.
    """
    records, summary = ingest_sources([SourceConfig.from_dict(s) for s in sources])
    counts = records.counts_by_source()
    logger.info("ingested %d records: %s (fingerprint %s)", len(records), counts, data_fingerprint)
    data_sources = {
        s["name"]: {"kind": s["kind"], "path": s["path"], "records": counts.get(s["name"], 0), "files": file_digests(s)} for s in sources
    }
    log_metadata({"records": len(records), "by_source": counts, "ingest_data": summary.to_dict(), "data_sources": data_sources}, infer_artifact=True)
    return records

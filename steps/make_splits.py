from __future__ import annotations

import logging
from typing import Annotated, Any

import pandas as pd
from zenml import log_metadata, step

from ragrouter.data.records import RoutingRecords
from ragrouter.splits import ProtocolConfig, make_splits as split_records, skipped_protocols, split_fingerprint
from steps.cache_policy import library_cache_policy

logger = logging.getLogger(__name__)


@step(cache_policy=library_cache_policy(__file__))
def make_splits(records: RoutingRecords, protocols: list[dict[str, Any]]) -> Annotated[pd.DataFrame, "splits"]:
    """Deterministic folds of every protocol whose sources are in the data."""
    configs = [ProtocolConfig.from_dict(p) for p in protocols]
    splits = split_records(records, configs)
    present = sorted(splits["protocol"].unique())
    skipped = skipped_protocols(records, configs)
    if skipped:
        logger.warning("protocols %s skipped: their sources are not in the data", skipped)
    logger.info("splits for %s: %d assignment rows", present, len(splits))
    log_metadata({"protocols": present, "skipped": skipped, "fingerprints": {p: split_fingerprint(splits, p, records) for p in present}})
    return splits

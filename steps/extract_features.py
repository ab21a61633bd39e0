from __future__ import annotations

import logging
import time
from typing import Annotated, Any

from zenml import log_metadata, step

from ragrouter.data.records import RoutingRecords
from ragrouter.features.query_features import FeatureConfig, QueryFeatures, extract_features as extract
from steps.cache_policy import library_cache_policy

logger = logging.getLogger(__name__)


@step(cache_policy=library_cache_policy(__file__))
def extract_features(records: RoutingRecords, feature_config: dict[str, Any]) -> Annotated[QueryFeatures, "query_features"]:
    """What the routers read of every prompt (pooled vectors; token states and parse graphs
    where RAGRouter reads them), computed once per (encoder, records) for every fold and router."""
    config = FeatureConfig.from_dict(feature_config)
    started = time.perf_counter()
    features = extract(records.prompts, config, progress=True)
    features.ids = records.frame["id"].tolist()
    seconds = time.perf_counter() - started
    counts = {name: len(features.arrays[name]) for name in ("token_states", "node_pos") if name in features.arrays}
    logger.info("features of %d prompts (%s) in %.1f s", len(features), features.identity, seconds)
    log_metadata({"prompts": len(features), **counts, "identity": features.identity, "seconds": round(seconds, 1)})
    return features

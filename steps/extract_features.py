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
    """RAGRouter's inputs for every prompt (parse graphs, token states, pooled embeddings);
    cached per (feature config, records), shared by every fold and RAGRouter variant."""
    config = FeatureConfig.from_dict(feature_config)
    started = time.perf_counter()
    features = extract(records.prompts, config, progress=True)
    features.ids = records.frame["id"].tolist()
    seconds = time.perf_counter() - started
    tokens, nodes = len(features.arrays["token_states"]), len(features.arrays["node_pos"])
    with_options = int(features.arrays["answer_options"][:, 0].sum())  # column 0: has_options
    logger.info("features of %d prompts (%d tokens, %d parse nodes, %d with answer options) in %.1f s", len(features), tokens, nodes, with_options, seconds)
    log_metadata(
        {"prompts": len(features), "tokens": tokens, "nodes": nodes, "with_answer_options": with_options, "identity": config.identity, "seconds": round(seconds, 1)}
    )
    return features

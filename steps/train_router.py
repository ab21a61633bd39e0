from __future__ import annotations

import logging
from typing import Annotated, Any

import faiss
from zenml import get_step_context, log_metadata, step

from ragrouter.bundle import RouterBundle
from ragrouter.data.records import RoutingRecords
from ragrouter.features.embeddings import Embeddings
from ragrouter.features.query_features import QueryFeatures
from ragrouter.training import train_bundle
from steps.cache_policy import library_cache_policy

logger = logging.getLogger(__name__)


@step(cache_policy=library_cache_policy(__file__))
def train_router(
    records: RoutingRecords,
    embeddings: Embeddings,
    index: faiss.Index,
    router: str,
    router_config: dict[str, Any] | None = None,
    label_threshold: float = 0.0,
    strong_fraction: float = 0.5,
    strong_model: str = "strong",
    weak_model: str = "weak",
    features: QueryFeatures | None = None,
) -> Annotated[RouterBundle, "router_bundle"]:
    """The router to register, trained on all records, with its calibrated routing threshold."""
    metadata = {
        "zenml_run_id": str(get_step_context().pipeline_run.id),
        "records": len(records),
        "label_threshold": label_threshold,
        "models": {"strong": strong_model, "weak": weak_model},
        "router_entry": router,
    }
    bundle = train_bundle(router, router_config, records, embeddings, index, label_threshold, strong_fraction, metadata, features)
    logger.info("trained %s on %d records; threshold %.4f routes %.0f%% to strong", router, len(records), bundle.threshold, 100 * strong_fraction)
    log_metadata({"router": router, "threshold": bundle.threshold, "strong_fraction": strong_fraction})
    return bundle

from __future__ import annotations

import logging
from typing import Annotated, Any

import faiss
from zenml import get_step_context, log_metadata, step

from ragrouter.bundle import RouterBundle
from ragrouter.data.records import RoutingRecords
from ragrouter.features.query_features import QueryFeatures
from ragrouter.labels import Labels
from ragrouter.routers.registry import build_router
from ragrouter.training import train_bundle
from steps.cache_policy import library_cache_policy

logger = logging.getLogger(__name__)


@step(cache_policy=library_cache_policy(__file__))
def train_router(
    records: RoutingRecords,
    labels: Labels,
    name: str,
    router: str,
    router_config: dict[str, Any],
    strong_fraction: float,
    strong_model: str,
    weak_model: str,
    features: QueryFeatures | None = None,
    index: faiss.Index | None = None,
) -> Annotated[RouterBundle, "router_bundle"]:
    """The router to register, trained on all records, with its calibrated routing threshold."""
    metadata = {
        "zenml_run_id": str(get_step_context().pipeline_run.id),
        "records": len(records),
        "label_threshold": labels.threshold,
        "models": {"strong": strong_model, "weak": weak_model},
        "router_entry": name,
    }
    candidate = build_router(router, router_config, f"routers.{name}")
    bundle = train_bundle(candidate, records, labels, strong_fraction, metadata, features, index)
    logger.info("trained %s on %d records; threshold %.4f routes %.0f%% to strong", name, len(records), bundle.threshold, 100 * strong_fraction)
    log_metadata({"router": name, "threshold": bundle.threshold, "strong_fraction": strong_fraction})
    return bundle

"""Training the router that gets registered: fit on all records, calibrate the threshold."""

from __future__ import annotations

from typing import Any

import faiss

from ragrouter.bundle import RouterBundle, calibrate_threshold
from ragrouter.data.records import RoutingRecords
from ragrouter.features.embeddings import Embeddings
from ragrouter.features.query_features import QueryFeatures
from ragrouter.labels import gains
from ragrouter.routers.base import Queries, TrainingSet
from ragrouter.routers.registry import build_router


def train_bundle(
    router_name: str,
    router_config: dict[str, Any] | None,
    records: RoutingRecords,
    embeddings: Embeddings,
    index: faiss.Index | None,
    label_threshold: float,
    strong_fraction: float,
    metadata: dict[str, Any],
    features: QueryFeatures | None = None,
) -> RouterBundle:
    """Fit on every record; the threshold sends `strong_fraction` of the training traffic to strong.

    Training traffic is scored as unseen queries (leave-one-out for memorising routers),
    so the threshold is not fooled by each query finding itself.
    """
    ids = records.frame["id"].tolist()
    if embeddings.ids != ids:
        raise ValueError("embeddings are not aligned with the records: re-run embed_prompts on these records")
    if features is not None and features.ids != ids:
        raise ValueError("query features are not aligned with the records: re-run extract_features on these records")
    queries = Queries(records.prompts, embeddings.vectors, embeddings.encoder, features)
    train = TrainingSet(queries, gains(records), label_threshold, index=index)
    router = build_router(router_name, router_config).fit(train)
    threshold = calibrate_threshold(router.score_training(train), strong_fraction)
    return RouterBundle(router, threshold, strong_fraction, metadata)

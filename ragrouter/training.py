"""Training the router that gets registered: fit on all records, calibrate the threshold."""

from __future__ import annotations

from typing import Any

import faiss

from ragrouter.bundle import RouterBundle, calibrate_threshold
from ragrouter.data.records import RoutingRecords
from ragrouter.features.query_features import QueryFeatures
from ragrouter.labels import Labels
from ragrouter.routers.base import Queries, Router, TrainingSet


def train_bundle(
    router: Router,
    records: RoutingRecords,
    labels: Labels,
    strong_fraction: float,
    metadata: dict[str, Any],
    features: QueryFeatures | None = None,
    index: faiss.Index | None = None,
) -> RouterBundle:
    """Fit on every record; the threshold sends `strong_fraction` of the training traffic to strong.

    Training traffic is scored as unseen queries (leave-one-out for memorising routers), so
    the threshold is not fooled by each query finding itself. `index`, the pipeline's FAISS
    index over `features.pooled`, serves the routers that retrieve. The metadata gains
    `quality_means`, each model's mean quality over the records: what feedback that observed
    one model only imputes for the other (ragrouter/serving/feedback.py).
    """
    ids = records.frame["id"].tolist()
    if features is not None and features.ids != ids:
        raise ValueError("query features are not aligned with the records: re-run extract_features on these records")
    if index is not None and index.ntotal != len(ids):
        raise ValueError(f"the index holds {index.ntotal} vectors for {len(ids)} records: re-run build_index on these records")
    train = TrainingSet(Queries(records.prompts, features), labels.gain_of(ids), labels.threshold, index=index)
    router.fit(train)
    threshold = calibrate_threshold(router.score_training(train), strong_fraction)
    means = records.frame[["strong_quality", "weak_quality"]].mean()
    quality_means = {"strong": float(means["strong_quality"]), "weak": float(means["weak_quality"])}
    return RouterBundle(router, threshold, strong_fraction, {**metadata, "quality_means": quality_means})

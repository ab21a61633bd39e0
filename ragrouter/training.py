"""Training the router that gets registered: fit on all records, calibrate the threshold."""

from __future__ import annotations

from typing import Any

import faiss
import numpy as np

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
    index over `features.pooled`, serves the routers that retrieve.
    """
    ids = records.frame["id"].tolist()
    if features is not None and features.ids != ids:
        raise ValueError("query features are not aligned with the records: re-run extract_features on these records")
    if index is not None and index.ntotal != len(ids):
        raise ValueError(f"the index holds {index.ntotal} vectors for {len(ids)} records: re-run build_index on these records")
    train = TrainingSet(Queries(records.prompts, features), labels.gain_of(ids), labels.threshold, index=index)
    router.fit(train)
    scores = router.score_training(train)
    threshold = calibrate_threshold(scores, strong_fraction)
    frame = records.frame
    metadata = {
        **metadata,
        # the gateway reads other cost targets' thresholds off these, and imputes an unobserved
        # model's quality in feedback by its mean
        "score_quantiles": np.quantile(scores, np.linspace(0.0, 1.0, 101)).tolist(),
        "quality_means": {"strong": float(frame["strong_quality"].mean()), "weak": float(frame["weak_quality"].mean())},
    }
    return RouterBundle(router, threshold, strong_fraction, metadata)

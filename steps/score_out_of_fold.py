from __future__ import annotations

import logging
from typing import Annotated, Any

import pandas as pd
from zenml import log_metadata, step

from ragrouter.data.records import RoutingRecords
from ragrouter.evaluation.artifacts import OutOfFoldScores
from ragrouter.evaluation.out_of_fold import out_of_fold_scores
from ragrouter.features.embeddings import Embeddings
from ragrouter.features.query_features import QueryFeatures
from steps.cache_policy import library_cache_policy

logger = logging.getLogger(__name__)


@step(cache_policy=library_cache_policy(__file__))
def score_out_of_fold(
    records: RoutingRecords,
    splits: pd.DataFrame,
    embeddings: Embeddings,
    router: str,
    router_config: dict[str, Any] | None = None,
    label_threshold: float = 0.0,
    features: QueryFeatures | None = None,
) -> Annotated[OutOfFoldScores, "oof_scores"]:
    """Cross-validated scores of one router on every protocol (one step per router, cached per router)."""
    scores = out_of_fold_scores(router, router_config, records, splits, embeddings, label_threshold, features)
    logger.info("%s: %d out-of-fold scores over %s", router, len(scores), sorted(scores["protocol"].unique()))
    log_metadata({"router": router, "rows": len(scores)})
    return OutOfFoldScores(scores)

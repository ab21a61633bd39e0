from __future__ import annotations

import logging
from typing import Annotated, Any

import pandas as pd
from zenml import log_metadata, step

from ragrouter.data.records import RoutingRecords
from ragrouter.evaluation.artifacts import OutOfFoldScores
from ragrouter.evaluation.out_of_fold import out_of_fold_scores
from ragrouter.features.query_features import QueryFeatures
from ragrouter.labels import Labels
from ragrouter.routers.registry import build_router
from steps.cache_policy import library_cache_policy

logger = logging.getLogger(__name__)


@step(cache_policy=library_cache_policy(__file__))
def score_out_of_fold(
    records: RoutingRecords,
    labels: Labels,
    splits: pd.DataFrame,
    name: str,
    router: str,
    router_config: dict[str, Any],
    features: QueryFeatures | None = None,
) -> Annotated[OutOfFoldScores, "oof_scores"]:
    """Cross-validated scores of one `routers` entry on every protocol of `splits`."""
    scores = out_of_fold_scores(name, lambda: build_router(router, router_config, f"routers.{name}"), records, labels, splits, features)
    logger.info("%s: %d out-of-fold scores over %s", name, len(scores), sorted(scores["protocol"].unique()))
    log_metadata({"router": name, "rows": len(scores)})
    return OutOfFoldScores(scores)

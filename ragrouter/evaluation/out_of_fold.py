"""Out-of-fold scores: train a router on each fold's train part, score its test part."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ragrouter.data.records import RoutingRecords
from ragrouter.features.embeddings import Embeddings
from ragrouter.features.query_features import QueryFeatures
from ragrouter.labels import gains
from ragrouter.routers.base import Queries, TrainingSet
from ragrouter.routers.registry import build_router

logger = logging.getLogger(__name__)
SCORE_COLUMNS = ("id", "protocol", "fold", "router", "score", "strong_quality", "weak_quality")


def out_of_fold_scores(
    router_name: str,
    router_config: dict[str, Any] | None,
    records: RoutingRecords,
    splits: pd.DataFrame,
    embeddings: Embeddings | None = None,
    label_threshold: float = 0.0,
    features: QueryFeatures | None = None,
) -> pd.DataFrame:
    """One row per test query per (protocol, fold), columns SCORE_COLUMNS.

    Precomputed embeddings and RAGRouter features, when given, are sliced per fold.
    """
    frame = records.frame.set_index("id", drop=False)
    gain = pd.Series(gains(records), index=frame.index)
    parts = []
    folds = splits[["protocol", "fold"]].drop_duplicates().itertuples(index=False)
    for protocol, fold in tqdm(list(folds), desc=f"{router_name} folds", leave=False):
        in_fold = splits[(splits["protocol"] == protocol) & (splits["fold"] == fold)]
        train_ids = in_fold.loc[in_fold["role"] == "train", "id"].to_numpy()
        test_ids = in_fold.loc[in_fold["role"] == "test", "id"].to_numpy()
        router = build_router(router_name, router_config)
        router.fit(TrainingSet(_queries(frame, train_ids, embeddings, features), gain[train_ids].to_numpy(), label_threshold))
        test = frame.loc[test_ids]
        parts.append(
            pd.DataFrame(
                {
                    "id": test_ids,
                    "protocol": protocol,
                    "fold": int(fold),
                    "router": router_name,
                    "score": router.score(_queries(frame, test_ids, embeddings, features)),
                    "strong_quality": test["strong_quality"].to_numpy(),
                    "weak_quality": test["weak_quality"].to_numpy(),
                }
            )
        )
        logger.info("%s %s fold %s: trained on %d, scored %d", router_name, protocol, fold, len(train_ids), len(test_ids))
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in SCORE_COLUMNS})
    return pd.concat(parts, ignore_index=True)


def _queries(frame: pd.DataFrame, ids: np.ndarray, embeddings: Embeddings | None, features: QueryFeatures | None) -> Queries:
    prompts = frame.loc[ids, "prompt"].tolist()
    vectors, encoder = (embeddings.rows(ids), embeddings.encoder) if embeddings is not None else (None, None)
    return Queries(prompts, vectors, encoder, features.select(ids) if features is not None else None)

"""Out-of-fold scores: train a router on each fold's train part, score its test part."""

from __future__ import annotations

import logging
from typing import Callable, Iterator

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ragrouter.data.records import RoutingRecords
from ragrouter.evaluation.metrics import SCORE_COLUMNS
from ragrouter.features.query_features import QueryFeatures
from ragrouter.labels import Labels
from ragrouter.routers.base import Queries, Router, TrainingSet

logger = logging.getLogger(__name__)


def out_of_fold_scores(
    name: str,
    make_router: Callable[[], Router],
    records: RoutingRecords,
    labels: Labels,
    splits: pd.DataFrame,
    features: QueryFeatures | None = None,
) -> pd.DataFrame:
    """One row per test query per (protocol, fold) of `splits`, columns SCORE_COLUMNS, the
    router `name` built anew for each fold. Precomputed features, when given, are sliced per fold."""
    frame = records.frame.set_index("id", drop=False)
    parts = []
    for protocol, fold, train_ids, test_ids in tqdm(list(fold_ids(splits)), desc=f"{name} folds", leave=False):
        router = make_router()
        router.fit(TrainingSet(queries_of(frame, train_ids, features), labels.gain_of(train_ids), labels.threshold))
        test = frame.loc[test_ids]
        parts.append(
            pd.DataFrame(
                {
                    "id": test_ids,
                    "protocol": protocol,
                    "fold": fold,
                    "router": name,
                    "score": router.score(queries_of(frame, test_ids, features)),
                    "strong_quality": test["strong_quality"].to_numpy(),
                    "weak_quality": test["weak_quality"].to_numpy(),
                }
            )
        )
        logger.info("%s %s fold %s: trained on %d, scored %d", name, protocol, fold, len(train_ids), len(test_ids))
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in SCORE_COLUMNS})
    return pd.concat(parts, ignore_index=True)


def fold_ids(splits: pd.DataFrame) -> Iterator[tuple[str, int, np.ndarray, np.ndarray]]:
    """(protocol, fold, train ids, test ids) for each (protocol, fold) of `splits`, in its order."""
    for protocol, fold in splits[["protocol", "fold"]].drop_duplicates().itertuples(index=False):
        in_fold = splits[(splits["protocol"] == protocol) & (splits["fold"] == fold)]
        yield protocol, int(fold), in_fold.loc[in_fold["role"] == "train", "id"].to_numpy(), in_fold.loc[in_fold["role"] == "test", "id"].to_numpy()


def queries_of(frame: pd.DataFrame, ids: np.ndarray, features: QueryFeatures | None) -> Queries:
    """The records `ids` (of `frame`, indexed by id) as Queries, with their slice of `features`."""
    return Queries(frame.loc[ids, "prompt"].tolist(), features.select(ids) if features is not None else None)

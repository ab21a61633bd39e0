"""Re-scoring the champion's recipe on this run's split, so the gate compares like with like."""

from __future__ import annotations

import pandas as pd

from ragrouter.data.records import RoutingRecords
from ragrouter.evaluation.out_of_fold import out_of_fold_scores
from ragrouter.features.query_features import QueryFeatures
from ragrouter.labels import Labels
from ragrouter.registry.model_registry import load_bundle
from ragrouter.routers.registry import build_router


def rescore_version(
    model_name: str,
    version: str,
    protocol: str,
    records: RoutingRecords,
    labels: Labels,
    splits: pd.DataFrame,
    features: QueryFeatures | None = None,
) -> pd.DataFrame:
    """Out-of-fold scores (SCORE_COLUMNS) on `protocol` of the version's router and config,
    fitted afresh on each training fold of `splits`: the champion's recipe on today's data.

    The pipeline's features are reused where they cover what the version reads; otherwise
    the router encodes the prompts itself.
    """
    router = load_bundle(model_name, version).router
    return out_of_fold_scores(
        f"v{version}",
        lambda: build_router(router.name, router.config.to_dict()),
        records,
        labels,
        splits[splits["protocol"] == protocol],
        features,
    )

"""Re-evaluating the champion's recipe on a new split, so promotion compares like with like."""

from __future__ import annotations

import pandas as pd

from ragrouter.data.records import RoutingRecords
from ragrouter.evaluation.metrics import summarize
from ragrouter.evaluation.out_of_fold import out_of_fold_scores
from ragrouter.features.query_features import QueryFeatures
from ragrouter.labels import Labels
from ragrouter.registry.model_registry import load_bundle
from ragrouter.routers.registry import build_router


def reevaluate_version(
    model_name: str,
    version: str,
    protocol: str,
    records: RoutingRecords,
    labels: Labels,
    splits: pd.DataFrame,
    features: QueryFeatures | None = None,
) -> float:
    """APGR on `protocol` of the version's router and config, cross-validated on `splits`.

    The pipeline's features are reused where they cover what the version reads; otherwise
    the router encodes the prompts itself.
    """
    router = load_bundle(model_name, version).router
    scores = out_of_fold_scores(
        router.name,
        lambda: build_router(router.name, router.config.to_dict()),
        records,
        labels,
        splits[splits["protocol"] == protocol],
        features,
    )
    return summarize(scores["score"].to_numpy(), scores["strong_quality"].to_numpy(), scores["weak_quality"].to_numpy())["APGR"]

"""Re-evaluating the champion's recipe on a new split, so promotion compares like with like."""

from __future__ import annotations

import pandas as pd

from ragrouter.data.records import RoutingRecords
from ragrouter.evaluation.metrics import summarize
from ragrouter.evaluation.out_of_fold import out_of_fold_scores
from ragrouter.features.embeddings import Embeddings
from ragrouter.features.query_features import QueryFeatures
from ragrouter.registry.model_registry import load_bundle


def reevaluate_version(
    model_name: str,
    version: str,
    protocol: str,
    records: RoutingRecords,
    splits: pd.DataFrame,
    embeddings: Embeddings,
    label_threshold: float,
    features: QueryFeatures | None = None,
) -> float:
    """APGR on `protocol` of the version's router and config, cross-validated on `splits`.

    The pipeline's embeddings are reused when the version used the same encoder; otherwise
    the router encodes the prompts itself.
    """
    router = load_bundle(model_name, version).router
    config = router.config.to_dict()
    scores = out_of_fold_scores(
        router.name,
        config,
        records,
        splits[splits["protocol"] == protocol],
        embeddings if getattr(router, "encoder", None) == embeddings.encoder else None,
        label_threshold,
        features,
    )
    return summarize(scores["score"].to_numpy(), scores["strong_quality"].to_numpy(), scores["weak_quality"].to_numpy())["APGR"]

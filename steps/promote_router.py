from __future__ import annotations

import logging
from typing import Annotated, Any

import pandas as pd
from zenml import log_metadata, step

from ragrouter.data.records import RoutingRecords
from ragrouter.evaluation.artifacts import EvaluationReport
from ragrouter.features.query_features import QueryFeatures
from ragrouter.labels import Labels
from ragrouter.registry.champion import reevaluate_version
from ragrouter.registry.model_registry import apply_promotion, decide_promotion
from ragrouter.registry.tracking import configure_tracking
from ragrouter.splits import split_fingerprint

logger = logging.getLogger(__name__)


@step(enable_cache=False)
def promote_router(
    model_version: str,
    report: EvaluationReport,
    records: RoutingRecords,
    labels: Labels,
    splits: pd.DataFrame,
    router: str,
    model_name: str,
    promotion_protocol: str,
    features: QueryFeatures | None = None,
) -> Annotated[dict[str, Any], "promotion"]:
    """Alias `champion` moves to the new version only if its APGR is at least the champion's."""
    row = report.table[(report.table["router"] == router) & (report.table["protocol"] == promotion_protocol)]
    if row.empty:
        raise ValueError(
            f"promotion compares {promotion_protocol} APGR, but this run evaluated {router} on "
            f"{sorted(report.table['protocol'].unique())}: set promotion.protocol to one of them"
        )
    configure_tracking()
    decision = decide_promotion(
        model_name,
        model_version,
        metric_tag=f"{promotion_protocol}.APGR",
        split_tag=f"{promotion_protocol}.split",
        candidate_metric=float(row["APGR"].iloc[0]),
        split_fingerprint=split_fingerprint(splits, promotion_protocol),
        reevaluate_champion=lambda champion: reevaluate_version(
            model_name, str(champion.version), promotion_protocol, records, labels, splits, features
        ),
    )
    apply_promotion(model_name, model_version, decision)
    logger.info("%s version %s is now @%s: %s", model_name, model_version, decision.alias, decision.reason)
    result = {"model_name": model_name, "version": model_version, "alias": decision.alias, "reason": decision.reason}
    log_metadata(result)
    return result

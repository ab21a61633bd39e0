from __future__ import annotations

import logging
from typing import Annotated, Any

import pandas as pd
from zenml import log_metadata, step

from ragrouter.config import PromotionConfig
from ragrouter.data.records import RoutingRecords
from ragrouter.evaluation.artifacts import EvaluationReport
from ragrouter.features.query_features import QueryFeatures
from ragrouter.labels import Labels
from ragrouter.registry.champion import rescore_version
from ragrouter.registry.decision import PromotionDecision
from ragrouter.registry.gate import gate_decision
from ragrouter.registry.promotion import promote_by_gate
from ragrouter.registry.recovery import recover_interrupted
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
    baseline: str,
    model_name: str,
    promotion: dict[str, Any],
    experiment: str,
    features: QueryFeatures | None = None,
) -> Annotated[PromotionDecision, "promotion_decision"]:
    """The gate (ragrouter.registry.gate) decides champion or challenger against the champion
    read now, re-scored on this run's split, and the baseline; the alias moves only if that
    champion still is one. First, what killed runs left behind is cleaned up."""
    config = PromotionConfig.from_dict(promotion)
    scores = report.scores[report.scores["protocol"] == config.protocol]
    candidate, baseline_scores = scores[scores["router"] == router], scores[scores["router"] == baseline]
    if candidate.empty or baseline_scores.empty:
        raise ValueError(
            f"the gate compares {router} and the baseline {baseline} on {config.protocol}, but this run evaluated "
            f"{sorted(set(zip(report.scores['router'], report.scores['protocol'])))}: set promotion.protocol to one of them"
        )
    configure_tracking()
    recover_interrupted(model_name, experiment)
    fingerprint = split_fingerprint(splits, config.protocol, records)

    def decide(champion: str | None) -> PromotionDecision:
        enough = candidate["id"].nunique() >= config.min_queries
        rescored = rescore_version(model_name, champion, config.protocol, records, labels, splits, features) if champion and enough else None
        return gate_decision(model_name, model_version, candidate, baseline_scores, champion, rescored, config, fingerprint)

    decision = promote_by_gate(model_name, model_version, decide)
    logger.info("%s version %s is now @%s: %s", model_name, model_version, decision.alias, decision.reason)
    log_metadata({"model_name": model_name, "version": model_version, "alias": decision.alias, "reason": decision.reason})
    return decision

"""The promotion gate, in the manner of zenml-projects' gamesense: a candidate becomes champion
only over both the champion and a baseline, all scored on the same queries.

Rules (docs/promotion.md), each a Comparison in the decision:
- enough evidence: at least `min_queries` evaluated queries, else nothing is promoted;
- the baseline: the candidate's APGR is at least the baseline's (a candidate that is the
  baseline ties it and passes);
- the champion: the lower end of the 95% paired-bootstrap interval of (candidate - champion)
  APGR is above `margin`, and no guarded metric's interval reaches worse than `tolerance`
  (CPT fractions: higher is worse).
With no champion yet, the first two decide.
"""

from __future__ import annotations

import pandas as pd

from ragrouter.config import PromotionConfig
from ragrouter.evaluation.bootstrap import DEFAULT_RESAMPLES, DRAWN_METRICS, interval, resampled_metrics
from ragrouter.evaluation.metrics import summarize
from ragrouter.registry.decision import CHALLENGER, CHAMPION, Comparison, PromotionDecision

GATE_METRIC = "APGR"
TIE_ATOL = 1e-12  # the same scores give exactly the same APGR; this only absorbs rounding


def gate_decision(
    model_name: str,
    version: str,
    candidate: pd.DataFrame,
    baseline: pd.DataFrame,
    champion_version: str | None,
    champion: pd.DataFrame | None,
    config: PromotionConfig,
    split_fingerprint: str,
    resamples: int = DEFAULT_RESAMPLES,
) -> PromotionDecision:
    """The decision for `version` from out-of-fold score frames (SCORE_COLUMNS) of one protocol:
    the candidate's, the baseline's and, when there is a champion and enough queries, the
    champion's recipe's on the same queries."""
    queries = candidate["id"].nunique()
    decision = PromotionDecision(
        model_name, version, CHALLENGER, "", "gate", champion_version, config.protocol, split_fingerprint, queries
    )
    if champion is not None and set(champion["id"]) != set(candidate["id"]):
        raise ValueError(f"the champion v{champion_version} was scored on other queries than the candidate: cannot compare")
    frames = {"candidate": candidate, "baseline": baseline, **({"champion": champion} if champion is not None else {})}
    scored = pd.concat([f.assign(router=name, protocol=config.protocol) for name, f in frames.items()], ignore_index=True)
    draws = resampled_metrics(scored, resamples)[config.protocol]
    point = {name: summarize(f["score"], f["strong_quality"], f["weak_quality"]) for name, f in frames.items()}

    def compare(other: str, against: str, metric: str, rule: str, passes) -> Comparison:
        column = DRAWN_METRICS.index(metric)
        low, high = interval(draws["candidate"][:, column] - draws[other][:, column])
        difference = point["candidate"][metric] - point[other][metric]
        return Comparison(against, metric, point["candidate"][metric], point[other][metric], low, high, rule, bool(passes(difference, low, high)))

    decision.comparisons.append(
        compare("baseline", f"baseline {config.baseline}", GATE_METRIC, "candidate >= baseline", lambda d, lo, hi: d >= -TIE_ATOL)
    )
    if champion is not None:
        against = f"champion v{champion_version}"
        decision.comparisons.append(
            compare("champion", against, GATE_METRIC, f"interval low > margin {config.margin}", lambda d, lo, hi: lo > config.margin)
        )
        for metric in config.guarded:
            if metric.startswith("CPT"):  # a fraction of strong calls: higher is worse
                rule, passes = f"interval high <= tolerance {config.tolerance}", lambda d, lo, hi: hi <= config.tolerance
            else:
                rule, passes = f"interval low >= -tolerance {config.tolerance}", lambda d, lo, hi: lo >= -config.tolerance
            decision.comparisons.append(compare("champion", against, metric, rule, passes))

    failed = [c for c in decision.comparisons if not c.passed]
    if queries < config.min_queries:
        decision.reason = f"{queries} evaluated queries < promotion.min_queries {config.min_queries}: too few to promote on"
    elif failed:
        decision.reason = "; ".join(c.describe() for c in failed)
    else:
        decision.alias = CHAMPION
        decision.reason = "; ".join(c.describe() for c in decision.comparisons) + ("" if champion is not None else " (no champion yet)")
    return decision


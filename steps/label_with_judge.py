from __future__ import annotations

from typing import Annotated, Any

from zenml import log_metadata, step

from ragrouter.data.records import RoutingRecords
from ragrouter.judge.cache import VerdictCache
from ragrouter.judge.config import JudgeConfig
from ragrouter.judge.grading import build_judge, grade_records, pending_grading
from steps.cache_policy import library_cache_policy


@step(cache_policy=library_cache_policy(__file__))
def label_with_judge(records: RoutingRecords, judge_config: dict[str, Any]) -> Annotated[RoutingRecords, "judged_records"]:
    """The records whose sources give responses, not qualities, graded by the configured judge;
    the judge's calls, cache hits, tokens, cost and unparseable verdicts as metadata."""
    config = JudgeConfig.from_dict(judge_config, "judge")
    if not pending_grading(records.frame).any():
        log_metadata({"judge": {"pending": 0}})
        return records
    cache = VerdictCache(config.cache_path())
    try:
        judged, report = grade_records(records, config, build_judge(config), cache)
    finally:
        cache.close()
    log_metadata({"judge": report.to_dict()})
    return judged

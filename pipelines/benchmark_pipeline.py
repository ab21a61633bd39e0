"""Benchmark pipeline: every configured router on the same records and splits, one table and
one plot of curves per protocol (the paper's Tables 1 and 2); nothing is registered."""

from __future__ import annotations

from typing import Any

import materializers  # noqa: F401  (registers the project's materializers)
from zenml import pipeline
from zenml.enums import ExecutionMode

from pipelines.router_evaluation import evaluate_router_set

BENCHMARK_ROUTERS: dict[str, dict[str, Any]] = {"random": {"seed": 0}, "knn": {"k": 50}, "sw_ranking": {}, "mf": {}}


@pipeline(enable_cache=True, execution_mode=ExecutionMode.FAIL_FAST)
def benchmark_pipeline(
    sources: list[dict[str, Any]] | None = None,
    protocols: list[dict[str, Any]] | None = None,
    encoder: dict[str, Any] | None = None,
    routers: dict[str, dict[str, Any]] | None = None,
    label_threshold: float = 0.0,
    max_prompt_chars: int = 100_000,
    reports_dir: str = "reports",
    experiment: str = "ragrouter-benchmark",
) -> None:
    evaluate_router_set(
        sources, protocols, encoder, routers or BENCHMARK_ROUTERS, label_threshold, max_prompt_chars, reports_dir, experiment
    )

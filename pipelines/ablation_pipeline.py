"""Ablation pipeline (the paper's Tables 5 and 6): RAGRouter beside variants that each remove
or swap one part, all on the same records, splits and protocols, one table per ablation."""

from __future__ import annotations

from typing import Any

import materializers  # noqa: F401  (registers the project's materializers)
from zenml import pipeline
from zenml.enums import ExecutionMode

from pipelines.router_evaluation import evaluate_router_set
from ragrouter.routers.registry import VARIANT_KEY
from steps import publish_ablations

FULL_ROUTER = "ragrouter"
# ablation name -> the RAGRouter config fields it changes
DEFAULT_ABLATIONS: dict[str, dict[str, Any]] = {
    "no-syntax": {"syntax": False},
    "concat-fusion": {"fusion": "concat"},
    "no-retrieval": {"retrieval": False},
}


@pipeline(enable_cache=True, execution_mode=ExecutionMode.FAIL_FAST)
def ablation_pipeline(
    sources: list[dict[str, Any]] | None = None,
    protocols: list[dict[str, Any]] | None = None,
    encoder: dict[str, Any] | None = None,
    ragrouter: dict[str, Any] | None = None,
    ablations: dict[str, dict[str, Any]] | None = None,
    label_threshold: float = 0.0,
    max_prompt_chars: int = 100_000,
    reports_dir: str = "reports",
    experiment: str = "ragrouter-ablation",
) -> None:
    ablations = ablations or DEFAULT_ABLATIONS
    variants = {name: f"{FULL_ROUTER}-{name}" for name in ablations}
    routers = {FULL_ROUTER: dict(ragrouter or {})}
    for name, change in ablations.items():
        routers[variants[name]] = {VARIANT_KEY: FULL_ROUTER, **(ragrouter or {}), **change}
    evaluated = evaluate_router_set(
        sources, protocols, encoder, routers, label_threshold, max_prompt_chars, reports_dir, experiment
    )
    publish_ablations(evaluated["report"], evaluated["report_dir"], full_router=FULL_ROUTER, variants=variants)

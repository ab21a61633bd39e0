"""Ablation pipeline (the paper's Tables 5 and 6): RAGRouter beside variants that each remove
or swap one part, and, when `ragrouter_llm` is configured, the LLM router with and without
retrieved neighbours in its prompt; same records, splits and protocols, one table per ablation."""

from __future__ import annotations

from typing import Any

import materializers  # noqa: F401  (registers the project's materializers)
from zenml import pipeline
from zenml.enums import ExecutionMode

from pipelines.router_evaluation import evaluate_router_set
from ragrouter.routers.registry import VARIANT_KEY
from steps import publish_ablations

FULL_ROUTER = "ragrouter"
LLM_ROUTER = "ragrouter_llm"
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
    ragrouter_llm: dict[str, Any] | None = None,
    baselines: dict[str, dict[str, Any]] | None = None,
    label_threshold: float = 0.0,
    max_prompt_chars: int = 100_000,
    reports_dir: str = "reports",
    experiment: str = "ragrouter-ablation",
) -> None:
    ablations = ablations if ablations is not None else DEFAULT_ABLATIONS
    # Baselines (e.g. random, knn) join the run's comparison table, not the ablation tables.
    routers = {**(baselines or {}), FULL_ROUTER: dict(ragrouter or {})}
    comparisons = {}
    for name, change in ablations.items():
        routers[f"{FULL_ROUTER}-{name}"] = {VARIANT_KEY: FULL_ROUTER, **(ragrouter or {}), **change}
        comparisons[name] = [FULL_ROUTER, f"{FULL_ROUTER}-{name}"]
    if ragrouter_llm is not None:  # Table 6: the same LLM router without retrieved neighbours
        routers[LLM_ROUTER] = dict(ragrouter_llm)
        routers[f"{LLM_ROUTER}-no-rag"] = {VARIANT_KEY: LLM_ROUTER, **ragrouter_llm, "k": 0}
        comparisons["llm-no-rag"] = [LLM_ROUTER, f"{LLM_ROUTER}-no-rag"]
    evaluated = evaluate_router_set(
        sources, protocols, encoder, routers, label_threshold, max_prompt_chars, reports_dir, experiment
    )
    publish_ablations(evaluated["report"], evaluated["report_dir"], comparisons=comparisons)

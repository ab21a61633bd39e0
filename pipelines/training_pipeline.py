"""Training pipeline: the shared router evaluation, then the chosen router trained on all
records -> MLflow registry -> champion/challenger promotion."""

from __future__ import annotations

from typing import Any

import materializers  # noqa: F401  (registers the project's materializers)
from zenml import pipeline
from zenml.enums import ExecutionMode

from pipelines.router_evaluation import evaluate_router_set
from ragrouter.data.sources import SourceConfig, model_names
from steps import promote_router, register_router, train_router

DEFAULT_ROUTERS: dict[str, dict[str, Any]] = {"random": {"seed": 0}, "knn": {"k": 50}}


@pipeline(enable_cache=True, execution_mode=ExecutionMode.FAIL_FAST)
def training_pipeline(
    sources: list[dict[str, Any]] | None = None,
    protocols: list[dict[str, Any]] | None = None,
    encoder: dict[str, Any] | None = None,
    routers: dict[str, dict[str, Any]] | None = None,
    registered_router: str = "knn",
    label_threshold: float = 0.0,
    strong_fraction: float = 0.5,
    strong_model: str | None = None,
    weak_model: str | None = None,
    model_name: str = "ragrouter",
    promotion_protocol: str = "P1",
    max_prompt_chars: int = 100_000,
    reports_dir: str = "reports",
    experiment: str = "ragrouter-training",
) -> None:
    routers = routers or DEFAULT_ROUTERS
    if registered_router not in routers:
        raise ValueError(f"registered_router {registered_router!r} is not among the routers {sorted(routers)}")
    evaluated = evaluate_router_set(
        sources, protocols, encoder, routers, label_threshold, max_prompt_chars, reports_dir, experiment
    )
    records, splits, embeddings, report = (evaluated[k] for k in ("records", "splits", "embeddings", "report"))
    # Unless named in the config, the models are named as the data names them (its quality columns).
    data_strong, data_weak = model_names([SourceConfig.from_dict(s) for s in evaluated["sources"]])
    bundle = train_router(
        records,
        embeddings,
        evaluated["index"],
        router=registered_router,
        router_config=evaluated["configs"][registered_router],
        label_threshold=label_threshold,
        strong_fraction=strong_fraction,
        strong_model=strong_model or data_strong,
        weak_model=weak_model or data_weak,
        features=evaluated["features"].get(registered_router),
    )
    version = register_router(bundle, report, splits, model_name=model_name, experiment=experiment)
    promote_router(
        version,
        report,
        records,
        splits,
        embeddings,
        router=registered_router,
        model_name=model_name,
        promotion_protocol=promotion_protocol,
        label_threshold=label_threshold,
        features=evaluated["features"].get(registered_router),
    )

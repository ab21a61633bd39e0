"""Training pipeline: records -> validation -> labels -> splits -> embeddings -> index ->
out-of-fold scores -> evaluation (-> report files) -> trained router -> MLflow registry -> promotion."""

from __future__ import annotations

from typing import Any

import materializers  # noqa: F401  (registers the project's materializers)
from zenml import pipeline
from zenml.enums import ExecutionMode

from ragrouter.data.fingerprint import fingerprint_sources
from ragrouter.features.semantic import DEFAULT_ENCODER
from ragrouter.routers.registry import with_encoder
from ragrouter.splits import DEFAULT_PROTOCOLS
from steps import (
    build_index,
    embed_prompts,
    evaluate_routers,
    ingest_data,
    make_labels,
    make_splits,
    promote_router,
    publish_report,
    register_router,
    score_out_of_fold,
    train_router,
    validate_data,
)

DEFAULT_SOURCES = [
    {"name": "mmlu", "kind": "routellm_mmlu", "path": "data/routellm/mmlu", "conflicting_duplicates": "drop"},
    {"name": "gsm8k", "kind": "routellm_gsm8k", "path": "data/routellm/gsm8k/gsm8k_responses.csv"},
]
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
    strong_model: str = "gpt-4-1106-preview",
    weak_model: str = "mistralai/Mixtral-8x7B-Instruct-v0.1",
    model_name: str = "ragrouter",
    promotion_protocol: str = "P1",
    max_prompt_chars: int = 100_000,
    reports_dir: str = "reports",
    experiment: str = "ragrouter-training",
) -> None:
    sources = sources or DEFAULT_SOURCES
    protocols = protocols or [p.to_dict() for p in DEFAULT_PROTOCOLS]
    encoder = encoder or {"name": DEFAULT_ENCODER}
    routers = routers or DEFAULT_ROUTERS
    if registered_router not in routers:
        raise ValueError(f"registered_router {registered_router!r} is not among the routers {sorted(routers)}")
    configs = {name: with_encoder(name, config, encoder) for name, config in routers.items()}

    records = ingest_data(sources=sources, data_fingerprint=fingerprint_sources(sources))
    records, _ = validate_data(records, max_prompt_chars=max_prompt_chars)
    make_labels(records, label_threshold=label_threshold)
    splits = make_splits(records, protocols=protocols)
    embeddings = embed_prompts(records, encoder=encoder)
    index = build_index(embeddings)
    scores = [
        score_out_of_fold(
            records, splits, embeddings, router=name, router_config=config, label_threshold=label_threshold, id=f"score_{name}"
        )
        for name, config in configs.items()
    ]
    report, _ = evaluate_routers(scores, experiment=experiment)
    publish_report(report, reports_dir=reports_dir)
    bundle = train_router(
        records,
        embeddings,
        index,
        router=registered_router,
        router_config=configs[registered_router],
        label_threshold=label_threshold,
        strong_fraction=strong_fraction,
        strong_model=strong_model,
        weak_model=weak_model,
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
    )

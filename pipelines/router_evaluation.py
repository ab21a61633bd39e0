"""The part every pipeline shares: records -> validation -> labels -> splits -> embeddings ->
index -> out-of-fold scores per router -> evaluation -> report files."""

from __future__ import annotations

from typing import Any

from ragrouter.data.fingerprint import fingerprint_sources
from ragrouter.features.embeddings import pooled_equals_encoding
from ragrouter.features.semantic import DEFAULT_ENCODER, Encoder
from ragrouter.routers.registry import build_router, with_encoder
from ragrouter.splits import DEFAULT_PROTOCOLS
from steps import (
    build_index,
    embed_prompts,
    evaluate_routers,
    extract_features,
    ingest_data,
    make_labels,
    make_splits,
    publish_report,
    score_out_of_fold,
    validate_data,
)

DEFAULT_SOURCES = [
    {"name": "mmlu", "kind": "routellm_mmlu", "path": "data/routellm/mmlu", "conflicting_duplicates": "drop"},
    {"name": "gsm8k", "kind": "routellm_gsm8k", "path": "data/routellm/gsm8k/gsm8k_responses.csv"},
]


def evaluate_router_set(
    sources: list[dict[str, Any]] | None,
    protocols: list[dict[str, Any]] | None,
    encoder: dict[str, Any] | None,
    routers: dict[str, dict[str, Any]],
    label_threshold: float,
    max_prompt_chars: int,
    reports_dir: str,
    experiment: str,
) -> dict[str, Any]:
    """Wire the shared steps; returns their outputs and the routers' effective configs by name."""
    sources = sources or DEFAULT_SOURCES
    protocols = protocols or [p.to_dict() for p in DEFAULT_PROTOCOLS]
    encoder = encoder or {"name": DEFAULT_ENCODER}
    configs = {name: with_encoder(name, config, encoder) for name, config in routers.items()}

    records = ingest_data(sources=sources, data_fingerprint=fingerprint_sources(sources))
    records, _ = validate_data(records, max_prompt_chars=max_prompt_chars)
    make_labels(records, label_threshold=label_threshold)
    splits = make_splits(records, protocols=protocols)
    features = feature_sets(records, configs)
    embeddings = embed_prompts(records, encoder=encoder, features=embeddings_source(features, configs, encoder))
    index = build_index(embeddings)
    scores = [
        score_out_of_fold(
            records,
            splits,
            embeddings,
            router=name,
            router_config=config,
            label_threshold=label_threshold,
            features=features.get(name),
            id=f"score_{name}",
        )
        for name, config in configs.items()
    ]
    report, _ = evaluate_routers(scores, experiment=experiment)
    report_dir = publish_report(report, reports_dir=reports_dir)
    return {
        "sources": sources,
        "records": records,
        "splits": splits,
        "embeddings": embeddings,
        "index": index,
        "report": report,
        "report_dir": report_dir,
        "configs": configs,
        "features": features,
    }


def feature_sets(records: Any, configs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One extract_features step per distinct feature config among the routers that read them
    (RAGRouter and its variants); router name -> that step's output."""
    by_identity: dict[str, Any] = {}
    features = {}
    for name, config in configs.items():
        router = build_router(name, config)
        if not router.uses_query_features:
            continue
        wanted = router.config.features
        if wanted.identity not in by_identity:
            by_identity[wanted.identity] = extract_features(
                records, feature_config=wanted.to_dict(), id=f"extract_features_{len(by_identity)}" if by_identity else "extract_features"
            )
        features[name] = by_identity[wanted.identity]
    return features


def embeddings_source(features: dict[str, Any], configs: dict[str, dict[str, Any]], encoder: dict[str, Any]) -> Any | None:
    """A feature set whose pooled vectors are the pipeline's embeddings, if any: then the
    encoder runs once over the records (for RAGRouter's token states) instead of twice."""
    for name, output in features.items():
        if pooled_equals_encoding(build_router(name, configs[name]).config.features.encoder_identity, Encoder(**encoder)):
            return output
    return None

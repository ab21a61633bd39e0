"""Router registry: name -> class, like RouteLLM's ROUTER_CLS; routers register themselves."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, TypeVar

from ragrouter.routers.base import Router

ROUTERS: dict[str, type[Router]] = {}
VARIANT_KEY = "router"
R = TypeVar("R", bound=type[Router])


def register_router(name: str) -> Callable[[R], R]:
    def decorate(cls: R) -> R:
        if name in ROUTERS:
            raise ValueError(f"router name {name!r} is already registered by {ROUTERS[name].__name__}")
        cls.name = name
        ROUTERS[name] = cls
        return cls

    return decorate


def resolve_entry(name: str, config: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """A `routers:` entry -> (registry name, router config). An entry may name a variant of a
    registered router under its own name, e.g. `ragrouter-no-syntax: {router: ragrouter, syntax: false}`."""
    config = dict(config or {})
    return config.pop(VARIANT_KEY, name), config


def build_router(name: str, config: dict[str, Any] | None = None) -> Router:
    """A router by registry name (or a variant entry), its config a plain dict as in YAML run configs."""
    _import_builtin_routers()
    name, config = resolve_entry(name, config)
    if name not in ROUTERS:
        raise ValueError(f"unknown router {name!r}; registered: {sorted(ROUTERS)}")
    cls = ROUTERS[name]
    return cls(cls.config_class.from_dict(config))


def router_names() -> list[str]:
    """Every registered router name, built-in routers included."""
    _import_builtin_routers()
    return sorted(ROUTERS)


# the pipeline's encoder settings -> the router config fields that take them under another name
ENCODER_FIELDS = {"name": "encoder", "dtype": "encoder_dtype"}


def with_encoder(name: str, config: dict[str, Any] | None, encoder: dict[str, Any]) -> dict[str, Any]:
    """The router's config with the pipeline's encoder settings, for routers that embed prompts.

    The pipeline's encoder is every router's default, so embeddings computed once serve them
    all; a router entry that names its own encoder (an ablation's encoder swap) keeps it.
    """
    _import_builtin_routers()
    registry_name, _ = resolve_entry(name, config)
    known = {f.name for f in dataclasses.fields(ROUTERS[registry_name].config_class)} if registry_name in ROUTERS else set()
    shared = {key: value for key, value in encoder.items() if key in known and key != "batch_size"}
    for key, field_name in ENCODER_FIELDS.items():
        if key in encoder and field_name in known:
            shared[field_name] = encoder[key]
    return {**shared, **(config or {})}


def _import_builtin_routers() -> None:
    import ragrouter.routers.bert  # noqa: F401
    import ragrouter.routers.causal_llm  # noqa: F401
    import ragrouter.routers.knn  # noqa: F401
    import ragrouter.routers.mf  # noqa: F401
    import ragrouter.routers.ragrouter  # noqa: F401
    import ragrouter.routers.ragrouter_llm  # noqa: F401
    import ragrouter.routers.random  # noqa: F401
    import ragrouter.routers.sw_ranking  # noqa: F401

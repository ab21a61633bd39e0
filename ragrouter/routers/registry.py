"""Router registry: name -> class, like RouteLLM's ROUTER_CLS.

A router class registers itself by name with `register_router` when its module is imported.
Modules are found through the `ragrouter.routers` entry points (pyproject.toml), so the
registry imports none of them: a router is imported when it is first asked for, and another
package can add routers by declaring entry points of its own.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, Callable, TypeVar

from safetensors.numpy import load_file

from ragrouter.routers.base import Router
from ragrouter.routers.saved_configs import upgrade_saved_config
from ragrouter.typed_config import ConfigError

ENTRY_POINT_GROUP = "ragrouter.routers"
ROUTERS: dict[str, type[Router]] = {}
R = TypeVar("R", bound=type[Router])


def register_router(name: str) -> Callable[[R], R]:
    def decorate(cls: R) -> R:
        if name in ROUTERS and ROUTERS[name] is not cls:
            raise ValueError(f"router name {name!r} is already registered by {ROUTERS[name].__name__}")
        cls.name = name
        ROUTERS[name] = cls
        return cls

    return decorate


@lru_cache(maxsize=1)
def _entry_points() -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in found and found[entry.name].value != entry.value:
            raise ValueError(f"router name {entry.name!r} is declared twice: {found[entry.name].value} and {entry.value}")
        found[entry.name] = entry
    return found


def router_names() -> list[str]:
    """Every router that can be built: the registered ones and the declared ones."""
    return sorted(set(ROUTERS) | set(_entry_points()))


def router_class(name: str, path: str = "routers") -> type[Router]:
    """The class registered under `name`, its module imported on first use."""
    if name not in ROUTERS and name in _entry_points():
        _entry_points()[name].load()
    if name not in ROUTERS:
        raise ConfigError(f"{path}: unknown router {name!r}; known: {', '.join(router_names())}")
    return ROUTERS[name]


def build_router(name: str, config: dict[str, Any] | None = None, path: str | None = None) -> Router:
    """A router by registry name, its config a plain dict as in YAML run configs (checked,
    errors prefixed with `path`, by default `routers.<name>`)."""
    path = path or f"routers.{name}"
    cls = router_class(name, path)
    return cls(cls.config_class.from_dict(config or {}, path))


def load_router(directory: Path) -> Router:
    """Rebuild a saved router by name from its directory (configs saved in an older shape
    are read as today's: `saved_configs.py`)."""
    meta = json.loads((directory / "router.json").read_text())
    router = build_router(meta["router"], upgrade_saved_config(meta["router"], meta["config"]))
    state_file = directory / "state.safetensors"
    router.load_state(load_file(str(state_file)) if state_file.exists() else {}, directory)
    return router

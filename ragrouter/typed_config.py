"""Typed configs that round-trip to plain dicts (YAML, JSON), in the manner of peft's configs.

A config is a dataclass deriving from `TypedConfig`. `from_dict` builds it from a mapping,
nested dataclasses, lists and dicts included, and checks every value against its field's
type, so a typo fails when the run starts and names where it is:
`routers.ragrouter.max_tokns: unknown key; did you mean max_tokens?`.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
from collections.abc import Mapping
from typing import Any, Literal, Self, Union, get_args, get_origin, get_type_hints

from ragrouter.errors import RAGRouterError


class ConfigError(RAGRouterError, ValueError):
    """A run config that cannot be used: the message starts with the setting's path."""


@dataclasses.dataclass
class TypedConfig:
    """Base of the project's configs: `from_dict` parses and checks, `to_dict` serialises."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, path: str = "") -> Self:
        """`data` as this config; `path` (e.g. "routers.knn") prefixes every error message."""
        return parse(cls, {} if data is None else data, path)


def parse(cls: type, data: Any, path: str) -> Any:
    """A dataclass of type `cls` from `data`, or a ConfigError naming the offending key."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path or cls.__name__}: expected a mapping of settings, got {_shown(data)}")
    settable = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = get_type_hints(cls)
    for key in data:
        if key not in settable:
            raise ConfigError(f"{_join(path, key)}: unknown key; {_suggestion(str(key), cls, hints)}")
    for name, f in settable.items():
        if name not in data and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{_join(path, name)}: required")
    values = {key: convert(hints[key], value, _join(path, key)) for key, value in data.items()}
    try:
        return cls(**values)
    except ConfigError:
        raise
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{path or cls.__name__}: {error}") from None


def convert(kind: Any, value: Any, path: str) -> Any:
    """`value` checked against the type `kind` (nested configs parsed)."""
    origin, args = get_origin(kind), get_args(kind)
    if kind is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return convert(option, value, path)
            except ConfigError as error:
                errors.append(error)
        raise errors[0]
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{path}: must be one of {', '.join(map(str, args))}; got {_shown(value)}")
        return value
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        return value if isinstance(value, kind) else parse(kind, value, path)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {_shown(value)}")
        item = args[0] if args else Any
        items = [convert(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a mapping, got {_shown(value)}")
        item = args[1] if args else Any
        return {k: convert(item, v, _join(path, k)) for k, v in value.items()}
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind in (int, str, bool) and not (isinstance(value, kind) and not (kind is int and isinstance(value, bool))):
        raise ConfigError(f"{path}: expected {kind.__name__}, got {_shown(value)}")
    if kind is float:
        raise ConfigError(f"{path}: expected a number, got {_shown(value)}")
    return value


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _shown(value: Any) -> str:
    return f"{type(value).__name__} {value!r}" if value is not None else "nothing (null)"


def _suggestion(key: str, cls: type, hints: dict[str, Any]) -> str:
    """The closest setting of `cls`, its nested configs' included (`encoder.max_tokens`)."""
    candidates = {name: name for name in hints if name in {f.name for f in dataclasses.fields(cls)}}
    for name, kind in hints.items():
        nested = next((k for k in (kind, *get_args(kind)) if isinstance(k, type) and dataclasses.is_dataclass(k)), None)
        if nested is not None:
            candidates.update({f"{name}.{f.name}": f.name for f in dataclasses.fields(nested)})
    close = difflib.get_close_matches(key, list(candidates.values()), n=1)
    if not close:
        return f"known keys: {', '.join(sorted(k for k in candidates if '.' not in k))}"
    return f"did you mean {next(path for path, leaf in candidates.items() if leaf == close[0])}?"

"""The run config: one typed tree for every pipeline, parsed and checked once at its entry.

A YAML run config (`configs/*.yaml`, under `parameters:`) states only what differs from the
defaults here; its sections are this tree's fields:

    sources      where routing records come from            (ragrouter.data.sources)
    protocols    evaluation protocols (P1-P4)               (ragrouter.splits)
    encoder      the one encoder every router reads through (ragrouter.encoder)
    judge        an LLM judge grading sources that give responses, not qualities (ragrouter.judge)
    labels       the label threshold t: "strong needed" = gain > t
    validation   limits the records are checked against
    routers      entry name -> router settings; `router:` names a registered router when the
                 entry name is a variant's (`ragrouter-no-syntax: {router: ragrouter, ...}`)
    registration the router trained on all records and registered in MLflow
    promotion    the gate a candidate passes to become champion (docs/promotion.md)
    reports      where reports go and the MLflow experiment
    ablations    variant name -> changes to `ragrouter` (the ablation pipeline)

A router that encodes takes the top-level `encoder:` block; its entry may change part of it
(`encoder: {dtype: qint8}`), and the rest still comes from the top.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from ragrouter.data.sources import SourceConfig, model_names
from ragrouter.encoder import EncoderConfig
from ragrouter.evaluation.bootstrap import DRAWN_METRICS
from ragrouter.features.query_features import FeatureConfig
from ragrouter.judge.config import JudgeConfig
from ragrouter.routers.base import RouterConfig
from ragrouter.routers.registry import router_class
from ragrouter.splits import DEFAULT_PROTOCOLS, ProtocolConfig
from ragrouter.typed_config import ConfigError, TypedConfig, parse

VARIANT_KEY = "router"


def default_sources() -> list[SourceConfig]:
    """RouteLLM's MMLU and GSM8K as `make data` puts them in data/routellm."""
    return [
        SourceConfig("mmlu", "routellm_mmlu", "data/routellm/mmlu", conflicting_duplicates="drop"),
        SourceConfig("gsm8k", "routellm_gsm8k", "data/routellm/gsm8k/gsm8k_responses.csv"),
    ]


@dataclass
class LabelsConfig:
    threshold: float = 0.0  # "strong needed" = gain > threshold (Hybrid LLM's relaxation when > 0)

    def __post_init__(self) -> None:
        if self.threshold < 0:
            raise ValueError(f"threshold must be >= 0, got {self.threshold}")


@dataclass
class ValidationConfig:
    """min_rows: fewer records than this stop the run at validation (exit 2): too few to fit
    folds and draw a routing curve on (a six-row file would otherwise fail deep in scoring)."""

    max_prompt_chars: int = 100_000
    min_rows: int = 50


@dataclass
class RegistrationConfig:
    """router: the `routers` entry trained on all records and registered as `model_name`;
    strong_fraction: the share of traffic its calibrated threshold sends to the strong model;
    strong_model / weak_model: the names it routes to (default: the data's quality columns)."""

    router: str = "ragrouter"
    model_name: str = "ragrouter"
    strong_fraction: float = 0.5
    strong_model: str | None = None
    weak_model: str | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.strong_fraction <= 1.0:
            raise ValueError(f"strong_fraction must be in [0, 1], got {self.strong_fraction}")


@dataclass
class PromotionConfig(TypedConfig):
    """The gate a candidate passes to become champion (docs/promotion.md).

    protocol: the protocol the candidate, the champion's recipe and the baseline are scored on;
    scored_folds: how many of its folds (1: a held-out fold, each router fitted once; null:
    every fold, full cross-validation as the benchmark does); margin: the APGR gain over the
    champion the lower end of its 95% paired-bootstrap interval must exceed; guarded: metrics
    that must not get worse than the champion's, tolerance: by how much their interval's worse
    end may (CPT fractions: higher is worse); baseline: a router the candidate must score at
    least as well as (a `routers` entry of that name, else that router with its defaults);
    min_queries: fewer evaluated queries than this and nothing is promoted."""

    protocol: str = "P1"
    scored_folds: int | None = 1
    margin: float = 0.0
    guarded: list[str] = field(default_factory=lambda: ["CPT50"])
    tolerance: float = 0.05
    baseline: str = "knn"
    min_queries: int = 200


@dataclass
class ReportsConfig:
    dir: str = "reports"  # relative to the ZenML repository root
    experiment: str = "ragrouter"
    bootstrap_resamples: int = 1000


@dataclass
class RouterSpec:
    """One `routers` entry: its name in reports, the registered router it builds, its config."""

    name: str
    kind: str
    config: RouterConfig

    def to_dict(self) -> dict[str, Any]:
        return self.config.to_dict()

    @property
    def feature_key(self) -> str | None:
        """The feature set it reads (its encoder's identity), None if it reads raw prompts."""
        wanted = self.config.features()
        return None if wanted is None else wanted.encoder.identity


def feature_configs(routers: list[RouterSpec]) -> dict[str, FeatureConfig]:
    """One feature set per encoder (`RouterSpec.feature_key`), holding what every router that
    reads it needs: a record set is encoded once per encoder, whatever reads it."""
    merged: dict[str, FeatureConfig] = {}
    for spec in routers:
        wanted = spec.config.features()
        if wanted is None:
            continue
        have = merged.get(spec.feature_key)
        if have is not None and wanted.parse is not None and have.parse is not None and wanted.parse != have.parse:
            raise ConfigError(f"routers.{spec.name}.parse: routers that share an encoder must parse alike")
        if have is not None:
            wanted = FeatureConfig(have.encoder, have.token_states or wanted.token_states, have.parse or wanted.parse)
        merged[spec.feature_key] = wanted
    return merged


@dataclass
class RunConfig(TypedConfig):
    sources: list[SourceConfig] = field(default_factory=default_sources)
    protocols: list[ProtocolConfig] = field(default_factory=lambda: [copy.copy(p) for p in DEFAULT_PROTOCOLS])
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    labels: LabelsConfig = field(default_factory=LabelsConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    routers: dict[str, RouterSpec] = field(default_factory=dict)
    registration: RegistrationConfig = field(default_factory=RegistrationConfig)
    promotion: PromotionConfig = field(default_factory=PromotionConfig)
    reports: ReportsConfig = field(default_factory=ReportsConfig)
    ablations: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, path: str = "") -> RunConfig:
        """Parse every section; `None` sections take their defaults. Router entries are built
        by their registered config classes, with the top-level encoder merged in."""
        data = {key: value for key, value in (data or {}).items() if value is not None}
        routers = data.pop("routers", {"ragrouter": {}})
        if not isinstance(routers, Mapping):
            raise ConfigError(f"routers: expected a mapping of router entries, got {type(routers).__name__}")
        config = parse(cls, data, path)
        config.routers = {name: config.router_spec(name, entry) for name, entry in routers.items()}
        config._check()
        return config

    def router_spec(self, name: str, entry: Mapping[str, Any] | None) -> RouterSpec:
        """The `routers.<name>` entry as a typed router config."""
        entry = dict(entry or {})
        kind = entry.pop(VARIANT_KEY, name)
        cls = router_class(kind, f"routers.{name}")
        if "encoder" in {f.name for f in fields(cls.config_class)}:
            entry["encoder"] = {**self.encoder.to_dict(), **(entry.get("encoder") or {})}
        return RouterSpec(name, kind, cls.config_class.from_dict(entry, f"routers.{name}"))

    def _check(self) -> None:
        source_names = [s.name for s in self.sources]
        if not source_names:
            raise ConfigError("sources: at least one source is needed")
        if len(set(source_names)) != len(source_names):
            raise ConfigError(f"sources: names must differ, got {source_names}")
        judged = [s.name for s in self.sources if s.judged]
        if judged and not self.judge.enabled:
            raise ConfigError(f"sources {judged} give responses but no quality columns: set judge.enabled: true to grade them")
        for i, protocol in enumerate(self.protocols):
            missing = protocol.sources - set(source_names)
            if missing:
                raise ConfigError(f"protocols[{i}] ({protocol.name}): names sources {sorted(missing)} that are not among sources {source_names}")
        unguardable = [m for m in self.promotion.guarded if m not in DRAWN_METRICS]
        if unguardable:
            raise ConfigError(f"promotion.guarded: {unguardable} cannot be guarded; choose among {list(DRAWN_METRICS)}")
        if self.promotion.min_queries < 1:
            raise ConfigError(f"promotion.min_queries: must be >= 1, got {self.promotion.min_queries}")
        try:
            self.baseline
        except ConfigError as error:
            raise ConfigError(f"promotion.baseline: {error}") from None
        if self.promotion.protocol in {p.name for p in self.protocols}:
            try:
                self.promotion_protocol
            except ValueError as error:
                raise ConfigError(f"promotion.scored_folds: {error}") from None

    def to_dict(self) -> dict[str, Any]:
        """Plain data, router entries as their full configs (the encoder inside each)."""
        plain = dataclasses.asdict(self)
        plain["routers"] = {name: {VARIANT_KEY: spec.kind, **spec.to_dict()} for name, spec in self.routers.items()}
        return plain

    # What the pipelines read of it.
    @property
    def candidate(self) -> RouterSpec:
        """The router the training pipeline trains, registers and promotes."""
        name = self.registration.router
        if name not in self.routers:
            raise ConfigError(f"registration.router: {name!r} is not among the routers {sorted(self.routers)}")
        return self.routers[name]

    @property
    def promotion_protocol(self) -> ProtocolConfig:
        """The promotion protocol as the training pipeline scores it (`promotion.scored_folds`)."""
        for protocol in self.protocols:
            if protocol.name == self.promotion.protocol:
                return dataclasses.replace(protocol, scored_folds=self.promotion.scored_folds)
        raise ConfigError(f"promotion.protocol: {self.promotion.protocol!r} is not among the protocols {[p.name for p in self.protocols]}")

    @property
    def baseline(self) -> RouterSpec:
        """The router the candidate must score at least as well as: the `routers` entry named
        `promotion.baseline`, else that registered router with its defaults (and the encoder)."""
        name = self.promotion.baseline
        return self.routers[name] if name in self.routers else self.router_spec(name, {})

    @property
    def model_names(self) -> tuple[str, str]:
        """The strong and weak models' names: as configured, else as the data names them."""
        strong, weak = model_names(self.sources)
        return self.registration.strong_model or strong, self.registration.weak_model or weak

    def with_ablations(self) -> RunConfig:
        """The routers plus one `ragrouter-<name>` variant per ablation (its changes merged
        into the `ragrouter` entry's settings)."""
        base = self.routers.get("ragrouter")
        if base is None and self.ablations:
            raise ConfigError("ablations: they change the `ragrouter` entry, which routers does not have")
        ablated = copy.copy(self)
        ablated.routers = dict(self.routers)
        for name, change in self.ablations.items():
            entry = _merged({VARIANT_KEY: "ragrouter", **base.to_dict()}, change)
            ablated.routers[f"ragrouter-{name}"] = self.router_spec(f"ragrouter-{name}", entry)
        return ablated


def _merged(base: dict[str, Any], change: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `change` applied, nested mappings merged key by key."""
    merged = dict(base)
    for key, value in change.items():
        merged[key] = _merged(merged[key], value) if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping) else value
    return merged

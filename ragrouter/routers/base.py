"""The router contract (RouteLLM's one-method interface, scikit-learn's estimator habits).

A router's constructor only stores its typed config; `fit` learns state held in attributes
ending in `_`; `score` returns P(strong model needed) per query, higher = route to strong.
State is saved as JSON + safetensors (+ files a router adds, such as a FAISS index): no pickle.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self, Sequence

import numpy as np
from safetensors.numpy import save_file

from ragrouter.encoder import EncoderConfig
from ragrouter.features.query_features import FeatureConfig, QueryFeatures, ServingThreads, extract_features
from ragrouter.retrieval import build_index
from ragrouter.typed_config import TypedConfig


@dataclass
class RouterConfig(TypedConfig):
    """Base of the typed router configs; round-trips to JSON like peft's configs."""

    def features(self) -> FeatureConfig | None:
        """What the router reads of the encoder (None: it reads raw prompts only)."""
        return None

    @property
    def retrieves(self) -> bool:
        """Whether the router searches a FAISS index of its training queries."""
        return False


@dataclass
class Queries:
    """Prompts plus, when already computed, their features (so the pipeline encodes a record
    set once for all folds and routers)."""

    prompts: Sequence[str]
    features: QueryFeatures | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.prompts)

    def features_for(self, wanted: FeatureConfig, threads: ServingThreads | None = None) -> QueryFeatures:
        """The given features when they cover `wanted`, else computed now (and kept)."""
        if self.features is None or not self.features.covers(wanted):
            self.features = extract_features(self.prompts, wanted, threads=threads)
        return self.features

    def vectors(self, encoder: EncoderConfig) -> np.ndarray:
        """The prompts' sentence vectors from `encoder`."""
        return self.features_for(FeatureConfig(encoder)).pooled


@dataclass
class TrainingSet:
    """Queries with their gain (strong - weak quality) and the binary target threshold t.

    `index` is the FAISS index over the queries' sentence vectors, in order: the pipeline's
    when it passes one, else built on first use by the routers that retrieve.
    """

    queries: Queries
    gain: np.ndarray
    label_threshold: float = 0.0
    index: Any = field(default=None, repr=False)

    @property
    def strong_needed(self) -> np.ndarray:
        return self.gain > self.label_threshold

    def retrieval_index(self, encoder: EncoderConfig) -> Any:
        if self.index is None:
            self.index = build_index(self.queries.vectors(encoder))
        if self.index.ntotal != len(self.gain):
            raise ValueError(f"index holds {self.index.ntotal} vectors but the training set has {len(self.gain)} queries")
        return self.index


class Router(ABC):
    name: ClassVar[str]
    config_class: ClassVar[type[RouterConfig]] = RouterConfig

    def __init__(self, config: RouterConfig | None = None):
        self.config = config if config is not None else self.config_class()

    def fit(self, train: TrainingSet) -> Self:
        return self

    @abstractmethod
    def score(self, queries: Queries) -> np.ndarray:
        """P(strong model needed) for each query."""

    def score_training(self, train: TrainingSet) -> np.ndarray:
        """Scores of the training queries as unseen traffic would get them (for calibration).

        Routers that memorise their training set override this to leave each query out.
        """
        return self.score(train.queries)

    def remember(self, queries: Queries, gain: np.ndarray) -> bool:
        """Add labelled queries to what the router retrieves from, without retraining; False
        when the router retrieves nothing (it then keeps nothing).

        So a served router learns from observed outcomes between training runs. With no
        queries it changes nothing and still answers whether it learns this way.
        """
        return False

    @property
    def knowledge_size(self) -> int:
        """How many labelled queries the router retrieves from (0 when none)."""
        return 0

    def prepare_serving(self) -> None:
        """Process settings for routing requests one by one, set when a served model loads."""

    def score_prompts(self, prompts: Sequence[str]) -> np.ndarray:
        return self.score(Queries(list(prompts)))

    # Persistence: subclasses expose their learned arrays and may write extra files.
    def state_arrays(self) -> dict[str, np.ndarray]:
        return {}

    def load_state(self, arrays: dict[str, np.ndarray], directory: Path) -> None:
        pass

    def save_extra(self, directory: Path) -> None:
        pass

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "router.json").write_text(
            json.dumps({"router": self.name, "config": self.config.to_dict()}, indent=2)
        )
        arrays = self.state_arrays()
        if arrays:
            save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(directory / "state.safetensors"))
        self.save_extra(directory)


class RemembersGains:
    """Mixin of routers whose knowledge is a FAISS index of labelled queries' sentence vectors
    (`index_`) and their gains (`gain_`, row for row), both saved with the router: `remember`
    extends the two, so what it adds is retrieved at once and survives a save and load."""

    config: Any  # the router's config: it has the `encoder` whose vectors the index holds
    index_: Any  # faiss.Index
    gain_: np.ndarray

    def remember(self, queries: Queries, gain: np.ndarray) -> bool:
        gain = np.asarray(gain, dtype=np.float64)
        if gain.shape != (len(queries),):
            raise ValueError(f"gain: expected one value per query, shape ({len(queries)},), got shape {gain.shape}")
        bad = ~(np.isfinite(gain) & (np.abs(gain) <= 1.0))
        if bad.any():
            raise ValueError(f"gain: every value must be a number in [-1, 1], got {gain[bad][:3].tolist()}")
        if len(queries):
            self.index_.add(np.ascontiguousarray(queries.vectors(self.config.encoder), dtype=np.float32))
            self.gain_ = np.concatenate([self.gain_, gain])
        return True

    @property
    def knowledge_size(self) -> int:
        return int(self.index_.ntotal)


@dataclass
class EmbeddingRouterConfig(RouterConfig):
    """Config of routers that read the prompt's sentence vector."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)

    def features(self) -> FeatureConfig:
        return FeatureConfig(self.encoder)

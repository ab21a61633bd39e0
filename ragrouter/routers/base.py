"""The router contract (RouteLLM's one-method interface, scikit-learn's estimator habits).

A router's constructor only stores its typed config; `fit` learns state held in attributes
ending in `_`; `score` returns P(strong model needed) per query, higher = route to strong.
State is saved as JSON + safetensors (+ files a router adds, such as a FAISS index): no pickle.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Self, Sequence

import numpy as np
from safetensors.numpy import load_file, save_file

from ragrouter.features.query_features import QueryFeatures
from ragrouter.features.semantic import DEFAULT_ENCODER, DEFAULT_ENCODER_DTYPE, Encoder, check_encoder_dtype


@dataclass
class RouterConfig:
    """Base of the typed router configs; round-trips to JSON like peft's configs."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown fields {sorted(unknown)}; known: {sorted(known)}")
        return cls(**data)


@dataclass
class Queries:
    """Prompts plus, when already computed, their embeddings and RAGRouter features (so the
    pipeline computes them once for all folds and routers)."""

    prompts: Sequence[str]
    embeddings: np.ndarray | None = None
    encoder: Encoder | None = field(default=None, repr=False)
    features: QueryFeatures | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.prompts)

    def vectors(self, encoder: Encoder) -> np.ndarray:
        """The embeddings from `encoder`; reused when the pipeline computed them with it."""
        if self.embeddings is not None and (self.encoder is None or self.encoder.identity == encoder.identity):
            return self.embeddings
        self.embeddings, self.encoder = encoder.encode(self.prompts), encoder
        return self.embeddings


@dataclass
class TrainingSet:
    """Queries with their gain (strong - weak quality) and the binary target threshold t.

    `index` is an optional FAISS index already built over the queries' embeddings, in order.
    """

    queries: Queries
    gain: np.ndarray
    label_threshold: float = 0.0
    index: Any = field(default=None, repr=False)

    @property
    def strong_needed(self) -> np.ndarray:
        return self.gain > self.label_threshold


class Router(ABC):
    name: ClassVar[str]
    config_class: ClassVar[type[RouterConfig]] = RouterConfig
    uses_query_features: ClassVar[bool] = False  # reads Queries.features (RAGRouter's inputs)

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


@dataclass
class EmbeddingRouterConfig(RouterConfig):
    """Config of routers that read the prompt's sentence embedding (the pipeline's encoder)."""

    encoder: str = DEFAULT_ENCODER
    max_seq_length: int = 256
    batch_size: int = 64
    encoder_dtype: str = DEFAULT_ENCODER_DTYPE

    def __post_init__(self) -> None:
        check_encoder_dtype(self.encoder_dtype)


class EmbeddingRouter(Router):
    """A router over sentence embeddings; reuses the pipeline's embeddings when they match."""

    config: EmbeddingRouterConfig

    @property
    def encoder(self) -> Encoder:
        cfg = self.config
        return Encoder(cfg.encoder, batch_size=cfg.batch_size, max_seq_length=cfg.max_seq_length, dtype=cfg.encoder_dtype)


def load_router(directory: Path) -> Router:
    """Rebuild a saved router by name from its directory."""
    from ragrouter.routers.registry import build_router

    meta = json.loads((directory / "router.json").read_text())
    config = meta["config"]
    if "encoder" in config and "encoder_dtype" not in config:
        config = {**config, "encoder_dtype": "float32"}  # saved before encoders had a dtype
    router = build_router(meta["router"], config)
    state_file = directory / "state.safetensors"
    arrays = load_file(str(state_file)) if state_file.exists() else {}
    router.load_state(arrays, directory)
    return router

"""kNN routing: the similarity-weighted mean gain of the k nearest training queries (FAISS)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Self

import faiss
import numpy as np

from ragrouter.retrieval import load_index, save_index, search
from ragrouter.routers.base import EmbeddingRouterConfig, Queries, RemembersGains, Router, TrainingSet
from ragrouter.routers.registry import register_router


@dataclass
class KNNRouterConfig(EmbeddingRouterConfig):
    k: int = 50

    @property
    def retrieves(self) -> bool:
        return True


@register_router("knn")
class KNNRouter(RemembersGains, Router):
    """score = (weighted mean gain + 1) / 2, weights = max(cosine similarity, 0).

    The mean gain lies in [-1, 1]; the affine map puts it in [0, 1] without changing the
    order, so it reads as P(strong needed) on binary outcomes. Queries it `remember`s join
    the neighbours at once.
    """

    config_class = KNNRouterConfig
    config: KNNRouterConfig
    index_: faiss.Index
    gain_: np.ndarray

    def fit(self, train: TrainingSet) -> Self:
        """Index the training queries (or reuse the index the pipeline built over them)."""
        self.index_, self.gain_ = train.retrieval_index(self.config.encoder), np.asarray(train.gain, dtype=np.float64)
        return self

    def _weighted_gain(self, vectors: np.ndarray, exclude_self: bool) -> np.ndarray:
        sims, idx = search(self.index_, vectors, self.config.k, exclude_self=exclude_self)
        weights = np.where(idx >= 0, np.clip(sims, 0.0, None), 0.0)
        neighbour_gain = np.where(idx >= 0, self.gain_[np.clip(idx, 0, None)], 0.0)
        total = weights.sum(axis=1)
        mean = np.divide((weights * neighbour_gain).sum(axis=1), total, out=np.zeros(len(vectors)), where=total > 0)
        return (mean + 1.0) / 2.0

    def score(self, queries: Queries) -> np.ndarray:
        return self._weighted_gain(queries.vectors(self.config.encoder), exclude_self=False)

    def score_training(self, train: TrainingSet) -> np.ndarray:
        """Leave-one-out: no training query sees its own label."""
        return self._weighted_gain(train.queries.vectors(self.config.encoder), exclude_self=True)

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"gain": self.gain_}

    def save_extra(self, directory: Path) -> None:
        save_index(self.index_, directory / "index.faiss")

    def load_state(self, arrays: dict[str, np.ndarray], directory: Path) -> None:
        self.gain_ = arrays["gain"]
        self.index_ = load_index(directory / "index.faiss")

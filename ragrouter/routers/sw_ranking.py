"""RouteLLM's similarity-weighted (SW) ranking router.

Every training query is a battle between the strong and the weak model. For a new query,
battle i is weighted by w_i = gamma ** (1 + s_i / max_j s_j), s = cosine similarity to the
query (the encoder's vectors are unit length, so a dot product), gamma = 10 as in RouteLLM;
a Bradley-Terry model is fitted on the weighted battles, a tie counting as one win for each
side (RouteLLM's compute_elo_mle_with_tie), and the score is the strong model's fitted win
probability.

With two models the weighted Bradley-Terry maximum-likelihood fit is a 1-parameter logistic
problem with a closed form: the strong model's win probability equals its weighted share of
wins, sum_i w_i o_i / sum_i w_i with o_i = 1 (strong wins), 0.5 (tie), 0 (weak wins). It is
computed exactly, for all queries at once, in chunked matrix products.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Self

import numpy as np

from ragrouter.labels import pairwise_outcome
from ragrouter.routers.base import EmbeddingRouterConfig, Queries, Router, TrainingSet
from ragrouter.routers.registry import register_router


@dataclass
class SWRankingRouterConfig(EmbeddingRouterConfig):
    gamma: float = 10.0  # w = gamma ** (1 + s / max s); larger = closer neighbours dominate
    chunk_size: int = 1024  # queries per similarity block (memory: chunk x training set)


@register_router("sw_ranking")
class SWRankingRouter(Router):
    config_class = SWRankingRouterConfig
    config: SWRankingRouterConfig
    vectors_: np.ndarray
    outcome_: np.ndarray

    def fit(self, train: TrainingSet) -> Self:
        self.vectors_ = np.ascontiguousarray(train.queries.vectors(self.config.encoder), dtype=np.float32)
        self.outcome_ = pairwise_outcome(np.asarray(train.gain), train.label_threshold)
        return self

    def weights(self, similarities: np.ndarray) -> np.ndarray:
        """RouteLLM's battle weights for each row of similarities (one row per query)."""
        similarities = similarities.astype(np.float64)
        peak = similarities.max(axis=1, keepdims=True)
        peak = np.where(peak == 0, 1.0, peak)  # all-orthogonal query: equal weights
        return self.config.gamma ** (1.0 + similarities / peak)

    def _win_rate(self, vectors: np.ndarray, exclude_self: bool) -> np.ndarray:
        scores = np.empty(len(vectors))
        for start in range(0, len(vectors), self.config.chunk_size):
            chunk = vectors[start : start + self.config.chunk_size]
            similarities = chunk @ self.vectors_.T
            if exclude_self:  # neither weighted nor the max that weights are relative to
                rows = np.arange(len(chunk))
                similarities[rows, start + rows] = -np.inf
            weights = self.weights(similarities)
            scores[start : start + len(chunk)] = weights @ self.outcome_ / weights.sum(axis=1)
        return scores

    def score(self, queries: Queries) -> np.ndarray:
        return self._win_rate(np.asarray(queries.vectors(self.config.encoder), dtype=np.float32), exclude_self=False)

    def score_training(self, train: TrainingSet) -> np.ndarray:
        """Leave-one-out: each training query is scored as if its own battle were unseen."""
        return self._win_rate(self.vectors_, exclude_self=True)

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"vectors": self.vectors_, "outcome": self.outcome_}

    def load_state(self, arrays: dict[str, np.ndarray], directory: Path) -> None:
        self.vectors_, self.outcome_ = arrays["vectors"], arrays["outcome"]

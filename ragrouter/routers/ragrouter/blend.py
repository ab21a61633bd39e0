"""RAGRouter's final score: the network's logit, the neighbours' similarity-weighted mean gain
and the linear experts' predictions, each standardised on the validation split (where all of
them are honest: cross-fitted experts, leave-one-out neighbours), averaged with their weights
and squashed by a sigmoid into a monotone P(strong needed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ragrouter.features.neighbours import MEAN_GAIN_COLUMN
from ragrouter.features.query_features import QueryFeatures
from ragrouter.routers.ragrouter.config import BlendConfig
from ragrouter.routers.ragrouter.linear_experts import ExpertInputs, LinearExperts, cross_fitted


def expert_inputs(prompts: Sequence[str], features: QueryFeatures) -> ExpertInputs:
    return ExpertInputs(list(prompts), features.pooled, features.arrays["answer_options"])


def components(logits: np.ndarray, retrieval: np.ndarray, expert_predictions: np.ndarray) -> np.ndarray:
    """(n, 2 + experts): the network's logit, the neighbours' mean gain, each expert's prediction."""
    return np.column_stack([logits, retrieval[:, MEAN_GAIN_COLUMN], expert_predictions])


@dataclass
class Blend:
    """Fitted experts, their cross-fitted predictions on the training queries, and each
    component's mean and scale (infinite for a component that cannot rank: weight 0)."""

    config: BlendConfig
    blends_neighbours: bool
    experts: LinearExperts
    expert_training: np.ndarray  # (n train, experts)
    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(
        cls, config: BlendConfig, blends_neighbours: bool, inputs: ExpertInputs, gain: np.ndarray, rows: np.ndarray, logits: np.ndarray, retrieval: np.ndarray, seed: int
    ) -> Blend:
        """Experts on all training queries; scales over `rows`, whose network `logits` and
        (leave-one-out) `retrieval` features are given."""
        experts = LinearExperts.fit(config.experts, inputs, gain, config.tfidf_alpha)
        training = cross_fitted(config.experts, inputs, gain, config.tfidf_alpha, config.expert_folds, seed)
        values = components(logits, retrieval, training[rows])
        # a component constant over the training queries, or from an expert that predicts one
        # value (answer options where none has any), cannot rank them
        constant = (values.std(0) <= 1e-9) | np.array([False, False, *experts.constant()])
        blend = cls(config, blends_neighbours, experts, training, values.mean(0), np.where(constant, np.inf, values.std(0)))
        if not blend.weights().any():
            raise ValueError("every blended component is constant over the training queries: nothing ranks them")
        return blend

    def weights(self) -> np.ndarray:
        """Per component, as configured; 0 for one that was constant over the training queries."""
        cfg = self.config
        weights = np.array([cfg.network_weight, cfg.neighbour_weight if self.blends_neighbours else 0.0] + [1.0] * len(cfg.experts))
        weights[np.isinf(self.scale)] = 0.0
        return weights

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """sigmoid of the weighted mean of the standardised components."""
        z = (values - self.mean) / self.scale
        weights = self.weights()
        return 1.0 / (1.0 + np.exp(-(z @ weights) / weights.sum()))

    def state_arrays(self) -> dict[str, np.ndarray]:
        experts = {f"experts.{name}": array for name, array in self.experts.state_arrays().items()}
        return {**experts, "blend.mean": self.mean, "blend.scale": self.scale, "expert_training": self.expert_training}

    @classmethod
    def from_state(cls, config: BlendConfig, blends_neighbours: bool, arrays: dict[str, np.ndarray], vocabulary: dict) -> Blend:
        experts = {k[len("experts.") :]: v for k, v in arrays.items() if k.startswith("experts.")}
        return cls(
            config,
            blends_neighbours,
            LinearExperts.from_state(config.experts, experts, vocabulary),
            arrays["expert_training"],
            arrays["blend.mean"],
            arrays["blend.scale"],
        )

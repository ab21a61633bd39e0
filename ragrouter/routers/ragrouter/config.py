"""RAGRouter's settings: what it reads (encoder, parse), its network, how it trains and how
its score blends the network with linear experts and the neighbours' labels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ragrouter.encoder import EncoderConfig
from ragrouter.features.neighbours import MIN_K
from ragrouter.features.query_features import FeatureConfig
from ragrouter.features.syntax import ParseConfig
from ragrouter.routers.base import RouterConfig
from ragrouter.routers.ragrouter.linear_experts import EXPERTS


@dataclass
class NetworkConfig:
    """The network's shape and its ablation switches (the paper's Tables 5 and 6): `syntax`
    off keeps the semantic branch only; `fusion: concat` pools both branches and concatenates
    them instead of cross-attention; `retrieval` off drops the neighbour features."""

    hidden: int = 64
    heads: int = 4
    sage_layers: int = 2
    dropout: float = 0.1
    syntax: bool = True
    fusion: Literal["attention", "concat"] = "attention"
    retrieval: bool = True


@dataclass
class TrainingConfig:
    """The network's training: early stopping on a validation split of the training queries.

    target: "binary" (gain > t) or "graded" ((gain + 1) / 2 as a soft label).
    early_stopping: what it watches, validation APGR (what routing is judged on) or loss.
    average_checkpoints: the final weights average the best epochs' (1 = the best only).
    """

    target: Literal["binary", "graded"] = "graded"
    epochs: int = 30
    patience: int = 2
    early_stopping: Literal["val_apgr", "val_loss"] = "val_apgr"
    average_checkpoints: int = 3
    batch_size: int = 128
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    validation_fraction: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.average_checkpoints < 1:
            raise ValueError(f"average_checkpoints must be at least 1, got {self.average_checkpoints}")


@dataclass
class BlendConfig:
    """The final score: the network's logit blended with linear experts (each with weight 1;
    `options_ridge` adds nothing where no training prompt has answer options) and the k
    neighbours' similarity-weighted mean gain (not blended without retrieval). `experts: []`
    and `neighbour_weight: 0` leave the network alone."""

    experts: list[str] = field(default_factory=lambda: list(EXPERTS))
    network_weight: float = 1.0
    neighbour_weight: float = 1.0
    tfidf_alpha: float = 10.0
    expert_folds: int = 5  # cross-fitting folds for the experts' honest training predictions

    def __post_init__(self) -> None:
        unknown = set(self.experts) - set(EXPERTS)
        if unknown:
            raise ValueError(f"unknown experts {sorted(unknown)}; known: {list(EXPERTS)}")
        if min(self.network_weight, self.neighbour_weight) < 0:
            raise ValueError(f"network_weight and neighbour_weight must not be negative, got {self.network_weight}, {self.neighbour_weight}")
        if self.expert_folds < 2:
            raise ValueError(f"expert_folds must be at least 2, got {self.expert_folds}")


@dataclass
class RAGRouterConfig(RouterConfig):
    """k: neighbours retrieved from the training queries (FAISS, cosine)."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    parse: ParseConfig = field(default_factory=ParseConfig)
    k: int = 50
    network: NetworkConfig = field(default_factory=NetworkConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    blend: BlendConfig = field(default_factory=BlendConfig)

    def __post_init__(self) -> None:
        if self.k < MIN_K:
            raise ValueError(f"k must be at least {MIN_K}, got {self.k}")
        if self.blend.network_weight == 0 and not self.blend.experts and not self.blends_neighbours:
            raise ValueError("blend.network_weight is 0 and nothing else is blended (no experts, no neighbours)")

    @property
    def blends_neighbours(self) -> bool:
        return self.network.retrieval and self.blend.neighbour_weight > 0

    @property
    def retrieves(self) -> bool:
        return True  # the neighbours' labels feed the network or the blend (or both)

    def features(self) -> FeatureConfig:
        return FeatureConfig(self.encoder, token_states=True, parse=self.parse)

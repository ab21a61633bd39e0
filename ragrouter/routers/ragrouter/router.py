"""RAGRouter: encoder token states and GraphSAGE-encoded dependency parses fused by cross-modal
attention, plus what the FAISS neighbours' labels say, scored by a head trained on the gain
and blended with linear experts and the neighbours' mean gain (docs/ragrouter.md).

The encoder is frozen (its token states are computed once per record set); the graph
encoder, fusion, retrieval projection and head train with early stopping on a validation
split of the training queries. Raw prompts route end to end: parse, encode, retrieve, score.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Self

import faiss
import numpy as np
import torch

from ragrouter.features.neighbours import feature_count, neighbour_features
from ragrouter.features.query_features import QueryFeatures, ServingThreads, serving_threads
from ragrouter.features.syntax import dep_vocabulary, pos_vocabulary
from ragrouter.retrieval import load_index, save_index, search
from ragrouter.routers.base import Queries, RemembersGains, Router, TrainingSet
from ragrouter.routers.ragrouter.blend import Blend, components, expert_inputs
from ragrouter.routers.ragrouter.config import NetworkConfig, RAGRouterConfig
from ragrouter.routers.ragrouter.network import InputSizes, NetBatch, RAGRouterNet, scoring_forward
from ragrouter.routers.ragrouter.trainer import collated, logits_of, train_network
from ragrouter.routers.registry import register_router


@register_router("ragrouter")
class RAGRouter(RemembersGains, Router):
    """Queries it `remember`s join the neighbours that the network's retrieval features and the
    blend's neighbour component read; the network and the experts stay as trained."""

    config_class = RAGRouterConfig
    config: RAGRouterConfig
    net_: RAGRouterNet
    scoring_net_: Callable[[NetBatch], torch.Tensor]  # net_ traced once trained (scoring_forward)
    index_: faiss.Index
    gain_: np.ndarray
    threshold_: float
    history_: list[dict[str, float]]
    averaged_epochs_: list[int]  # the epochs whose weights the final net averages
    blend_: Blend
    serving_threads_: ServingThreads | None = None  # set by prepare_serving

    def query_features(self, queries: Queries) -> QueryFeatures:
        return queries.features_for(self.config.features(), threads=self.serving_threads_)

    def prepare_serving(self) -> None:
        self.serving_threads_ = serving_threads()
        self.serving_threads_.set("parsing")

    def fit(self, train: TrainingSet) -> Self:
        cfg = self.config
        features = self.query_features(train.queries)
        self.gain_, self.threshold_ = np.asarray(train.gain, dtype=np.float64), float(train.label_threshold)
        self.index_ = train.retrieval_index(cfg.encoder)
        retrieval = self._retrieval(features, exclude_self=True)
        sizes = InputSizes(
            token_dim=features.pooled.shape[1],
            n_pos=len(pos_vocabulary()),
            n_dep=len(dep_vocabulary(cfg.parse.model)),
            retrieval_dim=feature_count(),
        )
        torch.manual_seed(cfg.training.seed)
        self.net_ = RAGRouterNet(sizes, cfg.network)
        run = train_network(self.net_, features, retrieval, self.gain_, self._targets(self.gain_), cfg.training)
        self.history_, self.averaged_epochs_ = run.history, run.averaged_epochs
        self.scoring_net_ = scoring_forward(self.net_)
        # the blend's scales come from the validation split (all training queries without one)
        rows = run.validation_rows if len(run.validation_rows) else np.arange(len(self.gain_))
        logits = logits_of(self.scoring_net_, collated(features, rows, retrieval), len(rows)).double().numpy()
        inputs = expert_inputs(train.queries.prompts, features)
        self.blend_ = Blend.fit(cfg.blend, cfg.blends_neighbours, inputs, self.gain_, rows, logits, retrieval[rows], cfg.training.seed)
        return self

    def _targets(self, gain: np.ndarray) -> np.ndarray:
        if self.config.training.target == "binary":
            return (gain > self.threshold_).astype(np.float32)
        return np.clip((gain + 1.0) / 2.0, 0.0, 1.0).astype(np.float32)

    def _retrieval(self, features: QueryFeatures, exclude_self: bool) -> np.ndarray:
        sims, positions = search(self.index_, features.pooled, self.config.k, exclude_self=exclude_self)
        return neighbour_features(sims, positions, self.gain_, self.threshold_)

    def _blended(self, features: QueryFeatures, exclude_self: bool, expert_predictions: np.ndarray) -> np.ndarray:
        retrieval = self._retrieval(features, exclude_self)
        rows = np.arange(len(features))
        logits = logits_of(self.scoring_net_, collated(features, rows, retrieval), len(features))
        return self.blend_(components(logits.double().numpy(), retrieval, expert_predictions))

    def score(self, queries: Queries) -> np.ndarray:
        if not len(queries):
            return np.zeros(0)
        features = self.query_features(queries)
        predictions = self.blend_.experts.predict(expert_inputs(queries.prompts, features))
        return self._blended(features, exclude_self=False, expert_predictions=predictions)

    def score_training(self, train: TrainingSet) -> np.ndarray:
        """Leave-one-out retrieval and cross-fitted experts: no training query sees its own label."""
        if len(train.queries) != len(self.blend_.expert_training):
            raise ValueError(f"score_training takes the {len(self.blend_.expert_training)} queries the router was fitted on, got {len(train.queries)}")
        return self._blended(self.query_features(train.queries), exclude_self=True, expert_predictions=self.blend_.expert_training)

    def state_arrays(self) -> dict[str, np.ndarray]:
        arrays = {f"net.{name}": tensor.detach().numpy() for name, tensor in self.net_.state_dict().items()}
        return {**arrays, **self.blend_.state_arrays(), "gain": self.gain_}

    def save_extra(self, directory: Path) -> None:
        save_index(self.index_, directory / "index.faiss")
        state = {"sizes": asdict(self.net_.sizes), "label_threshold": self.threshold_, "history": self.history_, "averaged_epochs": self.averaged_epochs_}
        (directory / "ragrouter.json").write_text(json.dumps(state, indent=2))
        (directory / "tfidf_vocabulary.json").write_text(json.dumps(self.blend_.experts.vocabulary()))

    def load_state(self, arrays: dict[str, np.ndarray], directory: Path) -> None:
        cfg = self.config
        state: dict[str, Any] = json.loads((directory / "ragrouter.json").read_text())
        self.net_ = RAGRouterNet(InputSizes(**state["sizes"]), NetworkConfig(**asdict(cfg.network)))
        self.net_.load_state_dict({k[4:]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith("net.")})
        self.scoring_net_ = scoring_forward(self.net_)
        self.gain_, self.threshold_, self.history_ = arrays["gain"], state["label_threshold"], state["history"]
        self.averaged_epochs_ = state["averaged_epochs"]
        self.index_ = load_index(directory / "index.faiss")
        vocabulary = json.loads((directory / "tfidf_vocabulary.json").read_text())
        self.blend_ = Blend.from_state(cfg.blend, cfg.blends_neighbours, arrays, vocabulary)

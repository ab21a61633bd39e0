"""RAGRouter: encoder token states and GraphSAGE-encoded dependency parses fused by cross-modal
attention, plus what the FAISS neighbours' labels say, scored by a head trained on the gain,
blended with linear experts of the gain and the neighbours' mean gain.

The encoder is frozen (its token states are computed once per record set); the graph
encoder, fusion, retrieval projection and head train with early stopping on a validation
split of the training queries. The final score averages the network's logit with the linear
experts' predictions (ridges on the embedding, on TF-IDF n-grams and on the answer options'
features) and the k neighbours' similarity-weighted mean gain, each standardised on the
validation split, where all of them are honest (cross-fitted experts, leave-one-out
neighbours). Raw prompts route end to end: parse, encode, retrieve, score.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Self

import faiss
import numpy as np
import torch
from tqdm.auto import tqdm

from ragrouter.evaluation.metrics import apgr_of_gains
from ragrouter.features.neighbours import MEAN_GAIN_COLUMN, MIN_K, feature_count, neighbour_features
from ragrouter.features.query_features import FeatureConfig, QueryFeatures, ServingThreads, extract_features, serving_threads
from ragrouter.features.semantic import DEFAULT_ENCODER, DEFAULT_ENCODER_DTYPE, check_encoder_dtype
from ragrouter.features.syntax import SyntaxConfig, dep_vocabulary, pos_vocabulary
from ragrouter.models.linear_experts import EXPERTS, ExpertInputs, LinearExperts, cross_fitted
from ragrouter.models.ragrouter_net import Architecture, InputSizes, NetBatch, RAGRouterNet, scoring_forward
from ragrouter.retrieval import build_index, load_index, save_index, search
from ragrouter.routers.base import Queries, Router, RouterConfig, TrainingSet
from ragrouter.routers.registry import register_router

TARGETS = ("binary", "graded")
MONITORS = ("val_apgr", "val_loss")
SCORING_BATCH = 256


def length_batches(rows: np.ndarray, lengths: np.ndarray, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Minibatches of rows with similar token counts (little padding in attention); rows of
    near-equal length are shuffled between batches."""
    jittered = lengths[rows] + rng.uniform(0, 8, size=len(rows))
    ordered = rows[np.argsort(jittered)]
    batches = [ordered[start : start + size] for start in range(0, len(ordered), size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def average_weights(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The mean of several checkpoints of one training run: smoother than any one of them."""
    return {name: torch.stack([state[name].float() for state in states]).mean(0).to(tensor.dtype) for name, tensor in states[0].items()}


@dataclass
class RAGRouterConfig(Architecture, RouterConfig):
    """Features, retrieval and training settings; the network's fields come from Architecture."""

    encoder: str = DEFAULT_ENCODER
    encoder_dtype: str = DEFAULT_ENCODER_DTYPE
    max_tokens: int = 256
    max_parse_chars: int = 2000  # longer prompts are parsed on their start only
    max_nodes: int = 256
    k: int = 50
    target: Literal["binary", "graded"] = "graded"  # gain > t, or (gain + 1) / 2 as a soft label
    epochs: int = 30
    patience: int = 2  # 4 gave the same out-of-fold APGR on all four protocols in 50% more time
    # what early stopping watches: validation APGR (what routing is judged on) or loss
    early_stopping: Literal["val_apgr", "val_loss"] = "val_apgr"
    average_checkpoints: int = 3  # the final weights average the best epochs' (1 = best only)
    batch_size: int = 128
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    validation_fraction: float = 0.1
    seed: int = 0
    # blended with the network's logit: linear experts (each with weight 1; `options_ridge` adds
    # nothing where no training prompt has answer options) and the k neighbours'
    # similarity-weighted mean gain (`neighbour_weight`; not blended without retrieval);
    # `experts: []` and `neighbour_weight: 0` leave the network alone
    experts: list[str] = field(default_factory=lambda: list(EXPERTS))
    network_weight: float = 1.0
    neighbour_weight: float = 1.0
    tfidf_alpha: float = 10.0
    expert_folds: int = 5  # cross-fitting folds for the experts' honest training predictions

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {self.target!r}")
        if self.early_stopping not in MONITORS:
            raise ValueError(f"early_stopping must be one of {MONITORS}, got {self.early_stopping!r}")
        if self.average_checkpoints < 1:
            raise ValueError(f"average_checkpoints must be at least 1, got {self.average_checkpoints}")
        if self.k < MIN_K:
            raise ValueError(f"k must be at least {MIN_K}, got {self.k}")
        unknown = set(self.experts) - set(EXPERTS)
        if unknown:
            raise ValueError(f"unknown experts {sorted(unknown)}; known: {list(EXPERTS)}")
        if min(self.network_weight, self.neighbour_weight) < 0:
            raise ValueError(f"network_weight and neighbour_weight must not be negative, got {self.network_weight}, {self.neighbour_weight}")
        if self.network_weight == 0 and not self.experts and not self.blends_neighbours:
            raise ValueError("network_weight is 0 and nothing else is blended (no experts, no neighbours)")
        if self.expert_folds < 2:
            raise ValueError(f"expert_folds must be at least 2, got {self.expert_folds}")
        check_encoder_dtype(self.encoder_dtype)

    @property
    def blends_neighbours(self) -> bool:
        return self.retrieval and self.neighbour_weight > 0

    @property
    def features(self) -> FeatureConfig:
        syntax = SyntaxConfig(max_chars=self.max_parse_chars, max_nodes=self.max_nodes)
        return FeatureConfig(self.encoder, self.max_tokens, syntax=syntax, encoder_dtype=self.encoder_dtype)


@register_router("ragrouter")
class RAGRouter(Router):
    config_class = RAGRouterConfig
    config: RAGRouterConfig
    uses_query_features = True
    net_: RAGRouterNet
    scoring_net_: Callable[[NetBatch], torch.Tensor]  # net_ traced once trained (scoring_forward)
    index_: faiss.Index
    gain_: np.ndarray
    threshold_: float
    history_: list[dict[str, float]]
    averaged_epochs_: list[int]  # the epochs whose weights the final net averages
    experts_: LinearExperts
    expert_training_: np.ndarray  # (n train, experts) cross-fitted predictions
    blend_mean_: np.ndarray  # per component (network logit, neighbours' mean gain, experts): standardisation
    blend_scale_: np.ndarray
    serving_threads_: ServingThreads | None = None  # set by prepare_serving

    def query_features(self, queries: Queries) -> QueryFeatures:
        """The pipeline's features when they were extracted with this config, else computed now."""
        if queries.features is not None and queries.features.identity == self.config.features.identity:
            return queries.features
        queries.features = extract_features(queries.prompts, self.config.features, threads=self.serving_threads_)
        return queries.features

    def prepare_serving(self) -> None:
        self.serving_threads_ = serving_threads()
        self.serving_threads_.set("parsing")

    def fit(self, train: TrainingSet) -> Self:
        cfg = self.config
        torch.manual_seed(cfg.seed)
        features = self.query_features(train.queries)
        self.gain_, self.threshold_ = np.asarray(train.gain, dtype=np.float64), float(train.label_threshold)
        self.index_ = build_index(features.pooled)
        retrieval = self._retrieval(features, exclude_self=True)
        sizes = InputSizes(
            token_dim=features.pooled.shape[1],
            n_pos=len(pos_vocabulary()),
            n_dep=len(dep_vocabulary(cfg.features.syntax.model)),
            retrieval_dim=feature_count(),
        )
        self.net_ = RAGRouterNet(sizes, cfg)
        targets = torch.from_numpy(self._targets(self.gain_))
        order = np.random.default_rng(cfg.seed).permutation(len(self.gain_))
        n_val = int(round(cfg.validation_fraction * len(order)))
        val, fit = np.sort(order[:n_val]), order[n_val:]
        lengths = np.diff(features.arrays["token_offsets"])
        optimizer = torch.optim.AdamW(self.net_.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        # Batches are collated once (the encoder is frozen, so their inputs never change);
        # each epoch visits them in a new order.
        batches = [
            (NetBatch.collate(features, rows, retrieval), targets[rows])
            for rows in length_batches(fit, lengths, cfg.batch_size, np.random.default_rng(cfg.seed))
        ]
        val_batches = self._collated(features, val, retrieval)
        kept: list[tuple[float, int, dict[str, torch.Tensor]]] = []  # (quality, epoch, weights), best first
        stale, self.history_ = 0, []
        progress = tqdm(range(cfg.epochs), desc="ragrouter training", leave=False)
        for epoch in progress:
            self.net_.train()
            losses = []
            for b in np.random.default_rng(cfg.seed + epoch).permutation(len(batches)):
                batch, batch_targets = batches[b]
                loss = loss_fn(self.net_(batch), batch_targets)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
            record = {"epoch": epoch + 1, "train_loss": float(np.mean(losses))}
            if n_val:
                self.net_.eval()
                logits = self._logits(self.net_, val_batches, n_val)
                record["val_loss"] = float(loss_fn(logits, targets[val]))
                record["val_apgr"] = apgr_of_gains(logits.numpy(), self.gain_[val])
            self.history_.append(record)
            progress.set_postfix({k: f"{v:.3f}" for k, v in record.items() if k != "epoch"})
            quality = self._quality(record)
            if not kept or quality > kept[0][0] + 1e-4:
                stale = 0
            else:
                stale += 1
            kept = sorted([*kept, (quality, epoch + 1, copy.deepcopy(self.net_.state_dict()))], key=lambda item: -item[0])
            kept = kept[: cfg.average_checkpoints]
            if stale >= cfg.patience:
                break
        self.averaged_epochs_ = sorted(epoch for _, epoch, _ in kept)
        self.net_.load_state_dict(average_weights([weights for _, _, weights in kept]))
        self.scoring_net_ = scoring_forward(self.net_)
        # the blend's scales come from the validation split (all training queries without one)
        rows = val if n_val else np.arange(len(self.gain_))
        logits = self._logits(self.scoring_net_, val_batches if n_val else self._collated(features, rows, retrieval), len(rows))
        self._fit_blend(train, features, rows, logits.double().numpy(), retrieval[rows])
        return self

    def _fit_blend(self, train: TrainingSet, features: QueryFeatures, rows: np.ndarray, logits: np.ndarray, retrieval: np.ndarray) -> None:
        """Experts on all training queries, their cross-fitted predictions, and each blend
        component's mean and spread over `rows`, whose network `logits` and (leave-one-out)
        `retrieval` features are given."""
        cfg, inputs = self.config, self._expert_inputs(train.queries, features)
        self.experts_ = LinearExperts.fit(cfg.experts, inputs, self.gain_, cfg.tfidf_alpha)
        self.expert_training_ = cross_fitted(cfg.experts, inputs, self.gain_, cfg.tfidf_alpha, cfg.expert_folds, cfg.seed)
        components = self._components(logits, retrieval, self.expert_training_[rows])
        # a component constant over the training queries, or from an expert that predicts one
        # value (answer options where none has any), cannot rank them: an infinite scale, so it
        # adds nothing
        constant = (components.std(0) <= 1e-9) | np.array([False, False, *self.experts_.constant()])
        self.blend_mean_, self.blend_scale_ = components.mean(0), np.where(constant, np.inf, components.std(0))
        if not self._blend_weights().any():
            raise ValueError("every blended component is constant over the training queries: nothing ranks them")

    @staticmethod
    def _expert_inputs(queries: Queries, features: QueryFeatures) -> ExpertInputs:
        return ExpertInputs(list(queries.prompts), features.pooled, features.arrays["answer_options"])

    @staticmethod
    def _components(logits: np.ndarray, retrieval: np.ndarray, expert_predictions: np.ndarray) -> np.ndarray:
        return np.column_stack([logits, retrieval[:, MEAN_GAIN_COLUMN], expert_predictions])

    def _blend(self, components: np.ndarray) -> np.ndarray:
        """sigmoid of the weighted mean of the standardised components: a monotone P(strong)."""
        z = (components - self.blend_mean_) / self.blend_scale_
        weights = self._blend_weights()
        return 1.0 / (1.0 + np.exp(-(z @ weights) / weights.sum()))

    def _blend_weights(self) -> np.ndarray:
        """Per component, as configured; 0 for one that was constant over the training queries."""
        cfg = self.config
        weights = np.array([cfg.network_weight, cfg.neighbour_weight if cfg.blends_neighbours else 0.0] + [1.0] * len(cfg.experts))
        weights[np.isinf(self.blend_scale_)] = 0.0
        return weights

    def _quality(self, record: dict[str, float]) -> float:
        """What early stopping maximises: validation APGR, or minus a loss (training loss when
        there is no validation split); an undefined APGR counts as worst."""
        if "val_loss" not in record:
            return -record["train_loss"]
        if self.config.early_stopping == "val_loss":
            return -record["val_loss"]
        return record["val_apgr"] if np.isfinite(record["val_apgr"]) else -np.inf

    def _targets(self, gain: np.ndarray) -> np.ndarray:
        if self.config.target == "binary":
            return (gain > self.threshold_).astype(np.float32)
        return np.clip((gain + 1.0) / 2.0, 0.0, 1.0).astype(np.float32)

    def _retrieval(self, features: QueryFeatures, exclude_self: bool) -> np.ndarray:
        sims, positions = search(self.index_, features.pooled, self.config.k, exclude_self=exclude_self)
        return neighbour_features(sims, positions, self.gain_, self.threshold_)

    def _collated(self, features: QueryFeatures, rows: np.ndarray, retrieval: np.ndarray) -> list[tuple[np.ndarray, NetBatch]]:
        """Scoring batches of `rows` with similar token counts (little padding), each with the
        positions in `rows` it fills."""
        by_length = np.argsort(np.diff(features.arrays["token_offsets"])[rows], kind="stable")
        chunks = [by_length[start : start + SCORING_BATCH] for start in range(0, len(rows), SCORING_BATCH)]
        return [(chunk, NetBatch.collate(features, rows[chunk], retrieval)) for chunk in chunks]

    @staticmethod
    def _logits(forward: Callable[[NetBatch], torch.Tensor], batches: list[tuple[np.ndarray, NetBatch]], n_rows: int) -> torch.Tensor:
        """The logits of `forward`: the network in eval mode while it trains (set after each
        epoch), its traced graph once trained."""
        logits = torch.zeros(n_rows)
        with torch.inference_mode():
            for positions, batch in batches:
                logits[positions] = forward(batch)
        return logits

    def _blended(self, features: QueryFeatures, exclude_self: bool, expert_predictions: np.ndarray) -> np.ndarray:
        retrieval = self._retrieval(features, exclude_self)
        logits = self._logits(self.scoring_net_, self._collated(features, np.arange(len(features)), retrieval), len(features))
        return self._blend(self._components(logits.double().numpy(), retrieval, expert_predictions))

    def score(self, queries: Queries) -> np.ndarray:
        if not len(queries):
            return np.zeros(0)
        features = self.query_features(queries)
        return self._blended(features, exclude_self=False, expert_predictions=self.experts_.predict(self._expert_inputs(queries, features)))

    def score_training(self, train: TrainingSet) -> np.ndarray:
        """Leave-one-out retrieval and cross-fitted experts: no training query sees its own label."""
        if len(train.queries) != len(self.expert_training_):
            raise ValueError(f"score_training takes the {len(self.expert_training_)} queries the router was fitted on, got {len(train.queries)}")
        return self._blended(self.query_features(train.queries), exclude_self=True, expert_predictions=self.expert_training_)

    def state_arrays(self) -> dict[str, np.ndarray]:
        arrays = {f"net.{name}": tensor.detach().numpy() for name, tensor in self.net_.state_dict().items()}
        experts = {f"experts.{name}": array for name, array in self.experts_.state_arrays().items()}
        blend = {"blend.mean": self.blend_mean_, "blend.scale": self.blend_scale_, "expert_training": self.expert_training_}
        return {**arrays, **experts, **blend, "gain": self.gain_}

    def save_extra(self, directory: Path) -> None:
        save_index(self.index_, directory / "index.faiss")
        state = {"sizes": asdict(self.net_.sizes), "architecture": asdict(self.net_.config), "label_threshold": self.threshold_, "history": self.history_, "averaged_epochs": self.averaged_epochs_}
        (directory / "ragrouter.json").write_text(json.dumps(state, indent=2))
        (directory / "tfidf_vocabulary.json").write_text(json.dumps(self.experts_.vocabulary()))

    def load_state(self, arrays: dict[str, np.ndarray], directory: Path) -> None:
        state: dict[str, Any] = json.loads((directory / "ragrouter.json").read_text())
        self.net_ = RAGRouterNet(InputSizes(**state["sizes"]), Architecture(**state["architecture"]))
        self.net_.load_state_dict({k[4:]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith("net.")})
        self.scoring_net_ = scoring_forward(self.net_)
        self.gain_, self.threshold_, self.history_ = arrays["gain"], state["label_threshold"], state["history"]
        self.averaged_epochs_ = state["averaged_epochs"]
        self.index_ = load_index(directory / "index.faiss")
        experts = {k[len("experts.") :]: v for k, v in arrays.items() if k.startswith("experts.")}
        vocabulary = json.loads((directory / "tfidf_vocabulary.json").read_text())
        self.experts_ = LinearExperts.from_state(self.config.experts, experts, vocabulary)
        self.blend_mean_, self.blend_scale_, self.expert_training_ = arrays["blend.mean"], arrays["blend.scale"], arrays["expert_training"]

"""RouteLLM's BERT classifier router: an encoder fine-tuned with a 3-class head on battle outcomes.

Classes as in RouteLLM: 0 = the strong model wins, 1 = tie, 2 = the weak model wins
(outcomes from ragrouter.labels.pairwise_outcome). RouteLLM routes on 1 - P(tie) - P(weak
wins), i.e. P(class 0), which is the score here. The default encoder is the packaged
all-MiniLM-L6-v2 (a BERT); `bert-base-uncased` or `microsoft/deberta-v3-base` work by name
where a hub is reachable. Weights load in `fit`/`load`, never in the constructor.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np

from ragrouter.encoder import EncoderConfig, resolve_encoder_path
from ragrouter.labels import outcome_class, pairwise_outcome
from ragrouter.routers.base import Queries, Router, RouterConfig, TrainingSet
from ragrouter.routers.fine_tuning import check_compute_dtype, compute_precision, run_epochs, training_subset
from ragrouter.routers.registry import register_router

NUM_LABELS = 3
STRONG_WINS = 0


@dataclass
class BertRouterConfig(RouterConfig):
    model: str = EncoderConfig.name
    max_tokens: int = 128
    epochs: int = 1
    batch_size: int = 32
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    train_last_layers: int | None = None  # top encoder layers fine-tuned (the rest and the embeddings fixed, for CPU speed); None = all
    max_train_queries: int | None = None  # a seeded sample of the training set; None = all
    seed: int = 0
    compute_dtype: str = "auto"  # autocast in bfloat16 where the device has bfloat16 units, else float32

    def __post_init__(self) -> None:
        check_compute_dtype(self.compute_dtype)


@register_router("bert")
class BertRouter(Router):
    config_class = BertRouterConfig
    config: BertRouterConfig
    model_: Any
    tokenizer_: Any

    def fit(self, train: TrainingSet) -> Self:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        cfg = self.config
        train = training_subset(train, cfg.max_train_queries, cfg.seed)
        torch.manual_seed(cfg.seed)
        path = resolve_encoder_path(cfg.model)
        self.tokenizer_ = AutoTokenizer.from_pretrained(path, truncation_side="left")  # a long prompt keeps its end
        self.model_ = AutoModelForSequenceClassification.from_pretrained(path, num_labels=NUM_LABELS)
        self._freeze_lower_layers()
        labels = torch.from_numpy(outcome_class(pairwise_outcome(np.asarray(train.gain), train.label_threshold)))
        prompts = list(train.queries.prompts)
        trainable = [p for p in self.model_.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(trainable, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        self.model_.train()
        run_epochs(
            len(prompts),
            cfg.epochs,
            cfg.batch_size,
            cfg.seed,
            optimizer,
            lambda batch: self._logits([prompts[i] for i in batch], labels[batch]).loss,
            "bert fine-tuning",
        )
        self.model_.eval()
        return self

    def _freeze_lower_layers(self) -> None:
        if self.config.train_last_layers is None:
            return
        base = self.model_.base_model
        frozen = max(len(base.encoder.layer) - self.config.train_last_layers, 0)
        for module in [base.embeddings, *base.encoder.layer[:frozen]]:
            module.requires_grad_(False)

    def _logits(self, prompts: list[str], labels: Any = None) -> Any:
        """The model's output on a batch (with its loss when labels are given), in compute_dtype."""
        encoded = self.tokenizer_(prompts, padding=True, truncation=True, max_length=self.config.max_tokens, return_tensors="pt")
        with compute_precision(self.config.compute_dtype, "cpu"):
            return self.model_(**encoded, labels=labels)

    def score(self, queries: Queries) -> np.ndarray:
        import torch

        prompts = list(queries.prompts)
        order = np.argsort([len(p) for p in prompts])  # similar lengths batch with little padding
        scores = np.empty(len(prompts))
        with torch.inference_mode():
            for start in range(0, len(order), self.config.batch_size):
                batch = order[start : start + self.config.batch_size]
                logits = self._logits([prompts[i] for i in batch]).logits
                scores[batch] = torch.softmax(logits.float(), dim=-1)[:, STRONG_WINS].numpy()
        return scores

    def save_extra(self, directory: Path) -> None:
        self.model_.save_pretrained(directory / "model", safe_serialization=True)
        self.tokenizer_.save_pretrained(directory / "model")

    def load_state(self, arrays: dict[str, np.ndarray], directory: Path) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.tokenizer_ = AutoTokenizer.from_pretrained(directory / "model", truncation_side="left")
        self.model_ = AutoModelForSequenceClassification.from_pretrained(directory / "model").eval()

"""RouteLLM's matrix-factorization (MF) router.

Each model m has a learned embedding v_m (L2-normalised); the prompt embedding q is projected
by a learned W (no bias) to the same dimension; model m's score for the prompt is
s_m(q) = w . (v_m * W q) with a learned w (no bias), and P(strong wins) = sigmoid(s_strong - s_weak).
Trained as RouteLLM trains it: only decisive battles (ties dropped), binary cross-entropy on
"winner beats loser", Adam, Gaussian noise of scale `alpha` on the prompt embedding.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Self

import numpy as np
import torch
from torch.nn import functional as F

from ragrouter.labels import pairwise_outcome
from ragrouter.routers.base import EmbeddingRouterConfig, Queries, Router, TrainingSet
from ragrouter.routers.registry import register_router

STRONG, WEAK = 0, 1


class MatrixFactorization(torch.nn.Module):
    def __init__(self, text_dim: int, dim: int, num_models: int = 2):
        super().__init__()
        self.model_embedding = torch.nn.Embedding(num_models, dim)
        self.text_proj = torch.nn.Linear(text_dim, dim, bias=False)
        self.classifier = torch.nn.Linear(dim, 1, bias=False)

    def model_scores(self, prompts: torch.Tensor) -> torch.Tensor:
        """s_m(q) for every model (columns) and prompt (rows)."""
        models = F.normalize(self.model_embedding.weight, p=2, dim=1)
        projected = self.text_proj(prompts)
        return self.classifier(projected[:, None, :] * models[None, :, :]).squeeze(-1)

    def strong_logit(self, prompts: torch.Tensor) -> torch.Tensor:
        scores = self.model_scores(prompts)
        return scores[:, STRONG] - scores[:, WEAK]


@dataclass
class MFRouterConfig(EmbeddingRouterConfig):
    dim: int = 128
    epochs: int = 100
    batch_size: int = 64
    learning_rate: float = 3e-4
    weight_decay: float = 1e-5
    alpha: float = 0.1
    seed: int = 42


@register_router("mf")
class MFRouter(Router):
    config_class = MFRouterConfig
    config: MFRouterConfig
    model_: MatrixFactorization

    def fit(self, train: TrainingSet) -> Self:
        cfg = self.config
        vectors = np.asarray(train.queries.vectors(self.config.encoder), dtype=np.float32)
        outcome = pairwise_outcome(np.asarray(train.gain), train.label_threshold)
        decisive = outcome != 0.5
        prompts = torch.from_numpy(vectors[decisive])
        strong_won = torch.from_numpy(outcome[decisive].astype(np.float32))
        generator = torch.Generator().manual_seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        self.model_ = MatrixFactorization(vectors.shape[1], cfg.dim)
        optimizer = torch.optim.Adam(self.model_.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        self.model_.train()
        for _ in range(cfg.epochs):
            order = torch.randperm(len(prompts), generator=generator)
            for start in range(0, len(order), cfg.batch_size):
                batch = order[start : start + cfg.batch_size]
                noisy = prompts[batch] + torch.randn(len(batch), prompts.shape[1], generator=generator) * cfg.alpha
                loss = F.binary_cross_entropy_with_logits(self.model_.strong_logit(noisy), strong_won[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        self.model_.eval()
        return self

    def score(self, queries: Queries) -> np.ndarray:
        prompts = torch.from_numpy(np.asarray(queries.vectors(self.config.encoder), dtype=np.float32))
        with torch.inference_mode():
            return torch.sigmoid(self.model_.strong_logit(prompts)).double().numpy()

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {name: tensor.detach().numpy() for name, tensor in self.model_.state_dict().items()}

    def load_state(self, arrays: dict[str, np.ndarray], directory: Path) -> None:
        text_dim, dim = arrays["text_proj.weight"].shape[1], arrays["text_proj.weight"].shape[0]
        self.model_ = MatrixFactorization(text_dim, dim)
        self.model_.load_state_dict({name: torch.from_numpy(array) for name, array in arrays.items()})
        self.model_.eval()

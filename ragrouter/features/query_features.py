"""The RAGRouter network's inputs per query: encoder token states, pooled embedding, parse graph.

Computed once per record set (the pipeline's `extract_features` step) and sliced per fold, or
on the fly for raw prompts when serving. Ragged per-query arrays are stored flat with offsets,
so the whole set saves as one safetensors file (no pickle).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from safetensors.numpy import load_file, save_file
from tqdm.auto import tqdm

from ragrouter.features.semantic import DEFAULT_ENCODER, resolve_encoder_path
from ragrouter.pretrained import pretrained_source
from ragrouter.features.syntax import ParseGraph, SyntaxConfig, align_to_tokens, parse_graphs

RAGGED = {  # flat array -> the offsets that cut it per query
    "token_states": "token_offsets",
    "node_pos": "node_offsets",
    "node_dep": "node_offsets",
    "node_depth": "node_offsets",
    "node_token": "node_offsets",
    "edges": "edge_offsets",
}


@dataclass(frozen=True)
class FeatureConfig:
    """What determines the features: equal identities can be reused across steps and folds."""

    encoder: str = DEFAULT_ENCODER
    max_tokens: int = 256
    encode_batch_size: int = 32
    syntax: SyntaxConfig = SyntaxConfig()

    @property
    def identity(self) -> str:
        return f"{self.encoder_identity}|{self.syntax.identity}"

    @property
    def encoder_identity(self) -> str:
        """What determines the token states and pooled vectors (as `Encoder.identity`)."""
        return f"{self.encoder}@{self.max_tokens}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureConfig:
        data = dict(data)
        syntax = SyntaxConfig(**data.pop("syntax", {}))
        return cls(**data, syntax=syntax)


@dataclass
class QueryFeatures:
    identity: str
    arrays: dict[str, np.ndarray]  # pooled (n, d) + the RAGGED arrays and their offsets
    ids: list[str] | None = None  # record ids, row for row, when computed for a record set

    def __len__(self) -> int:
        return len(self.arrays["pooled"])

    @property
    def encoder_identity(self) -> str:
        return self.identity.split("|")[0]

    @property
    def pooled(self) -> np.ndarray:
        return self.arrays["pooled"]

    def query(self, row: int) -> dict[str, np.ndarray]:
        """One query's arrays: token_states (T, d), node_* (n,), edges (2, E), pooled (d,)."""
        out = {"pooled": self.pooled[row]}
        for name, offsets in RAGGED.items():
            start, end = self.arrays[offsets][row], self.arrays[offsets][row + 1]
            out[name] = self.arrays[name][..., start:end] if name == "edges" else self.arrays[name][start:end]
        return out

    def subset(self, rows: Sequence[int]) -> QueryFeatures:
        return QueryFeatures.from_queries(self.identity, [self.query(int(r)) for r in rows], self.pooled.shape[1])

    def select(self, ids: Sequence[str]) -> QueryFeatures:
        """The features of the given record ids, in that order."""
        if self.ids is None:
            raise ValueError("these features were computed for prompts, not records: they have no ids")
        position = {record_id: i for i, record_id in enumerate(self.ids)}
        return self.subset([position[i] for i in ids])

    @classmethod
    def from_queries(cls, identity: str, queries: list[dict[str, np.ndarray]], dim: int) -> QueryFeatures:
        arrays: dict[str, np.ndarray] = {
            "pooled": np.stack([q["pooled"] for q in queries]).astype(np.float32) if queries else np.zeros((0, dim), np.float32)
        }
        for name, offsets in RAGGED.items():
            parts = [q[name] for q in queries]
            axis = 1 if name == "edges" else 0
            sizes = [p.shape[axis] for p in parts]
            arrays[offsets] = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
            empty = np.zeros((2, 0), np.int64) if name == "edges" else np.zeros((0, dim) if name == "token_states" else 0)
            arrays[name] = np.concatenate(parts, axis=axis) if parts else empty
        arrays["token_states"] = arrays["token_states"].astype(np.float16)
        return cls(identity, arrays)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        save_file({k: np.ascontiguousarray(v) for k, v in self.arrays.items()}, str(directory / "features.safetensors"))
        (directory / "features.json").write_text(json.dumps({"identity": self.identity, "ids": self.ids}))

    @classmethod
    def load(cls, directory: Path) -> QueryFeatures:
        meta = json.loads((directory / "features.json").read_text())
        return cls(meta["identity"], load_file(str(directory / "features.safetensors")), meta["ids"])


@lru_cache(maxsize=2)
def _load_encoder(name: str) -> tuple[Any, Any]:
    """(tokenizer, model) of a packaged sentence encoder, a packaged causal LM (its hidden
    states serve as token states: the encoder-swap ablation offline) or any hub/local name."""
    from transformers import AutoModel, AutoTokenizer

    path, kwargs = pretrained_source(resolve_encoder_path(name))
    tokenizer = AutoTokenizer.from_pretrained(path, gguf_file=kwargs.get("gguf_file"))
    tokenizer.padding_side = "right"  # states[i, :length] below are the real tokens
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, AutoModel.from_pretrained(path, **kwargs).eval()


def extract_features(prompts: Sequence[str], config: FeatureConfig = FeatureConfig(), progress: bool = False) -> QueryFeatures:
    """Token states and mean-pooled, L2-normalised embeddings (sentence-transformers' pooling
    for MiniLM) from the encoder, and parse graphs aligned to the tokens."""
    import torch

    tokenizer, model = _load_encoder(config.encoder)
    graphs = parse_graphs(prompts, config.syntax)
    queries: list[dict[str, np.ndarray]] = [{} for _ in prompts]
    order = np.argsort([-len(p) for p in prompts], kind="stable")  # similar lengths batch tightly
    batches = range(0, len(order), config.encode_batch_size)
    with torch.inference_mode():
        for start in tqdm(batches, desc="encoding tokens", disable=not progress):
            rows = order[start : start + config.encode_batch_size]
            encoded = tokenizer(
                [prompts[r] for r in rows],
                padding=True,
                truncation=True,
                max_length=config.max_tokens,
                return_offsets_mapping=True,
                return_tensors="pt",
            )
            offsets = encoded.pop("offset_mapping").numpy()
            states = model(**encoded).last_hidden_state
            mask = encoded["attention_mask"].unsqueeze(-1).to(states.dtype)
            pooled = torch.nn.functional.normalize((states * mask).sum(1) / mask.sum(1), dim=-1).numpy()
            for i, row in enumerate(rows):
                length = int(encoded["attention_mask"][i].sum())
                queries[row] = _query_arrays(states[i, :length].numpy(), pooled[i], graphs[row], offsets[i, :length])
    return QueryFeatures.from_queries(config.identity, queries, int(model.config.hidden_size))


def _query_arrays(states: np.ndarray, pooled: np.ndarray, graph: ParseGraph, offsets: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "pooled": pooled,
        "token_states": states,
        "node_pos": graph.pos,
        "node_dep": graph.dep,
        "node_depth": graph.depth,
        "node_token": align_to_tokens(graph.spans, offsets),
        "edges": graph.edges,
    }

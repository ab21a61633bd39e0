"""Per query, what routers read: the encoder's pooled vector, and for RAGRouter its token
states, the answer options pooled from them and the prompt's parse graph.

Computed once per record set and encoder (the pipeline's `extract_features` step) and sliced
per fold, or on the fly for raw prompts when serving. Ragged per-query arrays are stored flat
with offsets, so the whole set saves as one safetensors file (no pickle). The parse reads
what the encoder reads: from the first character of the tokens it keeps.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
from safetensors.numpy import load_file, save_file

from ragrouter.encoder import Encoder, EncoderConfig
from ragrouter.features.answer_options import FEATURES as ANSWER_OPTION_FEATURES, answer_option_features
from ragrouter.features.syntax import ParseConfig, ParseGraph, align_to_tokens, parse_graphs
from ragrouter.typed_config import TypedConfig

RAGGED = {  # flat array -> the offsets that cut it per query
    "token_states": "token_offsets",
    "node_pos": "node_offsets",
    "node_dep": "node_offsets",
    "node_depth": "node_offsets",
    "node_token": "node_offsets",
    "edges": "edge_offsets",
}


@dataclass
class FeatureConfig(TypedConfig):
    """What the features of a record set hold: the encoder's pooled vectors always, its token
    states (and the answer options pooled from them) when `token_states`, parse graphs when
    `parse` is set. The pipeline computes one set per encoder for every router that reads it."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    token_states: bool = False
    parse: ParseConfig | None = None

    @property
    def identity(self) -> str:
        parts = [self.encoder.identity, "states" if self.token_states else "pooled", self.parse.identity if self.parse else "no-parse"]
        return "|".join(parts)


@dataclass
class QueryFeatures:
    """`arrays`: pooled (n, d) always; with token states also answer_options (n, f) and the
    ragged token arrays; with a parse the ragged node and edge arrays. `identity` is the
    config's as computed (the precision `auto` resolved to on the machine that computed it)."""

    config: FeatureConfig
    identity: str
    arrays: dict[str, np.ndarray]
    ids: list[str] | None = None  # record ids, row for row, when computed for a record set

    def __len__(self) -> int:
        return len(self.arrays["pooled"])

    @property
    def pooled(self) -> np.ndarray:
        return self.arrays["pooled"]

    def covers(self, wanted: FeatureConfig) -> bool:
        """Whether these features hold everything `wanted` asks for, as `wanted` computes here."""
        have = dict(zip(("encoder", "states", "parse"), self.identity.split("|")))
        want = dict(zip(("encoder", "states", "parse"), wanted.identity.split("|")))
        return (
            have["encoder"] == want["encoder"]
            and (have["states"] == "states" or want["states"] == "pooled")
            and want["parse"] in ("no-parse", have["parse"])
        )

    def subset(self, rows: Sequence[int]) -> QueryFeatures:
        """The given rows, in that order: each ragged array gathered in one indexing."""
        rows = np.asarray(rows, dtype=np.int64)
        arrays = {name: self.arrays[name][rows] for name in ("pooled", "answer_options") if name in self.arrays}
        positions = {}  # per offsets array (the node arrays share theirs): where each new element comes from
        for offsets in {o for o in RAGGED.values() if o in self.arrays}:
            starts, sizes = self.arrays[offsets][rows], np.diff(self.arrays[offsets])[rows]
            arrays[offsets] = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
            positions[offsets] = np.repeat(starts - arrays[offsets][:-1], sizes) + np.arange(arrays[offsets][-1])
        for name, offsets in RAGGED.items():
            if offsets in positions:
                arrays[name] = self.arrays[name][..., positions[offsets]] if name == "edges" else self.arrays[name][positions[offsets]]
        return QueryFeatures(self.config, self.identity, arrays)

    def select(self, ids: Sequence[str]) -> QueryFeatures:
        """The features of the given record ids, in that order."""
        if self.ids is None:
            raise ValueError("these features were computed for prompts, not records: they have no ids")
        position = {record_id: i for i, record_id in enumerate(self.ids)}
        return self.subset([position[i] for i in ids])

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        save_file({k: np.ascontiguousarray(v) for k, v in self.arrays.items()}, str(directory / "features.safetensors"))
        meta = {"config": self.config.to_dict(), "identity": self.identity, "ids": self.ids}
        (directory / "features.json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, directory: Path) -> QueryFeatures:
        meta = json.loads((directory / "features.json").read_text())
        arrays = load_file(str(directory / "features.safetensors"))
        return cls(FeatureConfig.from_dict(meta["config"]), meta["identity"], arrays, meta["ids"])


_PARSER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ragrouter-parser")  # started on first use

@dataclass(frozen=True)
class ServingThreads:
    """Torch's intra-op threads for a served router: while the parse thread runs, and after.

    While parsing, all usable cores but the parser's: on 2 cores one prompt then routes in 14 ms
    instead of 18 (otherwise torch's second thread spins on the parser's core after each
    operation: its threads wait busily). Once a batch's parse is done, every core again."""

    parsing: int
    parsed: int

    def set(self, phase: str) -> None:
        import torch

        torch.set_num_threads(getattr(self, phase))


@lru_cache(maxsize=1)
def serving_threads() -> ServingThreads:
    """Once per process, from torch's threads before a served router first changed them (a
    pyfunc loaded again, as MLflow does to validate an input example, gets the same)."""
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    every = torch.get_num_threads()
    return ServingThreads(parsing=min(every, max(1, cores - 1)), parsed=every)


def extract_features(
    prompts: Sequence[str], config: FeatureConfig, progress: bool = False, threads: ServingThreads | None = None
) -> QueryFeatures:
    """The features `config` asks for. The parse (spaCy, one core) runs in a thread beside the
    encoder, with torch's `threads` when given (a served router's)."""
    encoder = Encoder(config.encoder)
    tokenized = encoder.tokenize(prompts)
    starts = [tokenized.read_start(row) for row in range(len(prompts))]
    if threads is not None:
        threads.set("parsing")
    parsed = _PARSER.submit(parse_graphs, [p[start:] for p, start in zip(prompts, starts)], config.parse) if config.parse else None

    def after_parse() -> None:
        if threads is not None and parsed is not None and parsed.done():
            threads.set("parsed")

    encoded = encoder.encode(tokenized, states=config.token_states, progress=progress, on_batch=after_parse)
    arrays = {"pooled": encoded.pooled}
    if encoded.states is not None:
        arrays["answer_options"] = np.stack(
            [answer_option_features(p, s, o) for p, s, o in zip(prompts, encoded.states, tokenized.offsets)]
        ).reshape(len(prompts), len(ANSWER_OPTION_FEATURES)).astype(np.float32)
        arrays.update(_flat("token_states", [s.astype(np.float16) for s in encoded.states], axis=0, empty=(0, encoder.dimension)))
    if parsed is not None:
        graphs = [_shifted(graph, start) for graph, start in zip(parsed.result(), starts)]
        arrays.update(_node_arrays(graphs, tokenized.offsets))
    return QueryFeatures(config, config.identity, arrays)


def _shifted(graph: ParseGraph, start: int) -> ParseGraph:
    """A graph parsed from prompt[start:] with its spans in the whole prompt's characters."""
    graph.spans = graph.spans + start
    return graph


def _node_arrays(graphs: list[ParseGraph], token_offsets: list[np.ndarray]) -> dict[str, np.ndarray]:
    arrays = {}
    for name, parts in (
        ("node_pos", [g.pos for g in graphs]),
        ("node_dep", [g.dep for g in graphs]),
        ("node_depth", [g.depth for g in graphs]),
        ("node_token", [align_to_tokens(g.spans, offsets) for g, offsets in zip(graphs, token_offsets)]),
    ):
        arrays.update(_flat(name, parts, axis=0, empty=(0,)))
    arrays.update(_flat("edges", [g.edges for g in graphs], axis=1, empty=(2, 0)))
    return arrays


def _flat(name: str, parts: list[np.ndarray], axis: int, empty: tuple[int, ...]) -> dict[str, np.ndarray]:
    """One ragged array as `name` (the parts concatenated) and its offsets."""
    sizes = [part.shape[axis] for part in parts]
    flat = np.concatenate(parts, axis=axis) if parts else np.zeros(empty, dtype=np.int64 if name != "token_states" else np.float16)
    return {name: flat, RAGGED[name]: np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)}

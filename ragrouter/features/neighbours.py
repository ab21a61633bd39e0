"""Retrieval features: what the k nearest past queries say about this one.

From the FAISS neighbours' cosine similarities and gains: similarity-weighted mean gain and
the share of "strong needed" labels over the top 5, 20 and k; the best and mean similarity;
label agreement (1 = the top k are unanimous); and the raw (similarity, gain) of the top
RAW_NEIGHBOURS. Training queries are searched leave-one-out, so none sees its own label.
"""

from __future__ import annotations

import numpy as np

TOPS = (5, 20)
RAW_NEIGHBOURS = 10
MIN_K = max(*TOPS, RAW_NEIGHBOURS)
MEAN_GAIN_COLUMN = 2 * len(TOPS)  # the similarity-weighted mean gain over all k (the knn router's score)


def feature_count() -> int:
    return 2 * (len(TOPS) + 1) + 3 + 2 * RAW_NEIGHBOURS


def neighbour_features(sims: np.ndarray, positions: np.ndarray, gain: np.ndarray, threshold: float) -> np.ndarray:
    """(n, k) similarities and index positions (-1 = none), the indexed queries' gains -> (n, F)."""
    if sims.shape[1] < MIN_K:
        raise ValueError(f"retrieval features need k >= {MIN_K} neighbours, got {sims.shape[1]}")
    real = positions >= 0
    neighbour_gain = np.where(real, gain[np.clip(positions, 0, None)], 0.0)
    strong = np.where(real, neighbour_gain > threshold, 0.0)
    weights = np.where(real, np.clip(sims, 0.0, None), 0.0)
    columns = []
    for top in (*TOPS, sims.shape[1]):
        w = weights[:, :top]
        columns.append((w * neighbour_gain[:, :top]).sum(1) / w.sum(1).clip(min=1e-6))
        columns.append(strong[:, :top].sum(1) / real[:, :top].sum(1).clip(min=1))
    columns += [weights[:, 0], weights.sum(1) / real.sum(1).clip(min=1), np.abs(2 * columns[-1] - 1)]
    raw = slice(0, RAW_NEIGHBOURS)
    return np.column_stack([*columns, weights[:, raw], neighbour_gain[:, raw]]).astype(np.float32)

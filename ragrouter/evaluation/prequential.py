"""Prequential scores: how a router that learns from feedback routes a stream of traffic.

In a fixed order, each query is scored knowing the outcomes of the queries before it, never
its own, and its outcome is then fed back (`Router.remember`), as a served router with a live
knowledge base would see them (Dawid's prequential evaluation). Metrics over these scores
compare with the same router's static scores of the same queries.
"""

from __future__ import annotations

import numpy as np

from ragrouter.routers.base import Queries, Router


def prequential_scores(router: Router, queries: Queries, gain: np.ndarray, block: int = 1) -> np.ndarray:
    """The scores of `queries` in their order: score a block of `block` queries, then
    remember their gains, then the next block.

    block 1 is strictly prequential. A larger block is faster (one scoring batch per block)
    and knows less: a query then sees the outcomes of earlier blocks only, not of the queries
    before it in its own. The router is changed: it ends up remembering every query. Features
    precomputed in `queries` are sliced per block, so the encoder does not run again.
    """
    gain = np.asarray(gain, dtype=np.float64)
    if gain.shape != (len(queries),):
        raise ValueError(f"gain: expected one value per query, shape ({len(queries)},), got shape {gain.shape}")
    if block < 1:
        raise ValueError(f"block: must be at least 1, got {block}")
    if not router.remember(Queries([]), np.zeros(0)):
        raise ValueError(f"router {router.name!r} retrieves nothing: it does not learn from feedback, its scores stay static")
    scores = np.empty(len(queries))
    for start in range(0, len(queries), block):
        rows = np.arange(start, min(start + block, len(queries)))
        part = Queries([queries.prompts[i] for i in rows], queries.features.subset(rows) if queries.features is not None else None)
        scores[rows] = router.score(part)
        router.remember(part, gain[rows])
    return scores

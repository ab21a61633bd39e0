"""Random routing: the floor every router must beat (APGR 0.5 in expectation)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from ragrouter.routers.base import Queries, Router, RouterConfig
from ragrouter.routers.registry import register_router


@dataclass
class RandomRouterConfig(RouterConfig):
    seed: int = 0


@register_router("random")
class RandomRouter(Router):
    """Uniform scores from a hash of (seed, prompt): reproducible and independent of batch order."""

    config_class = RandomRouterConfig
    config: RandomRouterConfig

    def score(self, queries: Queries) -> np.ndarray:
        seed = str(self.config.seed)
        return np.array(
            [
                int(hashlib.sha256(f"{seed}\x1f{p}".encode()).hexdigest()[:13], 16) / float(16**13)
                for p in queries.prompts
            ],
            dtype=np.float64,
        )

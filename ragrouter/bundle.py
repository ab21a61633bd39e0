"""A trained router plus its routing threshold: what gets registered and served."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ragrouter.routers.base import Queries, Router
from ragrouter.routers.registry import load_router


def calibrate_threshold(training_scores: np.ndarray, strong_fraction: float) -> float:
    """The score threshold that sends `strong_fraction` of the training traffic to the strong model."""
    if not 0.0 <= strong_fraction <= 1.0:
        raise ValueError(f"strong_fraction must be in [0, 1], got {strong_fraction}")
    if strong_fraction == 0.0:
        return float("inf")
    return float(np.quantile(np.asarray(training_scores, dtype=np.float64), 1.0 - strong_fraction, method="higher"))


@dataclass
class RouterBundle:
    """Route to strong when score >= threshold; `metadata` records how it was trained."""

    router: Router
    threshold: float
    strong_fraction: float
    metadata: dict[str, Any] = field(default_factory=dict)

    def route(self, prompts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(P(strong needed), True where the query goes to the strong model)."""
        scores = self.router.score(Queries(list(prompts)))
        return scores, scores >= self.threshold

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.router.save(directory / "router")
        (directory / "bundle.json").write_text(
            json.dumps(
                {"threshold": self.threshold, "strong_fraction": self.strong_fraction, "metadata": self.metadata},
                indent=2,
            )
        )

    @classmethod
    def load(cls, directory: Path) -> "RouterBundle":
        meta = json.loads((directory / "bundle.json").read_text())
        return cls(load_router(directory / "router"), meta["threshold"], meta["strong_fraction"], meta["metadata"])

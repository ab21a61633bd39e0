"""Golden labels: the gain of the strong model over the weak one, and the binary target."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from ragrouter.data.records import RoutingRecords


def gains(records: RoutingRecords) -> np.ndarray:
    """gain = strong_quality - weak_quality, in [-1, 1]; > 0 where the strong model helps."""
    frame = records.frame
    return (frame["strong_quality"] - frame["weak_quality"]).to_numpy(dtype=np.float64)


def strong_needed(gain: np.ndarray, threshold: float = 0.0) -> np.ndarray:
    """Binary target "strong model needed" = gain > t (RouteLLM's win label is t = 0).

    A t > 0 is Hybrid LLM's relaxation: small gains are not worth a strong call.
    """
    if threshold < 0:
        raise ValueError(f"label threshold must be >= 0, got {threshold}")
    return gain > threshold


@dataclass
class Labels:
    """The labels of a record set: per record id its gain and whether the strong model is
    needed (gain > threshold). What every step that trains or evaluates a router reads."""

    frame: pd.DataFrame  # id, gain, strong_needed
    threshold: float

    @classmethod
    def of(cls, records: RoutingRecords, threshold: float = 0.0) -> Labels:
        gain = gains(records)
        frame = pd.DataFrame({"id": records.frame["id"].to_numpy(), "gain": gain, "strong_needed": strong_needed(gain, threshold)})
        return cls(frame, threshold)

    def __len__(self) -> int:
        return len(self.frame)

    def gain_of(self, ids: Sequence[str]) -> np.ndarray:
        """The gains of the given record ids, in that order."""
        return self.frame.set_index("id")["gain"].loc[list(ids)].to_numpy(dtype=np.float64)


def pairwise_outcome(gain: np.ndarray, threshold: float = 0.0) -> np.ndarray:
    """Each query as a battle of the two models: 1 strong wins, 0 weak wins, 0.5 tie.

    The strong model wins where it is needed (gain > t), the weak one where it is strictly
    better (gain < 0); both right or both wrong, or a gain within (0, t], is a tie.
    """
    strong_wins = strong_needed(gain, threshold)
    return np.where(strong_wins, 1.0, np.where(gain < 0, 0.0, 0.5))


def outcome_class(outcome: np.ndarray) -> np.ndarray:
    """Battle outcome as RouteLLM's class index: 1 (strong wins) -> 0, 0.5 (tie) -> 1, 0 (weak wins) -> 2."""
    return np.rint(2 * (1 - outcome)).astype(np.int64)

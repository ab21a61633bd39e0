"""The evaluation's typed results, so materializers can persist them as CSV and show them."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ragrouter.evaluation.metrics import SCORE_COLUMNS


@dataclass
class OutOfFoldScores:
    """Per-query out-of-fold scores (SCORE_COLUMNS), from which anyone can recompute the metrics."""

    frame: pd.DataFrame

    def __post_init__(self) -> None:
        missing = [c for c in SCORE_COLUMNS if c not in self.frame.columns]
        if missing:
            raise ValueError(f"out-of-fold scores lack columns {missing}")
        self.frame = self.frame.loc[:, list(SCORE_COLUMNS)]


@dataclass
class EvaluationReport:
    """The results table (one row per protocol and router) and the scores it was computed from."""

    table: pd.DataFrame
    scores: pd.DataFrame

"""Holding the strong-call share on live traffic with a rolling quantile of recent scores.

A threshold calibrated on training traffic sends the intended share of *that* traffic to the
strong model; traffic unlike it (other task families, other prompt shapes) shifts every score
and the share with it. The rolling threshold is the (1 - fraction) quantile of the last
`window` scores the gateway has seen, so the share follows the target whatever the traffic;
until `warmup` scores have been seen the calibrated threshold stands in.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from ragrouter.bundle import calibrate_threshold
from ragrouter.serving.config import CostTargetConfig


class CostTarget:
    """Thresholds per strong-call fraction, and the live share of strong decisions."""

    def __init__(
        self,
        config: CostTargetConfig,
        calibrated_threshold: float,
        calibrated_fraction: float,
        training_quantiles: list[float] | None = None,
    ):
        self.config = config
        self.fraction = calibrated_fraction if config.strong_fraction is None else config.strong_fraction
        self.calibrated_threshold = calibrated_threshold
        self.calibrated_fraction = calibrated_fraction
        self.training_quantiles = None if training_quantiles is None else np.asarray(training_quantiles, dtype=np.float64)
        self.scores: deque[float] = deque(maxlen=config.window)
        self.decisions: deque[bool] = deque(maxlen=config.window)

    @property
    def warm(self) -> bool:
        return self.config.rolling and len(self.scores) >= self.config.warmup

    def threshold(self, fraction: float | None = None) -> float:
        """The score at or above which a query goes to the strong model at this fraction."""
        fraction = self.fraction if fraction is None else fraction
        if self.warm:
            return calibrate_threshold(np.fromiter(self.scores, dtype=np.float64), fraction)
        return self.calibrated(fraction)

    def calibrated(self, fraction: float) -> float:
        """The training traffic's threshold for `fraction`: the bundle's own, or read off the
        training scores' quantiles the bundle carries."""
        if fraction == self.calibrated_fraction or self.training_quantiles is None:
            return self.calibrated_threshold
        if fraction == 0.0:
            return float("inf")
        levels = np.linspace(0.0, 1.0, len(self.training_quantiles))
        return float(np.interp(1.0 - fraction, levels, self.training_quantiles))

    def observe(self, scores: np.ndarray, to_strong: np.ndarray) -> None:
        """Scores seen and the decisions taken at the default fraction."""
        self.scores.extend(float(s) for s in scores)
        self.decisions.extend(bool(d) for d in to_strong)

    @property
    def live_share(self) -> float:
        """The share of the last `window` decisions that went to the strong model."""
        return float(np.mean(self.decisions)) if self.decisions else 0.0

"""One side of the promotion race in test_promotion.py, run as its own process:

    python tests/promotion_race.py MODEL VERSION BARRIER_DIR

decides with the real gate on synthetic scores (each version's noise is its `test.noise` tag),
waits after its first decision until both sides have decided (so both read the same champion),
then lets promote_by_gate move the alias under the lock; prints the decision as JSON.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow import MlflowClient

from ragrouter.config import PromotionConfig
from ragrouter.registry.gate import gate_decision
from ragrouter.registry.promotion import promote_by_gate
from ragrouter.registry.tracking import configure_tracking

QUERIES = 600


def synthetic_scores(noise: float, queries: int = QUERIES) -> pd.DataFrame:
    """One protocol's scores: the same qualities for every router (seed 0), the router's score
    the true gain plus Gaussian noise of `noise` (its own seed): less noise, a better router."""
    truth = np.random.default_rng(0)
    strong, weak = (truth.random(queries) < 0.8).astype(float), (truth.random(queries) < 0.5).astype(float)
    score = strong - weak + np.random.default_rng(int(noise * 1000)).normal(0, noise, queries)
    return pd.DataFrame(
        {"id": [f"q{i}" for i in range(queries)], "protocol": "P1", "fold": 0, "router": "r", "score": score, "strong_quality": strong, "weak_quality": weak}
    )


def noise_of(model_name: str, version: str) -> float:
    return float(MlflowClient().get_model_version(model_name, version).tags["test.noise"])


def main(model_name: str, version: str, barrier: Path) -> None:
    configure_tracking()
    config = PromotionConfig()

    def decide(champion: str | None):
        decision = gate_decision(
            model_name, version, synthetic_scores(noise_of(model_name, version)), synthetic_scores(5.0),
            champion, synthetic_scores(noise_of(model_name, champion)) if champion else None, config, "synthetic", resamples=300,
        )
        (barrier / version).touch()
        deadline = time.monotonic() + 120
        while len(list(barrier.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        return decision

    print(json.dumps(promote_by_gate(model_name, version, decide).to_dict()))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], Path(sys.argv[3]))

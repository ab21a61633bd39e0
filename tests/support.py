"""Helpers shared by tests: synthetic score tables and waiting for a server process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ragrouter.encoder import EncoderConfig
from ragrouter.features.query_features import FeatureConfig, QueryFeatures


def score_rows(protocol: str, router: str, score: np.ndarray, strong: np.ndarray, weak: np.ndarray) -> pd.DataFrame:
    """Out-of-fold score rows (SCORE_COLUMNS) for one protocol and router, five folds round robin."""
    n = len(score)
    return pd.DataFrame(
        {
            "id": [f"{protocol}-{i}" for i in range(n)],
            "protocol": protocol,
            "fold": np.arange(n) % 5,
            "router": router,
            "score": score,
            "strong_quality": strong,
            "weak_quality": weak,
        }
    )


def venv_env(**extra: str) -> dict[str, str]:
    """This environment with the interpreter's bin folder first on PATH (mlflow runs uvicorn from there)."""
    path = f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**os.environ, "PATH": path, **extra}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_healthy(process: subprocess.Popen, url: str, log: Path, timeout_s: float = 120) -> None:
    """Poll `url` until it answers 200; fail with the server's log if it exits or times out."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"server at {url} did not start: {log.read_text()[-2000:]}")
        time.sleep(0.5)


def vector_features(vectors: np.ndarray, encoder: EncoderConfig | None = None) -> QueryFeatures:
    """Features holding only given sentence vectors, as if `encoder` (the default) computed them."""
    config = FeatureConfig(encoder or EncoderConfig())
    return QueryFeatures(config, config.identity, {"pooled": np.asarray(vectors, dtype=np.float32)})


# a registry test run against the sqlite store and an MLflow server on PostgreSQL (`tracking_store`)
SQLITE_AND_POSTGRES = pytest.mark.parametrize("tracking_store", ["sqlite", "postgresql-server"], indirect=True)

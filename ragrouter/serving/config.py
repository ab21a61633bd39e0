"""The gateway's settings: one typed tree, from `ragrouter serve --config gateway.yaml` and flags.

Every setting has its default here and nowhere else; `docs/gateway.md` shows a full file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal

from ragrouter.typed_config import ConfigError, TypedConfig

LOOPBACK = "127.0.0.1"


def secret(variable: str | None, path: str) -> str | None:
    """The value of the environment variable a setting names (secrets never sit in a config)."""
    if variable is None:
        return None
    value = os.environ.get(variable)
    if not value:
        raise ConfigError(f"{path}: environment variable {variable} is not set")
    return value


@dataclass
class BackendConfig(TypedConfig):
    """One OpenAI-compatible endpoint the gateway forwards to.

    Fields:
        url: its base URL, ending where `/chat/completions` is appended (e.g. `http://host:8000/v1`).
        model: the model name sent to it; by default the name the router's training data gave it.
        key_env: the environment variable holding its API key (never the key itself).
        timeout_s: how long a call may take before it counts as failed.
    """

    url: str | None = None
    model: str | None = None
    key_env: str | None = None
    timeout_s: float = 120.0

    def endpoint(self, role: str) -> tuple[str, dict[str, str]]:
        """(base URL, request headers), or a ConfigError naming the missing setting."""
        if not self.url:
            raise ConfigError(f"{role}.url: the {role} model's endpoint is required (--{role}-url)")
        key = secret(self.key_env, f"{role}.key_env")
        return self.url.rstrip("/"), {"Authorization": f"Bearer {key}"} if key else {}


@dataclass
class CostTargetConfig(TypedConfig):
    """The share of requests sent to the strong model, held on live traffic.

    Fields:
        strong_fraction: the target share; by default the one the model was calibrated for.
        rolling: hold the share with a rolling quantile of recent scores (False: always the
            threshold calibrated on training traffic, which drifts when traffic does).
        window: how many recent routing scores the quantile reads.
        warmup: scores seen before the rolling threshold replaces the calibrated one.
    """

    strong_fraction: float | None = None
    rolling: bool = True
    window: int = 2000
    warmup: int = 200

    def __post_init__(self) -> None:
        if self.strong_fraction is not None and not 0.0 <= self.strong_fraction <= 1.0:
            raise ConfigError(f"cost.strong_fraction: must be in [0, 1], got {self.strong_fraction}")
        if not 1 <= self.warmup <= self.window:
            raise ConfigError(f"cost.warmup: must be in [1, window={self.window}], got {self.warmup}")


@dataclass
class LimitsConfig(TypedConfig):
    """What a request may ask for.

    Fields:
        max_body_bytes: larger request bodies get 413.
        max_batch: prompts per `/route` request.
        max_prompt_chars: a longer prompt is cut to its last `max_prompt_chars` characters for
            routing (the question comes last), or refused with 413 (`long_prompts: reject`).
        route_timeout_s: a request still waiting for its routing score after this gets 504
            and its prompts are dropped from the batch queue.
    """

    max_body_bytes: int = 1_048_576
    max_batch: int = 64
    max_prompt_chars: int = 20_000
    long_prompts: Literal["truncate", "reject"] = "truncate"
    route_timeout_s: float = 10.0


@dataclass
class BatchingConfig(TypedConfig):
    """Concurrent requests are scored together, up to `max_size` prompts a batch. With
    `max_wait_ms` 0 nothing waits: what queued while the router scored the last batch is the
    next one, so a lone request is scored at once and load forms its own batches. A wait
    above 0 holds each batch open that long for more (fuller batches, at that cost in latency)."""

    max_size: int = 32
    max_wait_ms: float = 0.0


@dataclass
class FeedbackConfig(TypedConfig):
    """Where `/feedback` outcomes go and how often each process reads the others'.

    Fields:
        store: a JSONL file (shared by gateway processes on one host; also the log the next
            training run ingests) or a `postgresql://` URL (shared by replicas); None turns
            `/feedback` off.
        sync_interval_s: each process adds new outcomes to its knowledge base this often: the
            bound on how late another process's feedback is seen.
    """

    store: str | None = None
    sync_interval_s: float = 1.0


@dataclass
class GatewayConfig(TypedConfig):
    """`ragrouter serve`: route each request to the strong or weak back-end.

    Fields:
        model: `models:/<name>@<alias>`, `models:/<name>/<version>` (the MLflow registry at
            MLFLOW_TRACKING_URI) or a saved bundle's folder.
        host, port: where to listen; loopback unless told otherwise.
        strong, weak: the two back-ends.
        on_backend_error: "failover" (send the request to the other model) or "error" (502).
        token_env: an environment variable holding a bearer token every endpoint but /health
            then requires.
        reload_interval_s: how often the registry alias is checked; a moved alias loads the
            new version beside the old one and swaps it in (0: never).
    """

    model: str = "models:/ragrouter@champion"
    host: str = LOOPBACK
    port: int = 6060
    strong: BackendConfig = field(default_factory=BackendConfig)
    weak: BackendConfig = field(default_factory=BackendConfig)
    on_backend_error: Literal["failover", "error"] = "failover"
    token_env: str | None = None
    reload_interval_s: float = 10.0
    cost: CostTargetConfig = field(default_factory=CostTargetConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    batching: BatchingConfig = field(default_factory=BatchingConfig)
    feedback: FeedbackConfig = field(default_factory=FeedbackConfig)

    def bearer_token(self) -> str | None:
        return secret(self.token_env, "token_env")

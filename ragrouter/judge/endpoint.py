"""An OpenAI-compatible chat endpoint as the judge, called with the official `openai` client.

The client's own retries are off: this module retries a 429, a 5xx, a timeout or a refused
connection itself, waiting the server's Retry-After where it sends one and an exponential
backoff otherwise, so that the wait is the config's and each retry is counted. When the retries
are spent (or the answer is another 4xx, which no retry mends) it raises JudgeEndpointError,
whose message names the URL: the run stops there, before anything trains.
"""

from __future__ import annotations

import os
import threading
import time

import openai

from ragrouter.errors import RAGRouterError
from ragrouter.judge.cache import Reply
from ragrouter.judge.config import EndpointConfig
from ragrouter.judge.prompts import JudgePrompt


class JudgeEndpointError(RAGRouterError):
    """The judge's endpoint cannot be used: unreachable, too slow, failing or refusing."""


class EndpointJudge:
    """Asks `config.model` at `config.base_url` for each verdict; thread-safe (one client)."""

    def __init__(self, config: EndpointConfig):
        self.config = config
        self.url = config.base_url.rstrip("/")
        key = "unused"
        if config.api_key_env is not None:
            key = os.environ.get(config.api_key_env, "")
            if not key:
                raise JudgeEndpointError(f"judge.endpoint.api_key_env: environment variable {config.api_key_env} is not set")
        self.client = openai.OpenAI(base_url=self.url, api_key=key, timeout=config.timeout_s, max_retries=0)
        self.retries = 0
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """The judge as each record it grades names it."""
        return f"{self.config.model}@{self.url}"

    @property
    def identity(self) -> str:
        """What its verdicts depend on: the name and the reply budget."""
        return f"{self.name} max_tokens={self.config.max_tokens}"

    @property
    def concurrency(self) -> int:
        return self.config.concurrency

    def complete(self, prompt: JudgePrompt) -> Reply:
        messages = [{"role": "system", "content": prompt.system}, {"role": "user", "content": prompt.user}]
        attempt = 0
        while True:
            try:
                answer = self.client.chat.completions.create(
                    model=self.config.model, messages=messages, temperature=0.0, max_tokens=self.config.max_tokens
                )
            except (openai.RateLimitError, openai.InternalServerError, openai.APIConnectionError) as error:
                if attempt == self.config.max_retries:
                    raise JudgeEndpointError(f"judge endpoint {self.url}: {_failure(error, self.config)}; gave up after {attempt + 1} attempt(s)") from None
                with self._lock:
                    self.retries += 1
                time.sleep(self._wait_s(error, attempt))
                attempt += 1
            except openai.APIStatusError as error:
                raise JudgeEndpointError(f"judge endpoint {self.url} refused the request: HTTP {error.status_code}: {error.message}") from None
            else:
                usage = answer.usage
                text = answer.choices[0].message.content if answer.choices else None
                return Reply(text or "", usage.prompt_tokens if usage else 0, usage.completion_tokens if usage else 0)

    def _wait_s(self, error: Exception, attempt: int) -> float:
        """The server's Retry-After (seconds) where it sends one, else the exponential backoff."""
        response = getattr(error, "response", None)
        retry_after = response.headers.get("retry-after") if response is not None else None
        if retry_after is not None:
            try:
                return min(float(retry_after), self.config.max_backoff_s)
            except ValueError:
                pass  # an HTTP date: use the backoff
        return min(self.config.backoff_s * 2**attempt, self.config.max_backoff_s)


def _failure(error: Exception, config: EndpointConfig) -> str:
    if isinstance(error, openai.APITimeoutError):
        return f"no answer within {config.timeout_s:g} s"
    if isinstance(error, openai.APIConnectionError):
        return "cannot connect"
    return f"HTTP {getattr(error, 'status_code', '?')}"

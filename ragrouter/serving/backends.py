"""The two OpenAI-compatible endpoints the gateway forwards to.

A failure is a connection that cannot be made, a call past its timeout, or a 5xx answer: the
gateway then fails over or answers 502, as configured. A 4xx answer is the caller's request
at fault and is passed back as it is.
"""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, AsyncIterator

import httpx

from ragrouter.serving.config import BackendConfig


class BackendError(Exception):
    """A back-end that is down, slow or failing; `reason` says which, for metrics and the 502."""

    def __init__(self, role: str, reason: str, detail: str):
        super().__init__(f"the {role} model's endpoint failed ({reason}): {detail}")
        self.role, self.reason = role, reason


@dataclass
class Backend:
    role: str  # "strong" or "weak"
    model: str  # the name it is called by, and the `model` of the answers the gateway returns
    url: str
    headers: dict[str, str]
    timeout_s: float
    client: httpx.AsyncClient

    @classmethod
    def of(cls, role: str, config: BackendConfig, data_name: str, client: httpx.AsyncClient) -> "Backend":
        url, headers = config.endpoint(role)
        return cls(role, config.model or data_name, url, headers, config.timeout_s, client)

    def _request(self, path: str, body: dict[str, Any]) -> httpx.Request:
        return self.client.build_request(
            "POST", f"{self.url}{path}", json={**body, "model": self.model}, headers=self.headers, timeout=self.timeout_s
        )

    async def post(self, path: str, body: dict[str, Any]) -> tuple[httpx.Response, float]:
        """The back-end's answer (read in full) and its latency in seconds."""
        async with self.stream(path, body) as (response, started):
            await response.aread()
            return response, time.perf_counter() - started

    @asynccontextmanager
    async def stream(self, path: str, body: dict[str, Any]) -> AsyncIterator[tuple[httpx.Response, float]]:
        """The open answer, headers read, body not yet (so a stream is forwarded as it comes)."""
        started = time.perf_counter()
        try:
            response = await self.client.send(self._request(path, body), stream=True)
        except httpx.TimeoutException as error:
            raise BackendError(self.role, "timeout", f"no answer within {self.timeout_s:g} s") from error
        except httpx.HTTPError as error:
            raise BackendError(self.role, "unreachable", f"{type(error).__name__} calling {self.url}") from error
        try:
            if response.status_code >= 500:
                await response.aread()
                raise BackendError(self.role, "server_error", f"HTTP {response.status_code}")
            yield response, started
        finally:
            await response.aclose()

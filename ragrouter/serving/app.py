"""The routing gateway: an OpenAI-compatible front for a strong and a weak model (docs/gateway.md).

Per request the router scores the routed prompt (micro-batched with concurrent requests), the
cost target turns the score into a decision, and the request goes to the chosen back-end,
streamed when asked. `/route` answers the decision alone; `/feedback` adds an observed outcome
to the knowledge base every gateway process reads; `/metrics` is Prometheus text.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, AsyncIterator

import httpx
import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ragrouter.serving.backends import Backend, BackendError
from ragrouter.serving.batcher import MicroBatcher
from ragrouter.serving.config import GatewayConfig
from ragrouter.serving.cost_target import CostTarget
from ragrouter.serving.feedback import open_feedback_store, outcome_from_feedback
from ragrouter.serving.knowledge_base import LiveKnowledgeBase
from ragrouter.serving.metrics import GatewayMetrics
from ragrouter.serving.model_source import LoadedModel, ModelSource
from ragrouter.serving.requests import (
    CostChoice,
    RequestError,
    cost_choice,
    json_object,
    routed_chat_prompt,
    routed_completion_prompt,
    routed_prompts,
    stream_requested,
)

logger = logging.getLogger("ragrouter.gateway")
FEEDBACK_FIELDS = ("strong_quality", "weak_quality", "model", "quality", "winner")


def error_response(status: int, message: str, param: str | None = None, kind: str = "invalid_request_error") -> JSONResponse:
    """OpenAI's error shape: a message and the field at fault; never a traceback or the input."""
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": status}}, status_code=status)


class BodyLimit:
    """413 for a body over `max_bytes`, whether announced by Content-Length or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        too_big = error_response(413, f"request body over {self.max_bytes} bytes")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await too_big(scope, receive, send)
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise _BodyTooLarge
            return message

        await self.app(scope, counted, send)  # the guard turns _BodyTooLarge into this 413


class _BodyTooLarge(Exception):
    pass


class Guard:
    """The bearer token on every endpoint but `/health`; each answer counted by endpoint and
    status (unknown paths are not: no label explosion); what a handler raises answered in
    OpenAI's error shape. Plain ASGI: it adds no task or body copy to a request."""

    def __init__(self, app: ASGIApp, gateway: Gateway, endpoints: set[str]):
        self.app, self.gateway, self.endpoints = app, gateway, endpoints
        token = gateway.token
        self.expected = None if token is None else f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status: int | None = None

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        endpoint = scope["path"]
        if self.expected is not None and endpoint != "/health" and not hmac.compare_digest(dict(scope["headers"]).get(b"authorization", b""), self.expected):
            await error_response(401, "missing or wrong bearer token", kind="authentication_error")(scope, receive, sending)
        else:
            try:
                await self.app(scope, receive, sending)
            except Exception as error:
                if status is not None:  # a streamed answer broke after it started: nothing more can be sent
                    logger.exception("error while streaming %s", endpoint)
                else:
                    await self._error(error, endpoint)(scope, receive, sending)
        if endpoint in self.endpoints and status is not None:
            self.gateway.metrics.requests.labels(endpoint=endpoint, status=str(status)).inc()

    def _error(self, error: Exception, endpoint: str) -> Response:
        if isinstance(error, _BodyTooLarge):
            return error_response(413, f"request body over {self.gateway.config.limits.max_body_bytes} bytes")
        if isinstance(error, RequestError):
            return error_response(error.status, error.message, error.param)
        logger.error("unexpected error on %s", endpoint, exc_info=error)
        return error_response(500, "internal error; the gateway's log has the details", kind="server_error")


class Gateway:
    """The state one gateway process serves from; the router is only touched on its thread."""

    def __init__(self, config: GatewayConfig):
        for role in ("strong", "weak"):  # checked before the model loads, which takes a while
            getattr(config, role).endpoint(role)
        self.config = config
        self.source = ModelSource(config.model)
        self.metrics = GatewayMetrics()
        self._loaded = self.source.load()  # before the server starts: a bad model URI fails here, plainly
        self.token = config.bearer_token()
        self.store = open_feedback_store(config.feedback.store) if config.feedback.store else None
        self.model: LoadedModel
        self.cost: CostTarget
        self.knowledge: LiveKnowledgeBase | None = None
        self.batcher = MicroBatcher(self._score, config.batching, on_batch=self.metrics.batch_size.observe)
        self._failed_version: str | None = None
        self.metrics.watch("ragrouter_strong_share", "Share of recent default-target decisions sent to the strong model", lambda: self.cost.live_share)
        self.metrics.watch("ragrouter_threshold", "The score threshold at the default cost target now", lambda: self.cost.threshold())
        self.metrics.watch("ragrouter_cost_target", "The default strong-call fraction", lambda: self.cost.fraction)
        self.metrics.watch("ragrouter_knowledge_base_size", "Labelled queries the router retrieves from", lambda: self.model.bundle.router.knowledge_size)

    # the router thread's work
    def _score(self, prompts: list[str]) -> np.ndarray:
        return np.asarray(self.model.bundle.router.score_prompts(prompts), dtype=np.float64)

    def _replayed(self, model: LoadedModel) -> LiveKnowledgeBase | None:
        """The model's knowledge base with the feedback log replayed into it, before it serves
        (off the router thread: the replay encodes every logged prompt newer than the version)."""
        if self.store is None:
            return None
        knowledge = LiveKnowledgeBase(model.bundle.router, self.store, since=model.created_at)
        knowledge.sync()
        return knowledge

    def _install(self, model: LoadedModel, knowledge: LiveKnowledgeBase | None) -> None:
        """Serve `model` from now on (on the router thread, between batches)."""
        bundle = model.bundle
        if knowledge is not None:
            knowledge.sync()  # what arrived during the replay
        self.model, self.knowledge = model, knowledge
        self.cost = CostTarget(self.config.cost, bundle.threshold, bundle.strong_fraction, bundle.metadata.get("score_quantiles"))
        self.metrics.serving(model.name, model.version)
        logger.info("serving %s (%s), threshold %.4f at strong fraction %.2f", model.label, bundle.router.name, bundle.threshold, bundle.strong_fraction)

    # lifecycle
    async def start(self, client: httpx.AsyncClient) -> None:
        model = self._loaded
        models = model.bundle.metadata.get("models", {})
        self.strong = Backend.of("strong", self.config.strong, models.get("strong", "strong"), client)
        self.weak = Backend.of("weak", self.config.weak, models.get("weak", "weak"), client)
        self.batcher.start()
        knowledge = await asyncio.to_thread(self._replayed, model)
        await self.batcher.on_router_thread(lambda: self._install(model, knowledge))

    async def reload_if_moved(self) -> None:
        """Load the version the alias names now, if it moved; keep the old one if that fails."""
        version = await asyncio.to_thread(self.source.current_version)
        if version is None or version == self.model.version or version == self._failed_version:
            return
        try:
            model = await asyncio.to_thread(self.source.load, version)
            knowledge = await asyncio.to_thread(self._replayed, model)
        except Exception:
            logger.exception("could not load %s version %s; still serving %s", self.source.name, version, self.model.label)
            self._failed_version = version
            self.metrics.reloads.labels(outcome="failed").inc()
            return
        await self.batcher.on_router_thread(lambda: self._install(model, knowledge))
        self.metrics.reloads.labels(outcome="loaded").inc()

    async def sync_knowledge(self) -> None:
        if self.knowledge is not None:
            knowledge = self.knowledge
            await self.batcher.on_router_thread(knowledge.sync)

    # routing
    async def route(self, prompts: list[str], choice: CostChoice) -> tuple[np.ndarray, np.ndarray, float]:
        """(scores, to_strong, threshold) for the prompts, within the routing time budget."""
        started = time.perf_counter()
        try:
            scores = await asyncio.wait_for(self.batcher.score(prompts), self.config.limits.route_timeout_s)
        except TimeoutError:
            raise RequestError(504, f"routing took over {self.config.limits.route_timeout_s:g} s; the request was dropped") from None
        if choice.threshold is not None:
            threshold = choice.threshold
        else:
            threshold = self.cost.threshold(choice.fraction)
        to_strong = scores >= threshold
        default_target = choice == CostChoice()
        self.cost.observe(scores, to_strong if default_target else np.zeros(0, dtype=bool))
        self.metrics.routing_seconds.observe(time.perf_counter() - started)
        for backend, count in ((self.strong, int(to_strong.sum())), (self.weak, int((~to_strong).sum()))):
            if count:
                self.metrics.decisions.labels(model=backend.model).inc(count)
        return scores, to_strong, threshold

    async def forward(self, path: str, body: dict[str, Any], stream: bool, to_strong: bool, score: float) -> Response:
        """The chosen back-end's answer; on its failure the other one's, or a 502, as configured."""
        chosen, other = (self.strong, self.weak) if to_strong else (self.weak, self.strong)
        candidates = [chosen, other] if self.config.on_backend_error == "failover" else [chosen]
        failures = []
        for backend in candidates:
            headers = {"x-ragrouter-model": backend.model, "x-ragrouter-score": f"{score:.6f}"}
            try:
                if stream:
                    return await self._stream(backend, path, body, headers)
                response, seconds = await backend.post(path, body)
            except BackendError as error:
                self.metrics.backend_errors.labels(model=backend.model, reason=error.reason).inc()
                failures.append(str(error))
                if backend is chosen and len(candidates) > 1:
                    self.metrics.failovers.labels(from_model=backend.model).inc()
                continue
            self.metrics.backend_seconds.labels(model=backend.model).observe(seconds)
            return Response(response.content, response.status_code, headers, media_type=response.headers.get("content-type"))
        return error_response(502, "; ".join(failures), kind="backend_error")

    async def _stream(self, backend: Backend, path: str, body: dict[str, Any], headers: dict[str, str]) -> Response:
        stack = AsyncExitStack()
        response, started = await stack.enter_async_context(backend.stream(path, body))  # fails before any byte is sent

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in response.aiter_raw():
                    yield chunk
            except httpx.HTTPError as error:  # the stream broke after it started: the client sees it end
                self.metrics.backend_errors.labels(model=backend.model, reason="stream_broken").inc()
                logger.warning("the %s model's stream broke: %s", backend.role, type(error).__name__)
            finally:
                self.metrics.backend_seconds.labels(model=backend.model).observe(time.perf_counter() - started)
                await stack.aclose()

        return StreamingResponse(chunks(), response.status_code, headers, media_type=response.headers.get("content-type"))


def create_app(config: GatewayConfig) -> FastAPI:
    gateway = Gateway(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=None, max_keepalive_connections=256)) as client:
            await gateway.start(client)
            tasks = [asyncio.create_task(_every(config.reload_interval_s, gateway.reload_if_moved, "reload"))] if config.reload_interval_s > 0 else []
            if gateway.store is not None:
                tasks.append(asyncio.create_task(_every(config.feedback.sync_interval_s, gateway.sync_knowledge, "feedback sync")))
            yield
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await gateway.batcher.stop()
            if gateway.store is not None:
                gateway.store.close()

    app = FastAPI(title="RAGRouter gateway", lifespan=lifespan, docs_url=None, redoc_url=None)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        model = gateway.model
        return {"status": "ok", "model": model.name, "version": model.version, "router": model.bundle.router.name}

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(gateway.metrics.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        name = f"router-{gateway.model.name}"
        created = int(gateway.model.created_at)
        return {
            "object": "list",
            "data": [
                {"id": name, "object": "model", "created": created, "owned_by": "ragrouter"},
                {"id": f"{name}-{gateway.cost.fraction:g}", "object": "model", "created": created, "owned_by": "ragrouter"},
            ],
        }

    @app.post("/route")
    async def route(request: Request) -> dict[str, Any]:
        body = json_object(await request.body())
        prompts = routed_prompts(body, config.limits)
        scores, to_strong, threshold = await gateway.route(prompts, cost_choice(body))
        names = np.where(to_strong, gateway.strong.model, gateway.weak.model)
        return {
            "results": [{"p_strong": float(s), "route_to_strong": bool(d), "model": str(m)} for s, d, m in zip(scores, to_strong, names)],
            "threshold": threshold,
            "version": gateway.model.version,
        }

    async def completion(request: Request, path: str, routed_prompt: Any) -> Response:
        body = json_object(await request.body())
        prompt = routed_prompt(body, config.limits)
        stream = stream_requested(body)
        scores, to_strong, _ = await gateway.route([prompt], cost_choice(body))
        return await gateway.forward(path, body, stream, bool(to_strong[0]), float(scores[0]))

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        return await completion(request, "/chat/completions", routed_chat_prompt)

    @app.post("/v1/completions")
    async def completions(request: Request) -> Response:
        return await completion(request, "/completions", routed_completion_prompt)

    @app.post("/feedback")
    async def feedback(request: Request) -> dict[str, Any]:
        if gateway.knowledge is None:
            raise RequestError(404, "feedback is off: start the gateway with feedback.store set (--feedback-store)")
        body = json_object(await request.body())
        unknown = sorted(set(body) - {"prompt", *FEEDBACK_FIELDS})
        if unknown:
            raise RequestError(422, f"{unknown[0]}: unknown field; feedback takes prompt and {', '.join(FEEDBACK_FIELDS)}", unknown[0])
        prompt = routed_prompts({"prompt": body.get("prompt")}, config.limits)[0]
        fields = {name: body[name] for name in FEEDBACK_FIELDS if name in body}
        try:
            outcome = outcome_from_feedback(prompt, quality_means=gateway.model.bundle.metadata.get("quality_means"), **fields)
        except ValueError as error:  # "field: what is wrong, got <value>": the answer names the field, never echoes the value
            message = str(error).split(", got ")[0]
            raise RequestError(422, message, message.split(":")[0]) from None
        knowledge = gateway.knowledge
        await asyncio.to_thread(knowledge.record, [outcome])
        gateway.metrics.feedback.inc()
        return {"accepted": 1, "learns": knowledge.learns}

    app.add_middleware(Guard, gateway=gateway, endpoints={route.path for route in app.routes})
    app.add_middleware(BodyLimit, max_bytes=config.limits.max_body_bytes)  # outermost: before anything reads the body
    return app


async def _every(seconds: float, work: Any, what: str) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await work()
        except Exception:
            logger.exception("%s failed; trying again in %g s", what, seconds)

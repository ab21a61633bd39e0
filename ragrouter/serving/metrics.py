"""The gateway's Prometheus metrics (`GET /metrics`), in a registry of its own per app."""

from __future__ import annotations

from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# routing takes milliseconds, a back-end call up to minutes
ROUTING_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
BACKEND_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("ragrouter_requests", "HTTP requests by endpoint and status", ["endpoint", "status"], registry=r)
        self.decisions = Counter("ragrouter_routing_decisions", "Prompts routed, by the model chosen", ["model"], registry=r)
        self.routing_seconds = Histogram(
            "ragrouter_routing_seconds", "Time from a request's arrival to its routing decision (queue + batch scoring)",
            buckets=ROUTING_BUCKETS, registry=r,
        )
        self.batch_size = Histogram("ragrouter_batch_prompts", "Prompts scored per micro-batch", buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=r)
        self.backend_seconds = Histogram("ragrouter_backend_seconds", "Back-end call latency", ["model"], buckets=BACKEND_BUCKETS, registry=r)
        self.backend_errors = Counter("ragrouter_backend_errors", "Back-end failures by model and reason", ["model", "reason"], registry=r)
        self.failovers = Counter("ragrouter_failovers", "Requests sent to the other model after a back-end failure", ["from_model"], registry=r)
        self.feedback = Counter("ragrouter_feedback", "Outcomes accepted by /feedback", registry=r)
        self.reloads = Counter("ragrouter_reloads", "Attempts to load a new model version, by outcome", ["outcome"], registry=r)
        self.model_info = Gauge("ragrouter_model_info", "The version being served (value 1)", ["name", "version"], registry=r)

    def watch(self, name: str, documentation: str, read: Callable[[], float]) -> None:
        """A gauge whose value is read from the gateway's state at every scrape."""
        Gauge(name, documentation, registry=self.registry).set_function(read)

    def serving(self, name: str, version: str | None) -> None:
        self.model_info.clear()
        self.model_info.labels(name=name, version=version or "folder").set(1)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

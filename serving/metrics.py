"""Prometheus metrics, exported at GET /monitoring/prometheus/metrics (or --monitoring_config_file's path).

Names follow TF Serving's where it has one (``:tensorflow:serving:...``);
each server has its own registry so several can run in one process (tests).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from serving.models import AVAILABLE, END, LOADING, START, UNLOADING

STATES = (START, LOADING, AVAILABLE, UNLOADING, END)
# Microseconds, as TF Serving's request_latency.
_LATENCY_BUCKETS_US = (
    100,
    250,
    500,
    1_000,
    2_000,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    1e6,
    5e6,
    3e7,
)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ["model_name", "model_version", "api", "entrypoint", "status"]
        self.requests = Counter(
            ":tensorflow:serving:request_count",
            "Inference and metadata requests by model, version, API, entry point and status code.",
            labels,
            registry=self.registry,
        )
        self.latency = Histogram(
            ":tensorflow:serving:request_latency",
            "End-to-end request latency in microseconds (body read to response written).",
            labels,
            buckets=_LATENCY_BUCKETS_US,
            registry=self.registry,
        )
        self.model_state = Gauge(
            ":tensorflow:serving:model_version_state",
            "1 for the current state of each model version (START, LOADING, AVAILABLE, UNLOADING, END).",
            ["model_name", "model_version", "state"],
            registry=self.registry,
        )
        self.load_attempts = Counter(
            ":tensorflow:serving:load_attempt_count",
            "Version load attempts by outcome (AVAILABLE or END on failure).",
            ["model_name", "model_version", "status"],
            registry=self.registry,
        )
        self.warmup_requests = Counter(
            ":tensorflow:serving:model_warmup_request_count",
            "Warm-up requests (assets.extra/tf_serving_warmup_requests) replayed before a version served.",
            ["model_name", "model_version"],
            registry=self.registry,
        )
        self.warmup_latency = Histogram(
            ":tensorflow:serving:model_warmup_latency",
            "Wall time of a version's warm-up in microseconds "
            "(TF Serving's /tensorflow/serving/model_warmup_latency).",
            ["model_path", "status"],
            buckets=_LATENCY_BUCKETS_US,
            registry=self.registry,
        )
        self.rejected = Counter(
            ":tensorflow:serving:rejected_request_count",
            "Requests refused before running: overloaded (queue full) or body too large.",
            ["entrypoint", "reason"],
            registry=self.registry,
        )
        self.request_log_dropped = Counter(
            ":tensorflow:serving:request_log_dropped_count",
            "Sampled request-log records dropped because the log writer fell behind.",
            registry=self.registry,
        )
        self._previous_state: dict[tuple[str, int], str] = {}

    def observe(
        self, model: str, version: int | None, api: str, entrypoint: str, status: str, seconds: float
    ) -> None:
        labels = (model, "" if version is None else str(version), api, entrypoint, status)
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds * 1e6)

    def on_state(self, model: str, version: int, state: str) -> None:
        """ModelManager's state listener."""
        previous = self._previous_state.get((model, version))
        for s in STATES:
            self.model_state.labels(model, str(version), s).set(1 if s == state else 0)
        if previous == LOADING and state in (AVAILABLE, END):
            self.load_attempts.labels(model, str(version), state).inc()
        self._previous_state[(model, version)] = state

    def on_warmup(self, model: str, version: int, path: str, requests: int, seconds: float) -> None:
        """ModelManager's warm-up listener: a version replayed ``requests`` warm-up requests."""
        self.warmup_requests.labels(model, str(version)).inc(requests)
        if requests:  # TF Serving records no latency when a version has no warm-up file
            self.warmup_latency.labels(path, "OK").observe(seconds * 1e6)

    def render(self) -> bytes:
        return generate_latest(self.registry)

"""Prometheus metrics of the service.

One process: an app's own registry (so several apps in one process never collide). Several
worker processes (``textcnn serve --workers N`` sets ``PROMETHEUS_MULTIPROC_DIR``):
prometheus-client's multiprocess mode, where every process writes its counts to files in
that folder and a scrape of any worker adds up all of them, so a counter counts every
request and never goes down between scrapes.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"


class Metrics:
    """Requests by route, model and status, latency by route and model, texts per forward
    pass by model, failed reloads by model."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "textcnn_requests_total",
            "HTTP requests by route, model and status",
            ["route", "model", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "textcnn_request_seconds",
            "request latency by route and model",
            ["route", "model"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.batch_size = Histogram(
            "textcnn_batch_size",
            "texts per forward pass",
            ["model"],
            registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
        )

        self.reload_failures = Counter(
            "textcnn_reload_failures_total",
            "new model versions that failed their checks (the old version went on serving)",
            ["model"],
            registry=self.registry,
        )

    def observe_batch(self, model: str, size: int) -> None:
        self.batch_size.labels(model).observe(size)

    def reload_failed(self, model: str) -> None:
        self.reload_failures.labels(model).inc()

    def exposition(self) -> tuple[bytes, str]:
        """(the Prometheus text of every worker, its content type)."""
        if os.environ.get(MULTIPROCESS_DIR):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

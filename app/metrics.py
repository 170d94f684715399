"""Prometheus metrics of the service, in a registry of their own per app.

Exposed at ``GET /metrics``: requests and latency per route, latency per search stage, cache
hits and misses, errors by code, and per-index sizes and versions. With several uvicorn workers
set ``PROMETHEUS_MULTIPROC_DIR`` to a shared empty folder to aggregate them (prometheus-client's
multiprocess mode); otherwise each worker reports its own counters.
"""

from __future__ import annotations

import contextlib
import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


#: Keys of an answer's ``timings_ms`` that are costs, not stage latencies (issue 16): LLM tokens
#: spent, and the LLM tokens and milliseconds a small answer saved (an estimate).
COST_KEYS = frozenset(
    {"llm_prompt_tokens", "llm_completion_tokens", "llm_saved_tokens", "llm_saved_ms"}
)


class Metrics:
    """The service's collectors; one instance per app so tests can build many apps."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "tandem_http_requests",
            "HTTP requests by route, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "tandem_http_request_seconds",
            "HTTP request latency by route.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.stages = Histogram(
            "tandem_stage_seconds",
            "Latency of each pipeline stage (embed, bm25, rerank, ...).",
            ["route", "stage"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.cache = Counter(
            "tandem_cache_requests",
            "Cache look-ups by kind (search, embedding) and result.",
            ["kind", "result"],
            registry=r,
        )
        self.errors = Counter(
            "tandem_errors",
            "Error responses by error code.",
            ["code"],
            registry=r,
        )
        self.index_chunks = Gauge(
            "tandem_index_chunks",
            "Chunks in the served version of each index.",
            ["index"],
            registry=r,
            multiprocess_mode="max",
        )
        self.index_documents = Gauge(
            "tandem_index_documents",
            "Documents in the served version of each index.",
            ["index"],
            registry=r,
            multiprocess_mode="max",
        )
        self.index_version = Gauge(
            "tandem_index_version",
            "Served version of each index.",
            ["index"],
            registry=r,
            multiprocess_mode="max",
        )
        self.model_waiting = Gauge(
            "tandem_model_calls_waiting",
            "Model calls waiting for a thread.",
            registry=r,
            multiprocess_mode="sum",
        )

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route=route, method=method, status=str(status)).inc()
        self.latency.labels(route=route, method=method).observe(seconds)

    def observe_stages(self, route: str, timings_ms: dict[str, float]) -> None:
        for stage, ms in timings_ms.items():
            if stage != "total" and stage not in COST_KEYS:
                self.stages.labels(route=route, stage=stage).observe(ms / 1000)

    def set_index(self, name: str, version: int, documents: int, chunks: int) -> None:
        self.index_chunks.labels(index=name).set(chunks)
        self.index_documents.labels(index=name).set(documents)
        self.index_version.labels(index=name).set(version)

    def drop_index(self, name: str) -> None:
        for gauge in (self.index_chunks, self.index_documents, self.index_version):
            with contextlib.suppress(KeyError):
                gauge.remove(name)

    def render(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)

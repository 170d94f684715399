"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import os
from typing import Any, Literal

import anyio.to_thread
from litestar import Controller, Response, get
from litestar.openapi import ResponseSpec

from app.schemas import ComponentState, ErrorBody, Live, Ready
from app.security import PUBLIC_OPT
from app.state import ServiceState


def _models(tandem: ServiceState) -> tuple[ComponentState, str]:
    if tandem.embedder is None:
        return "down", f"embedder: {tandem.model_errors.get('embedder', 'not loaded')}"
    parts = [f"embedder {tandem.embedder.name}"]
    if tandem.reranker is not None:
        parts.append(f"reranker {getattr(tandem.reranker, 'name', 'loaded')}")
    elif "reranker" in tandem.model_errors:
        return "down", f"reranker failed: {tandem.model_errors['reranker']}"
    else:
        parts.append("reranking off")
    return "ok", "; ".join(parts)


def _indexes(tandem: ServiceState, names: list[str] | None) -> tuple[ComponentState, str]:
    if names is None:
        return "down", f"data dir {tandem.settings.data_dir} cannot be read"
    loaded = tandem.indexes.loaded
    failed = tandem.indexes.failures
    if not names:
        return "absent", f"no index in {tandem.settings.data_dir} yet"
    serving = ", ".join(f"{n} v{e.version}" for n, e in sorted(loaded.items()))
    if failed:
        detail = "; ".join(f"{n}: {m}" for n, m in sorted(failed.items()))
        return "down", f"serving {serving or 'none'}; failed {detail}"
    return "ok", f"serving {serving}" if serving else f"{len(names)} published, opened on use"


def _list_names(tandem: ServiceState) -> list[str] | None:
    data_dir = tandem.settings.data_dir
    if data_dir.exists() and not os.access(data_dir, os.R_OK | os.X_OK):
        return None
    try:
        return tandem.indexes.names()
    except OSError:
        return None


class HealthController(Controller):
    """Probes for orchestrators; public (no API key)."""

    path = "/health"
    tags = ("health",)
    opt = {PUBLIC_OPT: True}  # noqa: RUF012 - Litestar reads it per class

    @get("/live", operation_id="health_live", summary="Liveness: the process answers.")
    async def live(self) -> Live:
        return Live()

    @get(
        "/ready",
        operation_id="health_ready",
        summary="Readiness: models, indexes and Redis (ok, absent or down).",
        description="200 while Tandem can answer searches (degraded when Redis is down or an "
        "index failed to open); 503 only when it cannot (no embedder, no index usable).",
        responses={503: ResponseSpec(Ready, description="Tandem cannot answer.")},
    )
    async def ready(self, tandem: ServiceState) -> Response[Ready]:
        names = await anyio.to_thread.run_sync(_list_names, tandem)
        models, models_detail = _models(tandem)
        indexes, indexes_detail = _indexes(tandem, names)
        redis = await tandem.cache.status()
        components: dict[str, ComponentState] = {
            "models": models,
            "indexes": indexes,
            "redis": redis,
        }
        details = {
            "models": models_detail,
            "indexes": indexes_detail,
            "redis": {
                "ok": "cache shared in Redis",
                "absent": "in-process cache (no Redis)",
                "down": "Redis unreachable: serving uncached",
            }[redis],
        }
        for name, check in tandem.health_checks.items():
            components[name], details[name] = await check()
        cannot_answer = tandem.embedder is None or (
            indexes == "down" and (names is None or not tandem.indexes.loaded)
        )
        degraded = any(v == "down" for v in components.values())
        status: Literal["ready", "degraded", "unavailable"] = (
            "unavailable" if cannot_answer else "degraded" if degraded else "ready"
        )
        return Response(
            Ready(status=status, components=components, details=details),
            status_code=503 if cannot_answer else 200,
        )


class MetricsController(Controller):
    path = "/metrics"
    tags = ("health",)

    @get(
        "/",
        operation_id="metrics",
        summary="Prometheus metrics (text exposition format).",
        media_type="text/plain; version=0.0.4",
        responses={401: ResponseSpec(ErrorBody, description="No valid API key.")},
    )
    async def metrics(self, tandem: ServiceState) -> Response[Any]:
        return Response(tandem.metrics.render(), media_type=tandem.metrics.content_type)

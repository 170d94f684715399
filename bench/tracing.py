"""What tracing costs a search: p50 with tracing off, on, and without the tracing code, in one run.

Three apps over the same index, in one process, searched in interleaved rounds (so that drift
of the machine hits all three alike) through the whole ASGI stack (Litestar's test client: the
middleware, guard, hooks, handler; no network). The cache is off: every search embeds and
searches.

* ``without``: the app as before tracing and MCP existed: plain ``Metrics``, no ``/mcp`` mount,
  no ``mcp``/``tracing`` lifespan hooks, ``tracing.setup`` not called;
* ``off``: the app as shipped, no endpoint configured (the default);
* ``on``: an SDK ``TracerProvider`` with a ``BatchSpanProcessor`` into an in-memory exporter
  (spans are made and exported on the background thread as with OTLP, minus the network):
  the ASGI middleware, the stage spans and the httpx/redis instrumentation are all active.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

WORDS = [
    "river",
    "storm",
    "granite",
    "violin",
    "harbour",
    "comet",
    "lantern",
    "orchard",
    "glacier",
    "canyon",
    "falcon",
    "meadow",
    "copper",
    "engine",
    "pepper",
    "marble",
    "island",
    "signal",
    "thunder",
    "willow",
    "saddle",
    "beacon",
    "velvet",
    "quartz",
    "ember",
    "prairie",
    "tunnel",
    "summit",
    "anchor",
    "compass",
]


def _corpus(folder: Path, docs: int) -> Path:
    import json
    import random

    rng = random.Random(7)
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "docs.jsonl").open("w", encoding="utf-8") as fh:
        for i in range(docs):
            text = " ".join(rng.choice(WORDS) for _ in range(60)) + "."
            fh.write(json.dumps({"id": f"d{i}", "text": text}) + "\n")
    return folder


def _queries(n: int) -> list[str]:
    import random

    rng = random.Random(11)
    return [" ".join(rng.choice(WORDS) for _ in range(4)) for _ in range(n)]


@contextlib.asynccontextmanager
async def _client(settings: Any, kind: str) -> AsyncIterator[Any]:
    from litestar.testing import AsyncTestClient

    import app.server as server
    from app import tracing

    if kind == "without":
        saved = (server.LIFESPAN_HOOKS, server.MOUNTS, tracing.setup, tracing.enabled)
        server.LIFESPAN_HOOKS = {  # type: ignore[misc]
            k: v for k, v in saved[0].items() if k not in ("mcp", "tracing")
        }
        server.MOUNTS = ()  # type: ignore[misc,assignment]
        tracing.setup = lambda _settings: False  # type: ignore[assignment]
        tracing.enabled = lambda: False  # type: ignore[assignment]
        try:
            app = server.create_app(settings)
        finally:
            server.LIFESPAN_HOOKS, server.MOUNTS = saved[0], saved[1]  # type: ignore[misc]
            tracing.setup, tracing.enabled = saved[2], saved[3]  # type: ignore[assignment]
    else:
        app = server.create_app(settings)
    async with AsyncTestClient(app=app, timeout=60) as client:
        yield client


async def _measure(
    clients: dict[str, Any], name: str, queries: list[str], rounds: int
) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {k: [] for k in clients}
    per_round = max(1, len(queries) // rounds)
    for r in range(rounds):
        part = queries[r * per_round : (r + 1) * per_round]
        for kind, client in clients.items():
            for q in part:
                t = time.perf_counter()
                resp = await client.post(f"/v1/indexes/{name}/search", json={"query": q})
                times[kind].append((time.perf_counter() - t) * 1000)
                assert resp.status_code == 200, resp.text
    return times


async def _run(settings_for: Callable[[str], Any], name: str, n: int, rounds: int) -> Any:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from app import tracing

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    queries = _queries(n)
    async with contextlib.AsyncExitStack() as stack:
        clients = {
            "without": await stack.enter_async_context(_client(settings_for("off"), "without")),
            "off": await stack.enter_async_context(_client(settings_for("off"), "off")),
        }
        tracing.install(provider)
        try:
            clients["on"] = await stack.enter_async_context(_client(settings_for("on"), "on"))
            # the apps built without tracing stay untraced; the process-wide httpx/redis
            # instrumentation is the on app's alone (neither path makes HTTP or Redis calls)
            warm = _queries(20)
            await _measure(clients, name, warm, 1)
            times = await _measure(clients, name, queries, rounds)
        finally:
            tracing.uninstall()
    provider.force_flush()
    spans = len(exporter.get_finished_spans())
    return times, spans


def run_tracing_bench(
    docs: int = 400, requests: int = 300, rounds: int = 10, log: Callable[[str], None] = print
) -> dict[str, Any]:
    from app.settings import Settings
    from indexers.builder import BuildOptions, run_build

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        corpus = _corpus(root / "corpus", docs)
        log(f"building a {docs}-document index ...")
        run_build(root / "data", "bench", [corpus], "build", BuildOptions())

        def settings_for(_kind: str) -> Settings:
            return Settings(  # type: ignore[call-arg]
                _env_file=None,
                data_dir=root / "data",
                api_keys="",
                redis_url=None,
                reranker=None,
                cache_ttl_s=0,
                rate_limit_requests=0,
                reader="none",
                checker="none",
            )

        log(f"{requests} searches per app in {rounds} interleaved rounds ...")
        times, spans = asyncio.run(_run(settings_for, "bench", requests, rounds))
    out: dict[str, Any] = {"docs": docs, "requests": requests, "rounds": rounds, "p50_ms": {}}
    for kind, values in times.items():
        out["p50_ms"][kind] = round(statistics.median(values), 3)
        out.setdefault("p95_ms", {})[kind] = round(statistics.quantiles(values, n=20)[18], 3)
    out["spans_exported"] = spans
    base = out["p50_ms"]["without"]
    out["overhead_pct"] = {
        k: round(100 * (v - base) / base, 1) for k, v in out["p50_ms"].items() if k != "without"
    }
    return out


def format_table(result: dict[str, Any]) -> str:
    lines = [
        f"search through the ASGI stack, {result['requests']} requests per app, "
        f"{result['docs']} documents, cache off",
        f"{'tracing':<10}{'p50 ms':>9}{'p95 ms':>9}{'vs without':>12}",
    ]
    for kind in ("without", "off", "on"):
        pct = result["overhead_pct"].get(kind)
        lines.append(
            f"{kind:<10}{result['p50_ms'][kind]:>9.2f}{result['p95_ms'][kind]:>9.2f}"
            f"{'' if pct is None else f'{pct:+.1f}%':>12}"
        )
    lines.append(f"spans exported with tracing on: {result['spans_exported']}")
    return "\n".join(lines)

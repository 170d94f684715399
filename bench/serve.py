"""Serving speed over HTTP: ``tandem serve`` started on loopback and driven with httpx.

Measured from the client (wall time per request, keep-alive connections):

* ``search``: p50/p95 of searches that miss the cache (each query new), no reranking;
* ``search_rerank``: the same with reranking of ``rerank_candidates`` candidates (only with a
  reranker spec);
* ``cache_hit``: the same request repeated, answered from the cache;
* ``throughput``: requests per second (and p50/p95) with 1, 4 and 16 concurrent clients, each
  phase bounded by a request count and a time limit.

Queries are word windows of the index's own chunks, so they look like real questions and are
all different (no cache or embedding-cache hits outside the ``cache_hit`` phase). The client
shares the machine with the server: on a small box its own CPU use is part of the figures.
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from stores.layout import IndexLayout

TARGETS_MS = {"search": 30.0, "search_rerank": 150.0, "cache_hit": 3.0}
REPO = Path(__file__).resolve().parents[1]


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, round(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary(latencies_ms: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(latencies_ms),
        "p50": round(percentile(latencies_ms, 50), 2),
        "p95": round(percentile(latencies_ms, 95), 2),
        "mean": round(statistics.fmean(latencies_ms), 2) if latencies_ms else float("nan"),
    }


def query_pool(data_dir: str | Path, index: str, seed: int = 0) -> Iterator[str]:
    """Endless distinct queries: 4-9 word windows of the index's chunk texts."""
    layout = IndexLayout(data_dir, index)
    db = layout.version_dir(layout.require_current()) / "chunks.sqlite"
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        texts = [row[0] for row in conn.execute("SELECT text FROM chunks")]
    finally:
        conn.close()
    rng = random.Random(seed)
    seen: set[str] = set()
    while True:
        words = rng.choice(texts).split()
        if len(words) < 4:
            continue
        size = rng.randint(4, min(9, len(words)))
        start = rng.randrange(0, len(words) - size + 1)
        query = " ".join(words[start : start + size])
        if query not in seen:
            seen.add(query)
            yield query


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc), else None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def with_top_n(spec: str, top_n: int) -> str:
    """``spec`` with its ``top_n`` option (candidates the reranker scores) set."""
    from smallmodels.spec import split_options

    base, options = split_options(spec)
    options["top_n"] = str(top_n)
    return base + "@" + ",".join(f"{k}={v}" for k, v in options.items())


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """``tandem serve`` in a subprocess, with its log in a temporary file."""

    def __init__(self, data_dir: str | Path, env: Mapping[str, str], port: int) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the server
            prefix="tandem-serve-", suffix=".log", delete=False
        )
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
        full_env.update({"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", **env})
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "app.cli",
                "--data-dir",
                str(data_dir),
                "serve",
                "--port",
                str(port),
            ],
            cwd=REPO,
            env=full_env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout_s: float) -> float:
        started = time.monotonic()
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tandem serve exited: {self.log_tail()}")
            try:
                if httpx.get(f"{self.base_url}/health/ready", timeout=2).status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            if time.monotonic() - started > timeout_s:
                raise TimeoutError(f"tandem serve not ready in {timeout_s}s: {self.log_tail()}")
            time.sleep(0.2)

    def log_tail(self, chars: int = 2000) -> str:
        return Path(self.log.name).read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


async def _sequential(
    client: httpx.AsyncClient,
    path: str,
    bodies: Iterator[dict[str, Any]],
    count: int,
    max_s: float,
) -> tuple[list[float], list[dict[str, Any]], int]:
    latencies, answers, errors = [], [], 0
    deadline = time.perf_counter() + max_s
    for _ in range(count):
        body = next(bodies)
        t = time.perf_counter()
        r = await client.post(path, json=body)
        latencies.append((time.perf_counter() - t) * 1000)
        if r.status_code == 200:
            answers.append(r.json())
        else:
            errors += 1
        if time.perf_counter() > deadline:
            break
    return latencies, answers, errors


async def _concurrent(
    base_url: str,
    headers: Mapping[str, str],
    path: str,
    bodies: Iterator[dict[str, Any]],
    clients: int,
    count: int,
    max_s: float,
) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    sent = 0
    deadline = time.perf_counter() + max_s
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=base_url, headers=dict(headers), limits=limits, timeout=60
    ) as client:

        async def worker() -> None:
            nonlocal sent, errors
            while sent < count and time.perf_counter() < deadline:
                sent += 1
                t = time.perf_counter()
                r = await client.post(path, json=next(bodies))
                latencies.append((time.perf_counter() - t) * 1000)
                if r.status_code != 200:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        seconds = time.perf_counter() - started
    return {
        "clients": clients,
        "requests": len(latencies),
        "seconds": round(seconds, 2),
        "rps": round(len(latencies) / seconds, 1),
        **summary(latencies),
        "errors": errors,
    }


def _server_stages(answers: Sequence[dict[str, Any]]) -> dict[str, float]:
    stages: dict[str, list[float]] = {}
    for a in answers:
        for k, v in a.get("timings_ms", {}).items():
            stages.setdefault(k, []).append(float(v))
    return {k: round(percentile(v, 50), 2) for k, v in stages.items()}


async def _run(
    base_url: str,
    key: str,
    index: str,
    pool: Iterator[str],
    reranker: bool,
    requests: int,
    concurrency: Sequence[int],
    max_s: float,
    top_k: int,
    log: Callable[[str], None],
    cpu: Callable[[], float | None],
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"}
    cpu_ms: dict[str, float | None] = {}

    async def phase(name: str, bodies: Iterator[dict[str, Any]]) -> list[dict[str, Any]]:
        before = cpu()
        lat, answers, errors = await _sequential(client, path, bodies, requests, max_s)
        after = cpu()
        out["latency_ms"][name] = summary(lat)
        out["server_ms"][name] = _server_stages(answers)
        out["errors"][name] = errors
        cpu_ms[name] = (
            round((after - before) * 1000 / len(lat), 2)
            if before is not None and after is not None and lat
            else None
        )
        return answers

    path = f"/v1/indexes/{index}/search"

    def fresh(rerank: bool) -> Iterator[dict[str, Any]]:
        while True:
            yield {"query": next(pool), "top_k": top_k, "rerank": rerank}

    out: dict[str, Any] = {"latency_ms": {}, "server_ms": {}, "errors": {}}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60) as client:
        await _sequential(client, path, fresh(False), 10, max_s)  # warm-up
        log(f"search, no rerank: {requests} requests")
        answers = await phase("search", fresh(False))
        out["unexpected_cache_hits"] = sum(bool(a["cached"]) for a in answers)
        if reranker:
            await _sequential(client, path, fresh(True), 5, max_s)
            log(f"search with rerank: {requests} requests")
            await phase("search_rerank", fresh(True))
        log(f"cache hits: {requests} requests")
        same = {"query": next(pool), "top_k": top_k, "rerank": False}

        def repeat() -> Iterator[dict[str, Any]]:
            while True:
                yield same

        await _sequential(client, path, repeat(), 3, max_s)
        answers = await phase("cache_hit", repeat())
        out["unexpected_cache_misses"] = sum(not a["cached"] for a in answers)
    out["server_cpu_ms_per_request"] = cpu_ms
    out["throughput"] = []
    for clients in concurrency:
        log(f"throughput with {clients} concurrent clients")
        out["throughput"].append(
            await _concurrent(base_url, headers, path, fresh(False), clients, requests, max_s)
        )
    return out


def run_serve_bench(
    index: str,
    data_dir: str | Path,
    reranker: str | None = None,
    requests: int = 200,
    *,
    concurrency: Sequence[int] = (1, 4, 16),
    max_seconds: float = 30.0,
    rerank_candidates: int = 20,
    top_k: int = 10,
    redis_url: str | None = None,
    port: int | None = None,
    startup_timeout_s: float = 300.0,
    seed: int = 0,
    extra_env: Mapping[str, str] | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Start ``tandem serve`` over ``data_dir`` and measure it; returns the figures.

    Each phase sends at most ``requests`` requests and stops after ``max_seconds``.
    """
    say = log or (lambda _msg: None)
    layout = IndexLayout(data_dir, index)
    manifest = layout.manifest()
    key = secrets.token_urlsafe(16)
    env = {
        "TANDEM_API_KEYS": key,
        "TANDEM_RATE_LIMIT_REQUESTS": "0",
        "TANDEM_LOG_LEVEL": "WARNING",
    }
    if reranker:
        env["TANDEM_RERANKER"] = with_top_n(reranker, rerank_candidates)
    if redis_url:
        env["TANDEM_REDIS_URL"] = redis_url
    env.update(extra_env or {})
    server = ServerProcess(data_dir, env, port or _free_port())
    try:
        say(f"starting tandem serve on {server.base_url}")
        startup_s = server.wait_ready(startup_timeout_s)
        figures = asyncio.run(
            _run(
                server.base_url,
                key,
                index,
                query_pool(data_dir, index, seed),
                bool(reranker),
                requests,
                concurrency,
                max_seconds,
                top_k,
                say,
                lambda: process_cpu_seconds(server.proc.pid),
            )
        )
    finally:
        server.stop()
    latency = figures["latency_ms"]
    return {
        "index": index,
        "version": manifest["version"],
        "chunks": manifest["counts"]["chunks"],
        "reranker": reranker,
        "rerank_candidates": rerank_candidates if reranker else None,
        "cache": "redis" if redis_url else "memory",
        "top_k": top_k,
        "cpus": os.cpu_count(),
        "startup_s": round(startup_s, 1),
        **figures,
        "targets_ms": TARGETS_MS,
        "meets_targets": {k: latency[k]["p50"] < v for k, v in TARGETS_MS.items() if k in latency},
    }


def format_table(result: dict[str, Any]) -> str:
    lines = [
        f"{result['index']} v{result['version']}: {result['chunks']} chunks, cache "
        f"{result['cache']}, reranker {result['reranker'] or 'none'}, {result['cpus']} CPUs, "
        f"startup {result['startup_s']}s",
        f"{'phase':<16}{'n':>6}{'p50 ms':>9}{'p95 ms':>9}{'target':>9}",
    ]
    for phase, s in result["latency_ms"].items():
        target = result["targets_ms"].get(phase)
        lines.append(
            f"{phase:<16}{s['n']:>6}{s['p50']:>9.2f}{s['p95']:>9.2f}"
            f"{('< ' + str(target)) if target else '':>9}"
        )
    lines.append(
        f"{'clients':<10}{'requests':>9}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'errors':>8}"
    )
    for t in result["throughput"]:
        lines.append(
            f"{t['clients']:<10}{t['requests']:>9}{t['rps']:>8.1f}{t['p50']:>9.2f}"
            f"{t['p95']:>9.2f}{t['errors']:>8}"
        )
    cpu = result.get("server_cpu_ms_per_request", {})
    lines.append("server CPU ms per request: " + ", ".join(f"{k} {v}" for k, v in cpu.items()))
    stages = result["server_ms"].get("search", {})
    lines.append(
        "server stages (p50 ms, search): " + ", ".join(f"{k} {v}" for k, v in stages.items())
    )
    return "\n".join(lines)

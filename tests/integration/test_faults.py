"""Faults under load (short runs of ``bench/load.py``'s :func:`~bench.load.run_faults` kinds;
the full ones are in BENCHMARKS.md), each against a live ``tandem serve`` on 127.0.0.1 at a
steady rate: Redis killed and brought back; a ``tandem worker`` SIGKILLed in the middle of a
build; the LLM endpoint hanging, then erroring, then back. Every request gets an answer within
its budget, none hangs, and what failed recovers."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from bench.load import (
    ASK_TIMEOUT_S,
    AUTH,
    KEY,
    big_corpus,
    build,
    run_llm_faults,
    run_redis_faults,
    run_worker_faults,
    serve,
    write_docs,
)


def answered(p: dict, budget_s: float) -> None:
    """No request hung or went past its budget; 200s, or a clean 503 where nothing could."""
    assert p["hung"] == 0 and p["requests"] > 0, p
    assert all(code == "200" or code.startswith("503:") for code in p["codes"]), p
    assert p["codes"].get("200", 0) >= p["requests"] * 0.9, p
    assert p["p99_ms"] < budget_s * 1000, p


@pytest.mark.slow
def test_redis_killed_and_back_under_load(tmp_path: Path) -> None:
    phases = {p["phase"]: p for p in run_redis_faults(tmp_path, rate=8, phase_s=4, budget_s=30)}
    for name in ("redis up", "redis killed", "redis back"):
        answered(phases[name], 30)
        assert phases[name]["requests"] == 32
    assert phases["redis killed"]["redis"] == "down" and phases["redis back"]["redis"] == "ok"
    assert phases["cache after return"]["cached"] is True
    assert phases["server"]["alive"]


@pytest.mark.slow
def test_a_worker_killed_mid_build_under_load(tmp_path: Path) -> None:
    out = run_worker_faults(tmp_path, rate=8, phase_s=4, budget_s=30, docs=1500)
    phases = {p["phase"]: p for p in out}
    for name in ("worker building", "worker killed"):
        p = phases[name]
        answered(p, 30)
        assert set(p["codes"]) == {"200"}, p
        assert set(p["versions"]) == {"1"}, p  # the previous version served throughout
    job = phases["worker job"]
    assert job["state"] == "failed" and job["error"] == "worker_lost", job
    assert job["version_before"] == job["version_after"] == 1, job  # nothing was published
    # the index is not left busy: the next job is accepted (then cancelled: no worker is left)
    assert job["next_job_status"] == 202 and job["next_job_cancelled"] == "cancelled", job
    assert job["server_alive"]


@pytest.mark.slow
def test_llm_hangs_then_errors_under_load(tmp_path: Path) -> None:
    phases = {p["phase"]: p for p in run_llm_faults(tmp_path, rate=6, phase_s=5)}
    for name in ("llm ok", "llm hangs", "llm errors", "llm back"):
        answered(phases[name], ASK_TIMEOUT_S + 2)
    ok, hangs, errors, back = (phases[n] for n in ("llm ok", "llm hangs", "llm errors", "llm back"))
    assert ok["reasons"] and all(r.startswith("llm:") for r in ok["reasons"]), ok
    # hung calls were given up (llm_timeout), then the breaker stopped calling (circuit_open)
    assert hangs["reasons"].get("small:llm_timeout", 0) >= 1, hangs
    assert hangs["reasons"].get("small:circuit_open", 0) >= 1, hangs
    assert hangs["llm_calls"] < sum(hangs["reasons"].values()), hangs
    assert set(errors["reasons"]) <= {"small:llm_error", "small:circuit_open"}, errors
    seen = {**hangs["llm_states"], **errors["llm_states"]}
    assert "down:circuit open" in seen, seen
    # back: the breaker probed, closed, and asks are served by the LLM again
    assert back["served_by"].get("llm", 0) >= 1 and "ok:circuit closed" in back["llm_states"]
    assert phases["llm server"]["alive"]


@pytest.mark.slow
def test_cancelling_a_running_build_answers_at_once_and_lands_within_a_batch(
    tmp_path: Path,
) -> None:
    sources, data = tmp_path / "sources", tmp_path / "data"
    write_docs(sources / "corpus")
    big_corpus(sources / "big", 1500)
    build(data, "c", sources / "corpus")
    env = {
        "TANDEM_API_KEYS": KEY,
        "TANDEM_JOBS_BACKEND": "local",
        "TANDEM_SOURCES_ROOT": str(sources),
    }
    with serve(data, env, tmp_path / "serve.log") as server:
        client = httpx.Client(base_url=server.base, headers=AUTH, timeout=30)
        job = client.post("/v1/indexes/c/jobs", json={"action": "add", "sources": ["big"]})
        job_id = job.json()["job_id"]
        deadline = time.monotonic() + 120
        while True:  # embedding: the build is in the middle of its model batches
            state = client.get(f"/v1/jobs/{job_id}").json()
            if state["state"] == "running" and state["progress"]["chunks_done"] > 0:
                break
            assert state["state"] != "done" and time.monotonic() < deadline, state
            time.sleep(0.05)
        asked = time.monotonic()
        r = client.delete(f"/v1/jobs/{job_id}")
        assert r.status_code == 200 and r.json()["state"] == "cancelling", r.text
        while (state := client.get(f"/v1/jobs/{job_id}").json())["state"] == "cancelling":
            time.sleep(0.05)
        landed = time.monotonic() - asked
        assert state["state"] == "cancelled" and state["error"]["code"] == "cancelled", state
        # one model batch (64 texts) at most: about a second on an idle machine; it was a
        # slice of 512 (40-54 s on the busy 2 cores) before the builder checked per batch
        assert landed < 15, landed
        search = client.post("/v1/indexes/c/search", json={"query": "espresso", "top_k": 1})
        assert search.json()["version"] == 1  # nothing was published

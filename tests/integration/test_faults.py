"""Faults under load: Redis killed and brought back while requests arrive at a steady rate (a
short run of ``bench/load.py``'s :func:`~bench.load.run_faults`; the full one is in
BENCHMARKS.md). Every request gets an answer within its budget, none hangs, and the cache works
again once Redis is back."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.load import run_faults


@pytest.mark.slow
def test_redis_killed_and_back_under_load(tmp_path: Path) -> None:
    out = run_faults(tmp_path, rate=8, phase_s=4, budget_s=30)
    phases = {p["phase"]: p for p in out["phases"]}
    for name in ("redis up", "redis killed", "redis back"):
        p = phases[name]
        assert p["hung"] == 0 and p["requests"] == 32, p
        assert all(code == "200" or code.startswith("503:") for code in p["codes"]), p
        assert p["codes"].get("200", 0) >= p["requests"] * 0.9, p
    assert phases["redis killed"]["redis"] == "down" and phases["redis back"]["redis"] == "ok"
    assert phases["cache after return"]["cached"] is True
    assert phases["server"]["alive"]

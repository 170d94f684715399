"""Zero stale results: searches and asks run while documents are edited, removed and added
through the jobs API; every response is checked against the index version it reports (a short
run of ``bench/load.py``'s :func:`~bench.load.run_stale`; the full one is in BENCHMARKS.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.load import run_stale


@pytest.mark.slow
def test_no_response_cites_a_removed_or_replaced_chunk(tmp_path: Path) -> None:
    out = run_stale(tmp_path, edits=3, rate=15)
    assert out["stale"] == 0, out["problems"]
    assert out["publications"] >= 3  # an edit, a removal and an addition were each published
    # enough responses land between publications to check (the count follows build speed)
    assert out["checked"] >= 10 and out["unchecked"] <= out["checked"] // 10
    assert out["load"]["hung"] == 0 and set(out["load"]["codes"]) == {"200"}

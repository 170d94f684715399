"""Index builds on Ray Data against the local build: chunks/s by Ray workers, the per-chunk
overhead of the Ray path at equal cores, and the scaling efficiency (issue 18).

Each configuration builds two generated corpora (``docs`` and ``3 * docs`` files of
:func:`bench.ingest.make_corpus`, no PDFs) into fresh data dirs: the local build, then the
Ray build on a local Ray instance of ``w`` CPUs with ``w`` workers, for each ``w``. Wall
time includes Ray's fixed costs (instance start, worker processes, one model load per actor);
the **marginal** rate, ``(chunks_large - chunks_small) / (seconds_large - seconds_small)``,
leaves the fixed costs out and is what scales with the corpus:

* overhead at equal cores: ``local_marginal_rate / ray_marginal_rate(w = cores) - 1``
  (target < 15%);
* scaling efficiency: ``rate(w) / (w * rate(1))`` on the marginal rates (goal >= 0.8).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.ingest import make_corpus
from indexers.builder import run_build


def _one(build: Callable[[Path, Path], Any], corpus: Path) -> dict[str, Any]:
    data = Path(tempfile.mkdtemp(prefix="tandem-bench-ray-"))
    try:
        t = time.perf_counter()
        result = build(data, corpus)
        seconds = time.perf_counter() - t
    finally:
        shutil.rmtree(data, ignore_errors=True)
    return {
        "chunks": result.chunks,
        "seconds": round(seconds, 2),
        "chunks_per_s": round(result.chunks / seconds, 1),
        "timings": {k: round(v, 2) for k, v in result.timings.items()},
    }


def _marginal(small: dict[str, Any], large: dict[str, Any]) -> float:
    dc = large["chunks"] - small["chunks"]
    ds = max(1e-9, large["seconds"] - small["seconds"])
    return round(dc / ds, 1)


def run_ray_bench(
    docs: int = 150,
    workers: Sequence[int] = (1, 2),
    log: Callable[[str], None] = lambda m: None,
) -> dict[str, Any]:
    """The figures of the module docstring, as a dict."""
    import ray

    from indexers.ray_build import RayOptions, run_ray_build

    root = Path(tempfile.mkdtemp(prefix="tandem-bench-ray-corpus-"))
    try:
        corpora = {"small": root / "small", "large": root / "large"}
        make_corpus(corpora["small"], docs=docs, pdfs=0)
        make_corpus(corpora["large"], docs=3 * docs, pdfs=0)
        out: dict[str, Any] = {"cores": os.cpu_count(), "docs": [docs, 3 * docs], "runs": {}}
        run_build(root / "warm", "warm", [corpora["small"]])  # model export and caches, once
        local: dict[str, Any] = {
            size: _one(lambda d, c: run_build(d, "bench", [c]), corpus)
            for size, corpus in corpora.items()
        }
        local["marginal_chunks_per_s"] = _marginal(local["small"], local["large"])
        out["runs"]["local"] = local
        log(f"local: {local}")
        for w in workers:
            ray.init(num_cpus=w, include_dashboard=False, log_to_driver=False)
            try:
                ropts = RayOptions(workers=w)

                def build(d: Path, c: Path, ropts: RayOptions = ropts) -> Any:
                    return run_ray_build(d, "bench", [c], ray_options=ropts)

                runs: dict[str, Any] = {size: _one(build, c) for size, c in corpora.items()}
            finally:
                ray.shutdown()
            runs["marginal_chunks_per_s"] = _marginal(runs["small"], runs["large"])
            out["runs"][f"ray_{w}"] = runs
            log(f"ray {w} workers: {runs}")
        base = out["runs"].get("ray_1", {}).get("marginal_chunks_per_s")
        out["scaling_efficiency"] = {
            str(w): round(out["runs"][f"ray_{w}"]["marginal_chunks_per_s"] / (w * base), 3)
            for w in workers
            if base
        }
        equal = f"ray_{max(workers)}"
        out["overhead_at_equal_cores_pct"] = {
            "marginal": round(
                100
                * (
                    local["marginal_chunks_per_s"] / out["runs"][equal]["marginal_chunks_per_s"] - 1
                ),
                1,
            ),
            "wall_large": round(
                100 * (out["runs"][equal]["large"]["seconds"] / local["large"]["seconds"] - 1), 1
            ),
        }
        return out
    finally:
        shutil.rmtree(root, ignore_errors=True)


def format_table(res: dict[str, Any]) -> str:
    lines = [f"{'build':<10}{'chunks':>8}{'s':>8}{'chunks/s':>10}{'marginal/s':>12}"]
    for name, r in res["runs"].items():
        big = r["large"]
        lines.append(
            f"{name:<10}{big['chunks']:>8}{big['seconds']:>8}{big['chunks_per_s']:>10}"
            f"{r['marginal_chunks_per_s']:>12}"
        )
    lines.append(f"scaling efficiency: {res['scaling_efficiency']}")
    lines.append(f"overhead at equal cores (%): {res['overhead_at_equal_cores_pct']}")
    return "\n".join(lines)

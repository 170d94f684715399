"""PNG charts of the benchmark results (matplotlib, no display needed).

Each function takes the JSON-able results ``bench.run`` collects and writes one PNG, returning
its path, or ``None`` when the results hold nothing to draw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def quality_chart(
    sets: Sequence[Mapping[str, Any]], path: Path, metric: str = "ndcg@10"
) -> Path | None:
    """Grouped bars: ``metric`` of every method (rows of ``set['methods']``) in each set."""
    if not sets:
        return None
    plt = _plt()
    methods: list[str] = []
    for s in sets:
        methods.extend(m for m in s["methods"] if m not in methods)
    width = 0.8 / max(1, len(methods))
    fig, ax = plt.subplots(figsize=(max(7.0, 1.6 * len(sets) * len(methods) / 3), 4.2))
    for i, method in enumerate(methods):
        xs = [j + i * width for j in range(len(sets))]
        ys = [s["methods"].get(method, {}).get(metric, 0.0) for s in sets]
        bars = ax.bar(xs, ys, width, label=method)
        ax.bar_label(bars, fmt="%.2f", fontsize=6, padding=1)
    ax.set_xticks([j + width * (len(methods) - 1) / 2 for j in range(len(sets))])
    ax.set_xticklabels([s["set"] for s in sets])
    ax.set_ylabel(metric)
    ax.set_ylim(0, 1)
    ax.set_title(f"Retrieval quality ({metric}) per method and set")
    ax.legend(fontsize=7, ncol=2, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def latency_chart(points: Sequence[Mapping[str, Any]], path: Path) -> Path | None:
    """Search p50 and p95 (ms, one query at a time) against index size, one line per kind."""
    ok = [p for p in points if "error" not in p]
    if not ok:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for kind in dict.fromkeys(p["kind"] for p in ok):
        rows = sorted((p for p in ok if p["kind"] == kind), key=lambda p: p["n"])
        xs = [p["n"] for p in rows]
        (line,) = ax.plot(xs, [p["search_ms"]["p50"] for p in rows], "o-", label=f"{kind} p50")
        ax.plot(
            xs,
            [p["search_ms"]["p95"] for p in rows],
            "s--",
            color=line.get_color(),
            label=f"{kind} p95",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.axhline(50, color="grey", lw=0.8, ls=":", label="50 ms target (p95 at 1M)")
    ax.set_xlabel("vectors in the index")
    ax.set_ylabel("search latency, ms")
    ax.set_title("FAISS search latency against index size")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def throughput_chart(series: Mapping[str, Sequence[Mapping[str, Any]]], path: Path) -> Path | None:
    """Requests/s against concurrent clients, one line per system (``clients``, ``rps`` rows)."""
    series = {k: v for k, v in series.items() if v}
    if not series:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, rows in series.items():
        rows = sorted(rows, key=lambda r: r["clients"])
        ax.plot([r["clients"] for r in rows], [r["rps"] for r in rows], "o-", label=name)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("concurrent clients")
    ax.set_ylabel("searches per second")
    ax.set_title("Search throughput against concurrency")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def speed_chart(rates: Mapping[str, float], path: Path, unit: str = "texts/s") -> Path | None:
    """Bars of ``name -> rate`` (encoder backends, for example)."""
    if not rates:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    bars = ax.bar(list(rates), list(rates.values()), color="#4c72b0")
    ax.bar_label(bars, fmt="%.0f", fontsize=8)
    ax.set_ylabel(unit)
    ax.set_title(f"Encoding speed ({unit}, same texts, same run)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

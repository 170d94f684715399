"""bench.run: the page between markers, set subsets, rendering and charts from stored results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.run import END, START, TARGETS, Sizes, draw_charts, render, subset_file
from bench.run import write_between_markers as write

SQUAD = {
    "version": "1.1",
    "data": [
        {
            "title": f"A{a}",
            "paragraphs": [
                {"context": f"Paragraph {a}.{p}.", "qas": [{"id": f"{a}{p}", "question": "q?"}]}
                for p in range(3)
            ],
        }
        for a in range(4)
    ],
}


def test_page_is_created_with_markers(tmp_path: Path) -> None:
    page = tmp_path / "B.md"
    write(page, "| table |")
    text = page.read_text()
    assert text.startswith("# Benchmarks") and f"{START}\n| table |\n{END}" in text


def test_only_the_text_between_markers_changes(tmp_path: Path) -> None:
    page = tmp_path / "B.md"
    page.write_text(f"# Mine\n\nhand-written intro\n\n{START}\nold\n{END}\n\n## Notes\nkeep me\n")
    write(page, "new figures")
    text = page.read_text()
    assert "hand-written intro" in text and "## Notes\nkeep me" in text
    assert "old" not in text and text.count(START) == text.count(END) == 1
    assert text.index("hand-written") < text.index("new figures") < text.index("keep me")


def test_markers_are_appended_to_a_page_without_them(tmp_path: Path) -> None:
    page = tmp_path / "B.md"
    page.write_text("# Notes only\n")
    write(page, "figures")
    assert page.read_text().startswith("# Notes only") and page.read_text().rstrip().endswith(END)


def test_subset_keeps_the_first_paragraphs(tmp_path: Path) -> None:
    src = tmp_path / "in" / "set.json"
    src.parent.mkdir()
    src.write_text(json.dumps(SQUAD))
    (tmp_path / "out").mkdir()
    out = json.loads(subset_file(src, 5, tmp_path / "out").read_text())
    contexts = [p["context"] for a in out["data"] for p in a["paragraphs"]]
    assert contexts == [
        "Paragraph 0.0.",
        "Paragraph 0.1.",
        "Paragraph 0.2.",
        "Paragraph 1.0.",
        "Paragraph 1.1.",
    ]
    assert subset_file(src, None, tmp_path / "out") == src


def test_quick_sizes_are_smaller() -> None:
    quick, full = Sizes(True, None, None), Sizes(False, None, None)
    assert quick.paragraphs == 150 and full.paragraphs is None
    assert quick.max_questions < full.max_questions and quick.serve_requests < full.serve_requests


def _set(name: str, bm25: float, rerank: float) -> dict[str, Any]:
    methods = {
        m: {"ndcg@10": v, "recall@10": v, "recall@100": 0.9, "mrr@10": v}
        for m, v in (("bm25", bm25), ("dense", 0.6), ("hybrid", 0.65), ("hybrid+rerank", rerank))
    }
    build = {
        "chunks": 10,
        "seconds": 2.0,
        "chunks_per_s": 5.0,
        "raw_encode_per_s": 2.0,
        "ratio": 2.5,
        "pipeline": {"overhead": 0.05},
    }
    return {
        "set": name,
        "questions": 5,
        "documents": 10,
        "methods": methods,
        "ms_per_query": {"bm25": 1.0},
        "build": build,
    }


def _record(step: str, figures: dict[str, Any]) -> dict[str, Any]:
    return {
        "step": step,
        "mode": "quick",
        "command": f"python -m bench.run --only {step}",
        "make": "make bench QUICK=1",
        "date": "2026-01-01T00:00:00+00:00",
        "seconds": 1.0,
        "machine": {"cpu": "test cpu", "cores": 2, "libraries": {"faiss": "1"}},
        "figures": figures,
    }


@pytest.fixture
def records() -> dict[str, dict[str, Any]]:
    sets = [_set("squad.json", 0.5, 0.7), _set("nyt.json", 0.6, 0.55)]
    point = {
        "n": 1_000_000,
        "kind": "ivfpq",
        "build_s": 10.0,
        "index_rss_mb": 400.0,
        "rss_mb": 2000.0,
        "search_ms": {"p50": 2.0, "p95": 60.0},
        "recall@10": 0.985,
        "params": {"kind": "ivfpq", "nlist": 2048},
    }
    throughput = [{"clients": c, "rps": 10.0 * c, "p50": 5.0, "p95": 9.0} for c in (1, 4)]
    return {
        "retrieval": _record("retrieval", {"sets": sets, "mean": {}, "reranker": "rr"}),
        "scale": _record(
            "scale", {"points": [point], "threads": 2, "device": "cpu", "vectors": "synthetic"}
        ),
        "serve": _record(
            "serve",
            {
                "set": "squad.json",
                "services": {
                    "torch": {
                        "index": "i",
                        "chunks": 10,
                        "throughput": throughput,
                        "latency_ms": {},
                    }
                },
                "llamaindex": [{"clients": 1, "rps": 4.0, "p50": 1, "p95": 2}],
                "rps_ratio": {"torch": {"1": 2.5}},
            },
        ),
        "faithfulness": _record("faithfulness", {"error": "RuntimeError: no checker"}),
    }


def test_render_shows_commands_targets_and_failures(records: dict[str, dict[str, Any]]) -> None:
    text = render(records)
    assert "`python -m bench.run --only retrieval`" in text and "make bench QUICK=1" in text
    assert "hybrid+rerank − BM25 nDCG@10, squad.json | +0.2000 | > 0 | met" in text
    assert "hybrid+rerank − BM25 nDCG@10, nyt.json | -0.0500 | > 0 | not met" in text
    assert "search p95, ivfpq at 1,000,000 | 60.0 ms | < 50 ms | not met" in text
    assert "service req/s / llama-index, torch embedder, 1 clients | 2.50x | (reference)" in text
    assert "**This step failed:** `RuntimeError: no checker`" in text
    assert set(TARGETS) >= {"build_vs_raw", "onnx_ndcg_loss", "serve_vs_llamaindex"}


def test_charts_are_png_files(records: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    made = draw_charts(records, tmp_path)
    assert {p.name for p in made} == {"quality.png", "latency_vs_size.png", "throughput.png"}
    for p in made:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000
    assert draw_charts({}, tmp_path / "none") == []

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.errors import UsageError
from indexers.builder import BuildOptions, run_build
from retrievers.fusion import rrf
from retrievers.retriever import Retriever


def test_rrf_orders_by_summed_reciprocal_ranks() -> None:
    fused = rrf([np.array([1, 2, 3]), np.array([3, 1, -1])], k=60)
    assert [r for r, _ in fused] == [1, 3, 2]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)


@pytest.fixture
def retriever(corpus: Path, data_dir: Path) -> Retriever:
    run_build(data_dir, "t", [corpus])
    return Retriever(data_dir, "t")


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_each_mode_finds_the_right_document(retriever: Retriever, mode: str) -> None:
    res = retriever.search("When did Apollo 11 land on the Moon?", top_k=3, mode=mode)
    assert res.hits[0].doc_id == "space/moon.md"
    assert [h.rank for h in res.hits] == list(range(1, len(res.hits) + 1))
    assert res.timings_ms["total"] > 0
    assert ("dense" in res.timings_ms) == (mode != "bm25")


def test_filters_equality_and_membership(retriever: Retriever) -> None:
    res = retriever.search("discovery", top_k=10, filters={"topic": "science"})
    assert {h.doc_id for h in res.hits} == {"briefs.jsonl#L2"}
    res = retriever.search("discovery", top_k=10, filters={"topic": ["science", "food"]})
    assert {h.doc_id for h in res.hits} == {"briefs.jsonl#L1", "briefs.jsonl#L2"}
    res = retriever.search("discovery", top_k=10, filters={"year": 1928}, mode="dense")
    assert [h.doc_id for h in res.hits] == ["briefs.jsonl#L2"]
    res = retriever.search("waggle dance", filters={"source": "bees.txt"}, mode="bm25")
    assert [h.source for h in res.hits] == ["bees.txt"]
    assert retriever.search("bees", filters={"topic": "nothing"}).hits == []
    with pytest.raises(UsageError):
        retriever.search("bees", filters={"bad key!": "x"})


def test_bad_mode_and_top_k(retriever: Retriever) -> None:
    with pytest.raises(UsageError):
        retriever.search("x", mode="fuzzy")
    with pytest.raises(UsageError):
        retriever.search("x", top_k=0)


def test_refresh_picks_up_a_new_version(retriever: Retriever, corpus: Path, data_dir: Path) -> None:
    (corpus / "nile.txt").write_text("The Nile is about 6,650 kilometres long and flows north.")
    run_build(data_dir, "t", [corpus])
    assert retriever.version == 1
    assert retriever.refresh() is True
    assert retriever.version == 2
    assert retriever.search("How long is the Nile?", top_k=1).hits[0].doc_id == "nile.txt"


def test_faiss_and_qdrant_agree(corpus: Path, data_dir: Path) -> None:
    run_build(data_dir, "f", [corpus])
    run_build(data_dir, "q", [corpus], options=BuildOptions(store="qdrant"))
    f, q = Retriever(data_dir, "f"), Retriever(data_dir, "q")
    assert q.snapshot.manifest["store"]["backend"] == "qdrant"
    for query in ["moon landing", "tea in Europe", "volcano eruption", "printing"]:
        for mode in ("dense", "hybrid"):
            a = [h.chunk_id for h in f.search(query, top_k=10, mode=mode).hits]
            b = [h.chunk_id for h in q.search(query, top_k=10, mode=mode).hits]
            assert a == b
    a = [h.chunk_id for h in f.search("discovery", filters={"topic": "science"}).hits]
    b = [h.chunk_id for h in q.search("discovery", filters={"topic": "science"}).hits]
    assert a == b
    q.close()

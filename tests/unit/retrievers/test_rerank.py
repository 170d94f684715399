"""The rerank stage: fusion with the first-stage rank, top-N, and the Retriever wiring."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from retrievers.errors import RerankerUnavailable
from retrievers.rerank import fuse, rerank_order
from retrievers.retriever import Retriever
from smallmodels.reranker import CrossEncoderReranker, content_words


class WordOverlapReranker:
    """A transparent reranker for the fusion arithmetic: shared content words with the query."""

    name = "overlap"

    def __init__(self, top_n: int | None = None, fusion_weight: float = 0.0) -> None:
        self.top_n = top_n
        self.fusion_weight = fusion_weight
        self.calls: list[int] = []

    def score(self, query: str, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(len(texts))
        words = content_words(query)
        return np.array([len(words & content_words(t)) for t in texts], dtype=np.float32)


def test_fuse_standardises_and_adds_the_rank_prior() -> None:
    logits = np.array([0.0, 1.0, 5.0])
    assert list(np.argsort(-fuse(logits, 0.0))) == [2, 1, 0]
    assert fuse(logits * 100, 0.0) == pytest.approx(fuse(logits, 0.0))  # scale-free
    assert list(np.argsort(-fuse(logits, 50.0), kind="stable")) == [0, 1, 2]
    assert fuse(np.array([3.0, 3.0]), 0.0).tolist() == [0.0, 0.0]


def test_rerank_order_scores_only_the_top_n_and_keeps_the_tail() -> None:
    texts = ["cats purr", "dogs bark", "moon landing apollo", "apollo moon", "bread", "tea"]
    rr = WordOverlapReranker(top_n=4)
    order = rerank_order(rr, "apollo moon landing", texts)
    assert rr.calls == [4]  # one batch, top N only
    assert [i for i, _ in order] == [2, 3, 0, 1, 4, 5]
    scores = [s for _, s in order]
    assert scores == sorted(scores, reverse=True)
    # A heavy first-stage prior keeps the first-stage order.
    assert [i for i, _ in rerank_order(rr, "apollo moon", texts, fusion_weight=100.0)] == list(
        range(6)
    )
    assert rerank_order(rr, "q", []) == []


@pytest.fixture(scope="module")
def untrained_reranker(tmp_path_factory: pytest.TempPathFactory) -> CrossEncoderReranker:
    """A real CrossEncoder folder: MiniLM with a fresh (seeded) 1-logit head."""
    import torch

    from training.reranker import fresh_model, save_cross_encoder

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("ce")
    model, tokenizer = fresh_model(None)
    save_cross_encoder(model, tokenizer, root / "ce", root / "hf", 64)
    return CrossEncoderReranker(str(root / "ce"), top_n=3)


def test_retriever_reranks_the_head_with_a_timing(
    fixture_index: Any, untrained_reranker: CrossEncoderReranker
) -> None:
    plain = Retriever(fixture_index.data_dir, fixture_index.name)
    ranked = Retriever(fixture_index.data_dir, fixture_index.name, reranker=untrained_reranker)
    query = "How do volcanoes erupt and what is lava?"
    base = plain.search(query, top_k=6)
    res = ranked.search(query, top_k=6)
    assert "rerank" in res.timings_ms and res.timings_ms["rerank"] > 0
    assert "rerank" not in base.timings_ms
    head = {h.chunk_id for h in base.hits[:3]}
    assert {h.chunk_id for h in res.hits[:3]} == head  # top N permuted, nothing new
    assert [h.chunk_id for h in res.hits[3:]] == [h.chunk_id for h in base.hits[3:]]
    assert [h.score for h in res.hits] == sorted((h.score for h in res.hits), reverse=True)
    logits = untrained_reranker.score(query, [h.text for h in base.hits[:3]])
    assert res.hits[0].chunk_id == base.hits[int(np.argmax(fuse(logits, 0.0)))].chunk_id
    off = ranked.search(query, top_k=6, rerank=False)
    assert "rerank" not in off.timings_ms
    assert [h.chunk_id for h in off.hits] == [h.chunk_id for h in base.hits]
    plain.close()
    ranked.close()


def test_rerank_without_a_reranker_is_refused(fixture_index: Any) -> None:
    r = Retriever(fixture_index.data_dir, fixture_index.name)
    with pytest.raises(RerankerUnavailable):
        r.search("lava", rerank=True)
    assert "rerank" not in r.search("lava").timings_ms
    r.close()


def test_bench_rerank_method_adds_hybrid_rerank(
    fixture_index: Any, untrained_reranker: CrossEncoderReranker, tmp_path: Path
) -> None:
    from bench.rerank import MemoReranker, make_searcher

    memo = MemoReranker(untrained_reranker)
    memo.fusion_weight = 0.5
    fn = make_searcher(memo, "hybrid+rerank")
    r = Retriever(fixture_index.data_dir, fixture_index.name, candidates=100)
    out = fn(r, ["lava and magma", "sourdough starter"])
    assert len(out) == 2 and all("rerank" in x.timings_ms for x in out)
    assert r.reranker is None  # restored
    assert memo.stats["hybrid+rerank"]["pairs"] == 6
    again = make_searcher(memo.with_fusion(0.0), "hybrid+ce")(r, ["lava and magma"])
    assert memo.stats["hybrid+ce"]["pairs"] == 0  # memoised
    assert {h.chunk_id for h in again[0].hits[:3]} == {h.chunk_id for h in out[0].hits[:3]}
    r.close()

"""``hybrid+rerank`` for ``tandem bench retrieval --reranker SPEC``.

:func:`rerank_method` loads the reranker and returns the extra benchmark methods:

* ``hybrid+rerank``: hybrid candidates, the top N (the reranker's ``top_n``) scored by the
  cross-encoder and fused with the first-stage rank (its ``fusion`` weight), as served;
* ``hybrid+ce``: the same top N in the cross-encoder's order alone (fusion weight 0), to show
  what the fusion adds. It reuses the scores of ``hybrid+rerank`` (memoised per query and
  passage), so its ms/query is not a cost: ``hybrid+rerank``'s is.

The reranker's throughput (pairs/s over the real model calls) is written to stderr and kept in
``reranker.stats`` for the caller.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from smallmodels.reranker import CrossEncoderReranker, load_reranker

SEARCH_BATCH = 64


class MemoReranker:
    """Scores each (query, passage) pair once and remembers it; settings can be overridden."""

    def __init__(self, inner: CrossEncoderReranker) -> None:
        self.inner = inner
        self.name = inner.name
        self.top_n: int | None = inner.top_n
        self.fusion_weight: float = inner.fusion_weight
        self._memo: dict[tuple[str, str], float] = {}
        self.stats: dict[str, Any] = {}

    def score(self, query: str, texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if (query, t) not in self._memo]
        if missing:
            for text, logit in zip(missing, self.inner.score(query, missing), strict=True):
                self._memo[(query, text)] = float(logit)
        return np.array([self._memo[(query, t)] for t in texts], dtype=np.float32)

    def with_fusion(self, weight: float) -> MemoReranker:
        """A view sharing this memo with another fusion weight."""
        view = MemoReranker.__new__(MemoReranker)
        view.__dict__.update(self.__dict__)
        view.fusion_weight = weight
        return view


def make_searcher(reranker: MemoReranker, label: str) -> Callable[[Any, list[str]], list[Any]]:
    def run(retriever: Any, texts: list[str]) -> list[Any]:
        previous = retriever.reranker
        retriever.reranker = reranker
        inner = reranker.inner
        pairs0, seconds0 = inner.pairs_scored, inner.seconds
        t = time.perf_counter()
        try:
            out: list[Any] = []
            for start in range(0, len(texts), SEARCH_BATCH):
                out.extend(
                    retriever.search_many(
                        texts[start : start + SEARCH_BATCH], top_k=100, mode="hybrid", rerank=True
                    )
                )
        finally:
            retriever.reranker = previous
        pairs = inner.pairs_scored - pairs0
        seconds = inner.seconds - seconds0
        stats = {
            "method": label,
            "pairs": pairs,
            "model_seconds": round(seconds, 1),
            "pairs_per_s": round(pairs / seconds, 1) if seconds else None,
            "wall_seconds": round(time.perf_counter() - t, 1),
            **{k: v for k, v in inner.describe().items() if k not in {"pairs_scored"}},
            "fusion": reranker.fusion_weight,
        }
        reranker.stats[label] = stats
        if pairs:
            sys.stderr.write(
                f"{label}: {pairs} pairs scored in {stats['model_seconds']} s = "
                f"{stats['pairs_per_s']} pairs/s ({inner.backend}, max_length "
                f"{inner.max_length}, top_n {reranker.top_n}, fusion {reranker.fusion_weight})\n"
            )
        return out

    return run


def rerank_method(
    spec: str,
) -> tuple[dict[str, Callable[[Any, list[str]], list[Any]]], MemoReranker]:
    """``({"hybrid+rerank": fn, "hybrid+ce": fn}, reranker)`` for ``run_retrieval_bench``."""
    reranker = MemoReranker(load_reranker(spec))
    methods = {"hybrid+rerank": make_searcher(reranker, "hybrid+rerank")}
    if reranker.fusion_weight:
        methods["hybrid+ce"] = make_searcher(reranker.with_fusion(0.0), "hybrid+ce")
    return methods, reranker

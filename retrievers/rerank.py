"""The rerank stage: score the first stage's top N with a cross-encoder, fuse, reorder.

Only the first ``top_n`` candidates (the reranker's ``top_n``, default all) are scored, in one
batch. Their final score fuses the cross-encoder with the first stage's order::

    fused = z(logit) + fusion * -log(first_stage_rank)

where ``z`` standardises the logits over the scored candidates (so the weight does not depend on
a model's logit scale) and ``fusion`` is the reranker's ``fusion_weight`` (0: cross-encoder
order alone). The first stage's rank is a prior a small cross-encoder is wrong to ignore: BM25
and dense retrieval see the whole corpus, the cross-encoder sees one pair at a time. Candidates
past ``top_n`` keep their first-stage order after the reranked ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def fuse(logits: np.ndarray, weight: float) -> np.ndarray:
    """Standardised logits plus ``weight`` times the log-rank prior (rank 1 = the first row)."""
    logits = np.asarray(logits, dtype=np.float64).reshape(-1)
    if logits.size == 0:
        return logits
    std = float(logits.std())
    z = (logits - logits.mean()) / std if std > 1e-9 else np.zeros_like(logits)
    if not weight:
        return z
    prior = -np.log(np.arange(1, logits.size + 1, dtype=np.float64))
    return z + weight * prior


def rerank_settings(reranker: Any) -> tuple[int | None, float]:
    """``(top_n, fusion_weight)`` of a reranker (None and 0.0 where it has none)."""
    top_n = getattr(reranker, "top_n", None)
    weight = getattr(reranker, "fusion_weight", 0.0) or 0.0
    return (int(top_n) if top_n else None), float(weight)


def rerank_order(
    reranker: Any,
    query: str,
    texts: Sequence[str],
    *,
    top_n: int | None = None,
    fusion_weight: float | None = None,
) -> list[tuple[int, float]]:
    """New order of ``texts`` (given in first-stage order) as ``(index, score)``, best first.

    Scores are the fused scores for the reranked head; the tail keeps descending scores below
    them so that the whole list stays sorted.
    """
    default_n, default_w = rerank_settings(reranker)
    n = top_n if top_n is not None else default_n
    weight = default_w if fusion_weight is None else fusion_weight
    head = len(texts) if n is None else min(n, len(texts))
    if head == 0:
        return []
    logits = np.asarray(reranker.score(query, list(texts[:head])), dtype=np.float64)
    if logits.shape != (head,):
        raise ValueError(f"reranker returned {logits.shape} scores for {head} texts")
    fused = fuse(logits, weight)
    order = np.argsort(-fused, kind="stable")
    out = [(int(i), float(fused[i])) for i in order]
    floor = float(fused.min()) if head else 0.0
    out.extend((i, floor - (i - head + 1)) for i in range(head, len(texts)))
    return out

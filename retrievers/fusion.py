"""Rank fusion of several candidate lists."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RRF_K = 60


def rrf(
    lists: Sequence[np.ndarray], k: int = RRF_K, weights: Sequence[float] | None = None
) -> list[tuple[int, float]]:
    """Weighted reciprocal rank fusion: ``sum_i w_i / (k + rank_i)``, best first."""
    weights = weights or [1.0] * len(lists)
    scores: dict[int, float] = {}
    for rows, w in zip(lists, weights, strict=True):
        for rank, row in enumerate(rows, start=1):
            r = int(row)
            if r < 0:
                continue
            scores[r] = scores.get(r, 0.0) + w / (k + rank)
    return sorted(scores.items(), key=lambda kv: -kv[1])


def convex(
    lists: Sequence[tuple[np.ndarray, np.ndarray]], weights: Sequence[float]
) -> list[tuple[int, float]]:
    """Convex combination of min-max normalised scores; absent candidates score 0 there."""
    scores: dict[int, float] = {}
    for (rows, vals), w in zip(lists, weights, strict=True):
        valid = rows >= 0
        rows, vals = rows[valid], vals[valid].astype(np.float64)
        if len(rows) == 0:
            continue
        lo, hi = float(vals.min()), float(vals.max())
        norm = (vals - lo) / (hi - lo) if hi > lo else np.ones_like(vals)
        for r, v in zip(rows, norm, strict=True):
            scores[int(r)] = scores.get(int(r), 0.0) + w * float(v)
    return sorted(scores.items(), key=lambda kv: -kv[1])

"""Batched, length-sorted encoding with an optional progress bar."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from smallmodels.embedder import Embedder

#: Texts handed to the model per call; the model batches inside (``batch_size``).
SLICE = 512


def encode_texts(
    embedder: Embedder,
    texts: Sequence[str],
    batch_size: int = 64,
    show_progress: bool = False,
    on_batch: Callable[[int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> np.ndarray:
    """Encode ``texts`` longest-first in slices, so padding is minimal and progress visible."""
    order = np.argsort([-len(t) for t in texts], kind="stable")
    out = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
    bar = None
    if show_progress:
        from tqdm import tqdm

        bar = tqdm(total=len(texts), unit="chunk", desc="embedding", leave=False)
    done = 0
    try:
        for start in range(0, len(texts), SLICE):
            if cancelled and cancelled():
                break
            idx = order[start : start + SLICE]
            out[idx] = embedder.encode([texts[i] for i in idx], batch_size=batch_size)
            done += len(idx)
            if bar is not None:
                bar.update(len(idx))
            if on_batch is not None:
                on_batch(done)
    finally:
        if bar is not None:
            bar.close()
    return out

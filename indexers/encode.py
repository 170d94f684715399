"""Batched, length-sorted encoding: all at once (:func:`encode_texts`) or in the background
while the texts are still being produced (:class:`BackgroundEncoder`, used by index builds)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from smallmodels.embedder import Embedder

#: Texts handed to the model per call; the model batches inside (``batch_size``).
SLICE = 512
#: Most texts a background encoder sorts by length at once (more: less padding, later start).
WINDOW = 4096


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


class BackgroundEncoder:
    """Encodes texts in a worker thread while the caller is still reading and chunking.

    :meth:`submit` queues a text under a key (its hash: a text submitted twice is encoded once);
    the worker, whenever it is idle, takes what is queued once ``min_take`` texts are there (or
    the input has ended), sorts up to :data:`WINDOW` of them by length and encodes them in
    slices. While it encodes, more texts queue up, so later windows are larger and pad less.
    :meth:`vectors` waits for the keys asked for. ``busy_s`` is the time spent in model calls,
    so a build's overhead is its wall time minus ``busy_s``.

    Use as a context manager, or call :meth:`close`: the worker stops (after its current slice)
    when closed, cancelled, or when encoding fails (the error is raised by :meth:`vectors`).
    """

    def __init__(
        self,
        embedder: Embedder,
        batch_size: int = 64,
        *,
        slice_size: int = SLICE,
        window: int = WINDOW,
        min_take: int | None = None,
        cancelled: Callable[[], bool] | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.embedder = embedder
        self.batch_size = batch_size
        self.slice_size = slice_size
        self.window = max(window, slice_size)
        self.min_take = max(1, min(min_take or 2 * batch_size, slice_size))
        self.cancelled = cancelled
        self.on_progress = on_progress
        self.busy_s = 0.0
        self.encoded = 0
        self._pending: list[tuple[str, str]] = []
        self._queued: set[str] = set()
        self._vectors: dict[str, np.ndarray] = {}
        self._ended = False
        self._closed = False
        self._error: BaseException | None = None
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._work, name="tandem-encoder", daemon=True)
        self._thread.start()

    # -- producer side ------------------------------------------------------------------------
    def submit(self, key: str, text: str) -> None:
        """Queue ``text`` under ``key`` unless that key is already queued or encoded."""
        with self._cond:
            if key in self._queued:
                return
            self._queued.add(key)
            self._pending.append((key, text))
            if len(self._pending) >= self.min_take:
                self._cond.notify_all()

    @property
    def submitted(self) -> int:
        return len(self._queued)

    def end_input(self) -> None:
        """No more texts: the worker encodes what is left without waiting for a full slice."""
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def vectors(self, keys: Sequence[str]) -> np.ndarray:
        """The vectors of ``keys`` (all submitted before), waiting for the worker as needed."""
        self.end_input()
        with self._cond:
            while True:
                if self._error is not None:
                    raise self._error
                missing = [k for k in keys if k not in self._vectors]
                if not missing:
                    break
                if self._closed or (self.cancelled and self.cancelled()):
                    raise RuntimeError("encoder stopped before every text was encoded")
                if not self._thread.is_alive():
                    raise RuntimeError(f"{len(missing)} texts were never submitted")
                self._cond.wait(0.1)
            out = np.zeros((len(keys), self.embedder.dimension), dtype=np.float32)
            for i, k in enumerate(keys):
                out[i] = self._vectors[k]
        return out

    def has(self, key: str) -> bool:
        with self._cond:
            return key in self._vectors

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=60)

    def __enter__(self) -> BackgroundEncoder:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- worker side --------------------------------------------------------------------------
    def _take(self) -> list[tuple[str, str]] | None:
        with self._cond:
            while True:
                if self._closed or (self.cancelled and self.cancelled()):
                    return None
                if len(self._pending) >= self.min_take or (self._ended and self._pending):
                    break
                if self._ended and not self._pending:
                    return None
                self._cond.wait(0.05)
            taken = self._pending[: self.window]
            del self._pending[: self.window]
            return taken

    def _work(self) -> None:
        try:
            while True:
                taken = self._take()
                if taken is None:
                    return
                taken.sort(key=lambda item: -len(item[1]))
                for start in range(0, len(taken), self.slice_size):
                    part = taken[start : start + self.slice_size]
                    t = time.perf_counter()
                    vecs = self.embedder.encode([text for _, text in part], self.batch_size)
                    self.busy_s += time.perf_counter() - t
                    with self._cond:
                        for (key, _), vec in zip(part, vecs, strict=True):
                            self._vectors[key] = vec
                        self.encoded += len(part)
                        self._cond.notify_all()
                    if self.on_progress is not None:
                        self.on_progress(self.encoded, self.submitted)
                    if self._closed or (self.cancelled and self.cancelled()):
                        return
        except BaseException as exc:  # noqa: BLE001 - raised again by vectors()
            with self._cond:
                self._error = exc
                self._cond.notify_all()

"""Progress of one build with an ETA, shared by the build thread and the event loop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from app.jobs.models import Progress


class ProgressTracker:
    """Progress of one build, written by the build thread and read by the event loop.

    Its ``update`` is the builder's ``on_progress`` callback: events carry some of
    ``documents``, ``chunks_total`` and ``chunks_done`` (a missing key keeps its value). What
    it reports never goes back: ``chunks_done`` only rises (and stays at most
    ``chunks_total``), whatever order a pipelined build reports in. The ETA is the time left at
    the embedding rate seen since the first chunk was queued for embedding (``None`` until the
    first one is embedded).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._progress = Progress()
        self._embed_started: float | None = None
        self.version = 0

    def update(self, event: dict[str, Any]) -> None:
        now = self._clock()
        with self._lock:
            p = self._progress
            total = int(event.get("chunks_total", p.chunks_total))
            done = max(p.chunks_done, int(event.get("chunks_done", p.chunks_done)))
            if total > 0:
                done = min(done, total)
                if self._embed_started is None:
                    self._embed_started = now
            eta: float | None = None
            if total > 0 and done >= total:
                eta = 0.0
            elif done > 0 and self._embed_started is not None:
                eta = (now - self._embed_started) / done * (total - done)
            self._progress = Progress(
                documents=int(event.get("documents", p.documents)),
                chunks_total=total,
                chunks_done=done,
                eta_s=eta,
            )
            self.version += 1

    def finish(self) -> None:
        with self._lock:
            p = self._progress
            self._progress = Progress(p.documents, p.chunks_total, p.chunks_total, 0.0)
            self.version += 1

    def snapshot(self) -> Progress:
        with self._lock:
            p = self._progress
            return Progress(p.documents, p.chunks_total, p.chunks_done, p.eta_s)

"""Bounded offload of CPU-bound model calls (embedding, search, reranking) to worker threads.

The event loop never runs a model: :meth:`ModelLimiter.run` hands the call to a thread through
``anyio.to_thread.run_sync`` under a :class:`anyio.CapacityLimiter` of ``TANDEM_MODEL_THREADS``
tokens, so at most that many model calls run at once whatever the number of requests. At most
``TANDEM_MODEL_QUEUE`` calls may wait for a token; beyond that the request gets a 503 ``busy``
with ``Retry-After`` instead of queueing without bound.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from app.errors import ServiceBusy

T = TypeVar("T")


class ModelLimiter:
    def __init__(
        self, threads: int = 2, max_waiting: int = 64, on_wait: Callable[[int], None] | None = None
    ) -> None:
        self.threads = threads
        self.max_waiting = max_waiting
        self.limiter = anyio.CapacityLimiter(threads)
        self._in_flight = 0
        self._on_wait = on_wait

    @property
    def waiting(self) -> int:
        """Calls waiting for a thread (not yet running)."""
        return max(0, self._in_flight - self.threads)

    @property
    def busy(self) -> int:
        """Calls running now."""
        return int(self.limiter.borrowed_tokens)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` in a worker thread under the limiter."""
        if self.waiting >= self.max_waiting and self._in_flight >= self.threads:
            raise ServiceBusy(
                f"{self.waiting} model calls are already waiting; retry shortly", retry_after=1
            )
        self._in_flight += 1
        self._report()
        try:
            return await anyio.to_thread.run_sync(
                functools.partial(fn, *args, **kwargs), limiter=self.limiter
            )
        finally:
            self._in_flight -= 1
            self._report()

    async def timed(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[T, float]:
        """:meth:`run`, also returning the milliseconds spent (waiting included)."""
        t = time.perf_counter()
        out = await self.run(fn, *args, **kwargs)
        return out, (time.perf_counter() - t) * 1000

    def _report(self) -> None:
        if self._on_wait is not None:
            self._on_wait(self.waiting)

"""Bounded offload of CPU-bound model calls (embedding, search, reranking) to worker threads.

The event loop never runs a model: :meth:`ModelLimiter.run` hands the call to a thread through
``anyio.to_thread.run_sync`` under a :class:`anyio.CapacityLimiter` of ``TANDEM_MODEL_THREADS``
tokens, so at most that many model calls run at once whatever the number of requests. At most
``TANDEM_MODEL_QUEUE`` calls may wait for a token; beyond that the request gets a 503 ``busy``
with ``Retry-After`` instead of queueing without bound.
"""

from __future__ import annotations

import asyncio
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


class EmbeddingBatcher:
    """Opportunistic batching of query embeddings under concurrency.

    A lone query is encoded at once (no added wait). Queries that arrive while an encode is
    running queue up and go to the model together in the next call (at most ``max_batch``),
    which costs far less than one call each. Every encode runs through the
    :class:`ModelLimiter`.
    """

    def __init__(self, limiter: ModelLimiter, max_batch: int = 32) -> None:
        self.limiter = limiter
        self.max_batch = max_batch
        self._pending: dict[str, list[tuple[str, asyncio.Future[Any]]]] = {}
        self._draining: set[str] = set()
        self.batches = 0
        self.largest = 0

    async def embed(self, encoder: Any, key: str, text: str) -> Any:
        """The vector of ``text`` from ``encoder.encode`` (``key`` names the encoder)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(key, []).append((text, future))
        if key not in self._draining:
            self._draining.add(key)
            asyncio.get_running_loop().create_task(self._drain(encoder, key))
        return await future

    async def _drain(self, encoder: Any, key: str) -> None:
        try:
            pending = self._pending[key]
            while pending:
                batch = pending[: self.max_batch]
                del pending[: self.max_batch]
                self.batches += 1
                self.largest = max(self.largest, len(batch))
                try:
                    vectors = await self.run_encode(encoder, [text for text, _ in batch])
                except BaseException as exc:  # every waiter gets the failure
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for i, (_, future) in enumerate(batch):
                    if not future.done():
                        future.set_result(vectors[i])
        finally:
            self._draining.discard(key)
            if not self._pending.get(key):
                self._pending.pop(key, None)

    async def run_encode(self, encoder: Any, texts: list[str]) -> Any:
        return await self.limiter.run(encoder.encode, texts)

"""The response and embedding cache: Redis (redis-py asyncio) or an in-process LRU.

``TANDEM_REDIS_URL`` set: :class:`RedisCache`, shared by every worker. A Redis that is down or
slow never fails a request: each call has short socket timeouts, errors are swallowed (a
get misses, a set is dropped) and a :class:`Backoff` skips Redis entirely for a growing pause
after a failure, so a dead Redis costs almost nothing per request. After the pause one request
probes it again, and the cache is used again as soon as Redis answers.

Unset: :class:`MemoryCache`, a bounded LRU with TTLs inside the process.

Keys are built by the callers (see :func:`cache_key`); search keys include the index name and
the *identity* of the served index version, so a new version is never answered from the
entries of an old one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Literal

log = logging.getLogger("tandem.cache")

Status = Literal["ok", "absent", "down"]


def cache_key(prefix: str, kind: str, *parts: str, payload: Any = None) -> str:
    """``prefix:kind:part1:part2:<sha256 of payload>`` (payload: any JSON-able value)."""
    key = ":".join((prefix, kind, *parts))
    if payload is not None:
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        key += ":" + hashlib.sha256(blob.encode()).hexdigest()[:32]
    return key


class Backoff:
    """Exponential pause after failures; one caller probes when the pause is over."""

    def __init__(self, base_s: float, max_s: float, clock: Callable[[], float] = time.monotonic):
        self.base_s = base_s
        self.max_s = max(max_s, base_s)
        self.clock = clock
        self.failures = 0
        self.retry_at = 0.0

    @property
    def down(self) -> bool:
        return self.failures > 0

    def allow(self) -> bool:
        """True when a call may go to the backend now."""
        now = self.clock()
        if now < self.retry_at:
            return False
        if self.failures:
            # Half-open: this caller probes; the others keep skipping until it reports back.
            self.retry_at = now + max(self.base_s, 0.05)
        return True

    def success(self) -> None:
        if self.failures:
            log.info("redis is reachable again; cache back on")
        self.failures = 0
        self.retry_at = 0.0

    def failure(self) -> None:
        self.failures += 1
        pause = min(self.max_s, self.base_s * 2 ** (self.failures - 1))
        self.retry_at = self.clock() + pause


class Cache:
    """What the service needs of a cache."""

    backend: str = "none"

    async def get(self, key: str) -> bytes | None:
        raise NotImplementedError

    async def set(self, key: str, value: bytes, ttl_s: int) -> None:
        raise NotImplementedError

    async def status(self) -> Status:
        """Redis's state for readiness: ``absent`` when none is configured."""
        raise NotImplementedError

    async def close(self) -> None:
        return None


class MemoryCache(Cache):
    """A bounded LRU with per-entry TTLs (entries and total bytes both bounded)."""

    backend = "memory"

    def __init__(
        self,
        max_entries: int = 10_000,
        max_bytes: int = 64 << 20,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.clock = clock
        self._data: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._data)

    async def get(self, key: str) -> bytes | None:
        item = self._data.get(key)
        if item is None:
            return None
        expires, value = item
        if expires <= self.clock():
            self._drop(key)
            return None
        self._data.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes, ttl_s: int) -> None:
        if ttl_s <= 0 or self.max_entries <= 0 or len(value) > self.max_bytes:
            return
        if key in self._data:
            self._drop(key)
        self._data[key] = (self.clock() + ttl_s, value)
        self._bytes += len(value)
        while len(self._data) > self.max_entries or self._bytes > self.max_bytes:
            oldest = next(iter(self._data))
            self._drop(oldest)

    def _drop(self, key: str) -> None:
        _, value = self._data.pop(key)
        self._bytes -= len(value)

    async def status(self) -> Status:
        return "absent"


class RedisCache(Cache):
    """Redis through redis-py asyncio, with short timeouts, no retries and a back-off."""

    backend = "redis"

    def __init__(
        self, url: str, timeout_ms: int = 150, backoff_s: float = 1.0, backoff_max_s: float = 15.0
    ) -> None:
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        timeout = timeout_ms / 1000
        self.url = url
        self.client = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            retry_on_timeout=False,
            health_check_interval=0,
            max_connections=256,
        )
        self.backoff = Backoff(backoff_s, backoff_max_s)

    @property
    def available(self) -> bool:
        """Whether Redis is currently believed up (no failure since the last success)."""
        return not self.backoff.down

    async def _call(self, op: str, fn: Callable[[], Any]) -> tuple[bool, Any]:
        """Run one Redis call if the back-off allows; ``(ok, result)``, never raising."""
        from redis.exceptions import RedisError

        if not self.backoff.allow():
            return False, None
        try:
            result = await fn()
        except (RedisError, OSError, TimeoutError) as exc:
            if not self.backoff.down:
                log.warning("redis %s failed (%s); serving uncached", op, exc.__class__.__name__)
            self.backoff.failure()
            return False, None
        self.backoff.success()
        return True, result

    async def get(self, key: str) -> bytes | None:
        ok, value = await self._call("get", lambda: self.client.get(key))
        return value if ok and isinstance(value, bytes) else None

    async def set(self, key: str, value: bytes, ttl_s: int) -> None:
        if ttl_s > 0:
            await self._call("set", lambda: self.client.set(key, value, ex=ttl_s))

    async def incr_window(self, key: str, window_s: int) -> int | None:
        """Increment a fixed-window counter; its new value, or None if Redis is unusable."""

        async def run() -> Any:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, window_s, nx=True)
                return await pipe.execute()

        ok, result = await self._call("incr", run)
        return int(result[0]) if ok else None

    async def status(self) -> Status:
        """Ping Redis (even during a back-off, so readiness sees a recovery at once)."""
        from redis.exceptions import RedisError

        try:
            await self.client.ping()
        except (RedisError, OSError, TimeoutError):
            if not self.backoff.down:
                self.backoff.failure()
            return "down"
        self.backoff.success()
        return "ok"

    async def close(self) -> None:
        await self.client.aclose()


def create_cache(
    redis_url: str | None,
    *,
    max_entries: int = 10_000,
    timeout_ms: int = 150,
    backoff_s: float = 1.0,
    backoff_max_s: float = 15.0,
) -> Cache:
    if redis_url:
        return RedisCache(redis_url, timeout_ms, backoff_s, backoff_max_s)
    return MemoryCache(max_entries)

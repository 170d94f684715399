"""The in-process LRU, the back-off, cache keys, and RedisCache against a real Valkey."""

from __future__ import annotations

import time
from typing import Any

from app.cache import Backoff, MemoryCache, RedisCache, cache_key, create_cache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_memory_cache_lru_and_ttl():
    clock = Clock()
    cache = MemoryCache(max_entries=2, clock=clock)
    await cache.set("a", b"1", ttl_s=10)
    await cache.set("b", b"2", ttl_s=10)
    assert await cache.get("a") == b"1"  # a is now the most recent
    await cache.set("c", b"3", ttl_s=10)  # evicts b
    assert await cache.get("b") is None
    assert await cache.get("a") == b"1" and await cache.get("c") == b"3"
    clock.now += 11
    assert await cache.get("a") is None and len(cache) == 1
    await cache.set("d", b"4", ttl_s=0)  # ttl 0: not stored
    assert await cache.get("d") is None
    assert await cache.status() == "absent"


async def test_memory_cache_bounds_bytes():
    cache = MemoryCache(max_entries=100, max_bytes=10)
    await cache.set("a", b"12345", 60)
    await cache.set("b", b"12345", 60)
    await cache.set("c", b"12345", 60)  # over 10 bytes: a goes
    assert await cache.get("a") is None and await cache.get("c") == b"12345"
    await cache.set("huge", b"x" * 11, 60)
    assert await cache.get("huge") is None


def test_cache_key_is_stable_and_covers_every_part():
    a = cache_key("t", "search", "idx", "1-abc", payload={"q": "x", "k": 3})
    assert a == cache_key("t", "search", "idx", "1-abc", payload={"k": 3, "q": "x"})
    assert a.startswith("t:search:idx:1-abc:")
    assert a != cache_key("t", "search", "idx", "2-def", payload={"q": "x", "k": 3})
    assert a != cache_key("t", "search", "other", "1-abc", payload={"q": "x", "k": 3})
    assert a != cache_key("t", "search", "idx", "1-abc", payload={"q": "x", "k": 4})


def test_backoff_grows_and_probes_once():
    clock = Clock()
    backoff = Backoff(1.0, 4.0, clock=clock)
    assert backoff.allow() and not backoff.down
    backoff.failure()
    assert backoff.down and not backoff.allow()
    clock.now += 1.0
    assert backoff.allow()  # one probe...
    assert not backoff.allow()  # ...and the others keep skipping
    backoff.failure()  # second failure: 2 s
    clock.now += 1.5
    assert not backoff.allow()
    clock.now += 0.6
    assert backoff.allow()
    for _ in range(5):
        backoff.failure()
    assert backoff.retry_at - clock.now == 4.0  # capped
    backoff.success()
    assert backoff.allow() and not backoff.down


def test_create_cache_picks_the_backend():
    assert isinstance(create_cache(None), MemoryCache)
    assert isinstance(create_cache("redis://127.0.0.1:1/0"), RedisCache)


async def test_redis_cache_roundtrip_and_counter(redis_url: str):
    cache = RedisCache(redis_url, timeout_ms=200)
    try:
        assert await cache.status() == "ok"
        await cache.set("k", b"v", ttl_s=30)
        assert await cache.get("k") == b"v"
        assert await cache.get("missing") is None
        assert [await cache.incr_window("rl", 60) for _ in range(3)] == [1, 2, 3]
        assert 0 < await cache.client.ttl("rl") <= 60
    finally:
        await cache.close()


async def test_dead_redis_costs_little_and_recovers(redis_url: str, redis_server: Any):
    cache = RedisCache(redis_url, timeout_ms=100, backoff_s=0.2, backoff_max_s=0.2)
    try:
        await cache.set("k", b"v", ttl_s=30)
        redis_server.terminate()
        try:
            started = time.perf_counter()
            results = [await cache.get("k") for _ in range(50)]
            elapsed = time.perf_counter() - started
            assert results == [None] * 50
            assert elapsed < 0.5  # one failed call, then skipped during the back-off
            assert await cache.incr_window("rl", 60) is None
            assert not cache.available
            assert await cache.status() == "down"
        finally:
            redis_server.start()
        assert await cache.status() == "ok" and cache.available
        await cache.set("k2", b"again", ttl_s=30)
        assert await cache.get("k2") == b"again"
    finally:
        await cache.close()


async def test_unreachable_redis_at_start(free_port: Any):
    cache = RedisCache(f"redis://127.0.0.1:{free_port()}/0", timeout_ms=100)
    try:
        assert await cache.get("k") is None
        await cache.set("k", b"v", 10)
        assert await cache.status() == "down"
    finally:
        await cache.close()

"""The service's cache with a real Redis (Valkey): hits, keys, TTLs, Redis killed and back."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis

SEARCH = "/v1/indexes/fixture/search"


async def search(client: Any, query: str, **extra: Any) -> dict[str, Any]:
    r = await client.post(SEARCH, json={"query": query, "top_k": 3, **extra})
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


async def test_redis_caches_answers_and_embeddings_with_a_ttl(
    service: Any, service_settings: Any, redis_url: str
):
    settings = service_settings(redis_url=redis_url, cache_ttl_s=120)
    async with service(settings) as client:
        ready = (await client.get("/health/ready")).json()
        assert ready["components"]["redis"] == "ok"
        first = await search(client, "volcanic ash and pumice")
        second = await search(client, "volcanic ash and pumice")
        assert (first["cached"], second["cached"]) == (False, True)
        assert second["hits"] == first["hits"] and second["version"] == 1

    r = redis.Redis.from_url(redis_url)
    try:
        keys = sorted(k.decode() for k in r.keys("tandem:*"))  # type: ignore[union-attr]
        search_keys = [k for k in keys if k.startswith("tandem:search:fixture:1-")]
        emb_keys = [k for k in keys if k.startswith("tandem:emb:")]
        assert len(search_keys) == 1 and len(emb_keys) == 1, keys
        assert 0 < r.ttl(search_keys[0]) <= 120
        assert r.strlen(emb_keys[0]) == 384 * 4  # float32 MiniLM vector
    finally:
        r.close()


async def test_two_workers_share_the_cache_and_the_rate_limit(
    service: Any, service_settings: Any, redis_url: str
):
    settings = service_settings(
        redis_url=redis_url, api_keys="k-shared", rate_limit_requests=4, rate_limit_window_s=60
    )
    auth = {"Authorization": "Bearer k-shared"}
    async with service(settings) as one, service(settings) as two:
        r1 = await one.post(SEARCH, json={"query": "roman aqueduct"}, headers=auth)
        r2 = await two.post(SEARCH, json={"query": "roman aqueduct"}, headers=auth)
        assert r1.json()["cached"] is False and r2.json()["cached"] is True
        assert (await one.get("/v1/indexes", headers=auth)).status_code == 200
        assert (await two.get("/v1/indexes", headers=auth)).status_code == 200
        limited = await one.get("/v1/indexes", headers=auth)
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1


async def test_redis_killed_mid_traffic_then_back(
    service: Any, service_settings: Any, redis_url: str, redis_server: Any
):
    settings = service_settings(
        redis_url=redis_url,
        redis_timeout_ms=100,
        redis_backoff_s=0.2,
        redis_backoff_max_s=0.5,
        api_keys="k1",
        rate_limit_requests=1000,
    )
    auth = {"Authorization": "Bearer k1"}

    async def ask(query: str) -> dict[str, Any]:
        r = await client.post(SEARCH, json={"query": query, "top_k": 3}, headers=auth)
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out

    async with service(settings) as client:
        assert (await ask("gutenberg printing press"))["cached"] is False
        assert (await ask("gutenberg printing press"))["cached"] is True

        redis_server.terminate()  # SIGKILL, mid-traffic
        try:
            started = time.perf_counter()
            answers = [await ask(q) for q in ["gutenberg printing press", "chess knight", "rye"]]
            answers += [await ask("gutenberg printing press") for _ in range(5)]
            per_request = (time.perf_counter() - started) / len(answers)
            assert all(a["cached"] is False for a in answers)  # uncached, never a 5xx
            assert per_request < 0.5
            ready = await client.get("/health/ready")
            assert ready.status_code == 200
            assert ready.json()["components"]["redis"] == "down"
            assert ready.json()["status"] == "degraded"
        finally:
            redis_server.start()

        # Back: readiness sees it at once, and the cache is used again.
        deadline = time.monotonic() + 10
        while (await client.get("/health/ready")).json()["components"]["redis"] != "ok":
            assert time.monotonic() < deadline, "redis never came back"
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.6)  # past any back-off
        assert (await ask("castling king rook"))["cached"] is False
        assert (await ask("castling king rook"))["cached"] is True


async def test_memory_cache_without_redis(service: Any, service_settings: Any):
    async with service(service_settings(cache_ttl_s=60)) as client:
        assert (await search(client, "evaporation and clouds"))["cached"] is False
        assert (await search(client, "evaporation and clouds"))["cached"] is True
        # Different filters, mode or top_k are different entries.
        assert (await search(client, "evaporation and clouds", mode="bm25"))["cached"] is False
        filtered = await search(client, "evaporation and clouds", filters={"topic": "science"})
        assert filtered["cached"] is False
        again = await search(client, "evaporation and clouds", filters={"topic": ["science"]})
        assert again["cached"] is True  # the same filter, normalised


async def test_cache_ttl_zero_disables_caching(service: Any, service_settings: Any):
    async with service(service_settings(cache_ttl_s=0)) as client:
        assert (await search(client, "baking bread"))["cached"] is False
        assert (await search(client, "baking bread"))["cached"] is False

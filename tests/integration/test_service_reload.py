"""New index versions and new indexes are served without a restart, never from stale cache."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import anyio.to_thread

from stores.layout import IndexLayout
from tests.conftest import FIXTURE_DOCS, build_index, write_corpus

SEARCH = "/v1/indexes/fixture/search"
RYE = {
    "id": "rye",
    "topic": "food",
    "text": "Pumpernickel is a dense rye bread from Westphalia, baked for up to twenty-four "
    "hours at a low temperature in a steam chamber, which turns it almost black.",
}


async def test_new_version_is_served_while_serving_and_never_from_old_cache(
    service: Any, service_settings: Any, fixture_index: Any, tmp_path: Path
):
    copy = fixture_index.copy_to(tmp_path)
    query = {"query": "dense black rye bread from Westphalia", "top_k": 1}
    async with service(service_settings(data_dir=copy.data_dir, cache_ttl_s=600)) as client:
        before = (await client.post(SEARCH, json=query)).json()
        assert before["version"] == 1 and before["hits"][0]["metadata"]["id"] != "rye"
        assert (await client.post(SEARCH, json=query)).json()["cached"] is True

        # Publish v2 in a worker thread while requests keep coming: none may fail.
        write_corpus(copy.corpus, [*FIXTURE_DOCS, RYE])
        build = asyncio.ensure_future(
            anyio.to_thread.run_sync(build_index, copy.data_dir, "fixture", copy.corpus)
        )
        statuses = []
        while not build.done():
            r = await client.post(SEARCH, json={"query": "knight moves", "top_k": 2})
            statuses.append(r.status_code)
            await asyncio.sleep(0.05)
        assert await build == 2
        assert statuses and set(statuses) == {200}

        after = (await client.post(SEARCH, json=query)).json()
        assert after["version"] == 2 and after["cached"] is False
        assert after["hits"][0]["metadata"]["id"] == "rye"
        assert (await client.post(SEARCH, json=query)).json()["cached"] is True
        listed = (await client.get("/v1/indexes")).json()["indexes"]
        assert listed[0]["version"] == 2 and listed[0]["documents"] == 9
        metrics = (await client.get("/metrics")).text
        assert 'tandem_index_version{index="fixture"} 2.0' in metrics


async def test_rebuilt_from_scratch_with_the_same_version_number_is_not_stale(
    service: Any, service_settings: Any, fixture_index: Any, tmp_path: Path
):
    copy = fixture_index.copy_to(tmp_path)
    query = {"query": "dense black rye bread from Westphalia", "top_k": 1}
    async with service(service_settings(data_dir=copy.data_dir, cache_ttl_s=600)) as client:
        old = (await client.post(SEARCH, json=query)).json()
        assert old["hits"][0]["metadata"]["id"] != "rye"
        shutil.rmtree(copy.data_dir / "indexes" / "fixture")
        rye_only = write_corpus(tmp_path / "rye", [RYE])
        assert await anyio.to_thread.run_sync(build_index, copy.data_dir, "fixture", rye_only) == 1
        new = (await client.post(SEARCH, json=query)).json()
        assert new["version"] == 1 and new["cached"] is False
        assert new["hits"][0]["metadata"]["id"] == "rye"


async def test_index_created_after_startup_is_searchable(
    service: Any, service_settings: Any, fixture_index: Any, tmp_path: Path
):
    copy = fixture_index.copy_to(tmp_path)
    async with service(service_settings(data_dir=copy.data_dir)) as client:
        r = await client.post("/v1/indexes/late/search", json={"query": "rye"})
        assert r.status_code == 404
        corpus = write_corpus(tmp_path / "late", [RYE])
        await anyio.to_thread.run_sync(build_index, copy.data_dir, "late", corpus)
        names = [i["name"] for i in (await client.get("/v1/indexes")).json()["indexes"]]
        assert names == ["fixture", "late"]
        r = await client.post("/v1/indexes/late/search", json={"query": "pumpernickel"})
        assert r.status_code == 200 and r.json()["hits"][0]["metadata"]["id"] == "rye"
        assert IndexLayout(copy.data_dir, "late").current_version() == 1


async def test_background_watcher_opens_new_versions_before_requests(
    service: Any, service_settings: Any, fixture_index: Any, tmp_path: Path
):
    copy = fixture_index.copy_to(tmp_path)
    settings = service_settings(data_dir=copy.data_dir, refresh_interval_ms=60_000)
    async with service(settings) as client:
        state = client.app.state.tandem
        assert state.indexes.loaded["fixture"].version == 1
        write_corpus(copy.corpus, [*FIXTURE_DOCS, RYE])
        await anyio.to_thread.run_sync(build_index, copy.data_dir, "fixture", copy.corpus)
        # Requests check at most once a minute here; the watcher's sync picks it up anyway.
        await state.indexes.sync_all()
        assert state.indexes.loaded["fixture"].version == 2
        r = await client.post(SEARCH, json={"query": "pumpernickel", "top_k": 1})
        assert r.json()["version"] == 2

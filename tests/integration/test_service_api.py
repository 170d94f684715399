"""The HTTP API over the real fixture index: routes, auth, bounds and every error code."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from stores.layout import IndexLayout, write_json_atomic

KEY = "key-full-0123456789"
OTHER = "key-other-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
SEARCH = "/v1/indexes/fixture/search"
HIT_FIELDS = {"rank", "score", "text", "source", "doc_id", "chunk_id", "metadata"}


def keyed(service_settings: Any, **overrides: Any) -> Any:
    return service_settings(api_keys=f"{KEY},{OTHER}:other", **overrides)


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body


async def test_health_is_public_and_reports_components(service: Any, service_settings: Any):
    async with service(keyed(service_settings)) as client:
        live = await client.get("/health/live")
        assert live.status_code == 200 and live.json() == {"status": "ok"}
        ready = await client.get("/health/ready")
        assert ready.status_code == 200
        body = ready.json()
        assert body["status"] == "ready"
        core = {k: body["components"][k] for k in ("models", "indexes", "redis")}
        assert core == {"models": "ok", "indexes": "ok", "redis": "absent"}
        assert "reranking off" in body["details"]["models"]
        assert "fixture v1" in body["details"]["indexes"]


async def test_every_other_route_needs_a_valid_key(service: Any, service_settings: Any):
    async with service(keyed(service_settings)) as client:
        for method, path in [
            ("GET", "/v1/indexes"),
            ("GET", "/v1/indexes/fixture"),
            ("POST", SEARCH),
            ("GET", "/metrics"),
            ("GET", "/schema/openapi.json"),
        ]:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
                r = await client.request(method, path, headers=headers, json={"query": "x"})
                assert_error(r, 401, "unauthorized")
                assert r.headers["www-authenticate"].startswith("Bearer")
        assert (await client.get("/v1/indexes", headers=AUTH)).status_code == 200
        assert (await client.get("/metrics", headers=AUTH)).status_code == 200
        assert (await client.get("/schema/openapi.json", headers=AUTH)).status_code == 200


async def test_public_schema_setting_opens_only_the_schema(service: Any, service_settings: Any):
    async with service(keyed(service_settings, public_schema=True)) as client:
        assert (await client.get("/schema/openapi.json")).status_code == 200
        assert_error(await client.get("/v1/indexes"), 401, "unauthorized")


async def test_list_and_show_respect_key_scopes(
    service: Any, service_settings: Any, fixture_index: Any
):
    async with service(keyed(service_settings)) as client:
        listed = (await client.get("/v1/indexes", headers=AUTH)).json()["indexes"]
        assert [i["name"] for i in listed] == ["fixture"]
        assert listed[0]["version"] == 1 and listed[0]["chunks"] >= 8
        assert listed[0]["documents"] == 8 and listed[0]["store"] == "faiss"

        shown = (await client.get("/v1/indexes/fixture", headers=AUTH)).json()
        assert shown == IndexLayout(fixture_index.data_dir, "fixture").manifest()

        other = {"Authorization": f"Bearer {OTHER}"}
        assert (await client.get("/v1/indexes", headers=other)).json() == {"indexes": []}
        assert_error(await client.get("/v1/indexes/fixture", headers=other), 403, "forbidden")
        r = await client.post(SEARCH, headers=other, json={"query": "lightning"})
        assert_error(r, 403, "forbidden")
        # A restricted key learns nothing about indexes outside its scope.
        assert_error(await client.get("/v1/indexes/nope", headers=other), 403, "forbidden")


async def test_unknown_and_invalid_index_names(service: Any, service_settings: Any):
    async with service(service_settings()) as client:
        assert_error(await client.get("/v1/indexes/nope"), 404, "index_not_found")
        r = await client.post("/v1/indexes/nope/search", json={"query": "lightning"})
        assert_error(r, 404, "index_not_found")
        assert_error(await client.get("/v1/indexes/a..b"), 400, "invalid_index_name")
        assert_error(await client.get("/v2/nothing"), 404, "not_found")
        assert_error(await client.delete("/v1/indexes/fixture"), 405, "method_not_allowed")


async def test_search_returns_cli_shaped_hits_then_a_cached_copy(
    service: Any, service_settings: Any
):
    async with service(service_settings()) as client:
        body = {"query": "How does lightning form in a thunderstorm?", "top_k": 3}
        first = await client.post(SEARCH, json=body, headers={"X-Request-ID": "req-42"})
        assert first.status_code == 200
        assert first.headers["x-request-id"] == "req-42"
        out = first.json()
        assert set(out) == {"index", "version", "hits", "cached", "timings_ms"}
        assert out["index"] == "fixture" and out["version"] == 1 and out["cached"] is False
        assert len(out["hits"]) == 3
        assert all(set(h) == HIT_FIELDS for h in out["hits"])
        assert [h["rank"] for h in out["hits"]] == [1, 2, 3]
        assert out["hits"][0]["metadata"]["id"] == "lightning"
        assert {"embed", "bm25", "dense", "fusion", "fetch", "total"} <= set(out["timings_ms"])

        # Same request, other whitespace: a cache hit with the very same hits.
        again = await client.post(
            SEARCH, json={**body, "query": "  How does lightning  form in a thunderstorm?"}
        )
        assert again.json()["cached"] is True
        assert again.json()["hits"] == out["hits"]
        assert len(again.headers["x-request-id"]) == 32  # made up when not sent

        # Another top_k is another cache entry, and its embedding comes from the cache.
        more = (await client.post(SEARCH, json={**body, "top_k": 5})).json()
        assert more["cached"] is False and len(more["hits"]) == 5
        assert more["hits"][:3] == out["hits"]
        assert more["timings_ms"].get("embed", 0) < out["timings_ms"]["embed"]


@pytest.mark.parametrize(
    ("mode", "query", "doc"),
    [
        ("bm25", "espresso crema pressure", "coffee"),
        ("dense", "a machine that prints books with metal letters", "printing"),
        ("hybrid", "sourdough starter yeast", "bread"),
    ],
)
async def test_search_modes(service: Any, service_settings: Any, mode: str, query: str, doc: str):
    async with service(service_settings()) as client:
        r = await client.post(SEARCH, json={"query": query, "mode": mode, "top_k": 2})
        assert r.status_code == 200, r.text
        assert r.json()["hits"][0]["metadata"]["id"] == doc


async def test_filters(service: Any, service_settings: Any):
    async with service(service_settings(max_filter_fields=2)) as client:
        r = await client.post(
            SEARCH, json={"query": "water", "top_k": 10, "filters": {"topic": "food"}}
        )
        hits = r.json()["hits"]
        assert hits and {h["metadata"]["topic"] for h in hits} == {"food"}
        r = await client.post(
            SEARCH, json={"query": "water", "top_k": 10, "filters": {"topic": ["history", "food"]}}
        )
        assert {h["metadata"]["topic"] for h in r.json()["hits"]} == {"food", "history"}
        r = await client.post(SEARCH, json={"query": "water", "filters": {"topic": "none"}})
        assert r.status_code == 200 and r.json()["hits"] == []

        bad = [
            ({"bad key!": "x"}, 400, "bad_request"),
            ({"topic": []}, 400, "bad_request"),
            ({"topic": {"nested": 1}}, 422, "validation_error"),
            ({"a": "1", "b": "2", "c": "3"}, 422, "validation_error"),
            (["topic"], 422, "validation_error"),
        ]
        for filters, status, code in bad:
            r = await client.post(SEARCH, json={"query": "water", "filters": filters})
            assert_error(r, status, code)


async def test_no_unexpected_input_gives_a_500(service: Any, service_settings: Any):
    settings = service_settings(max_query_chars=50, max_body_bytes=2048)
    async with service(settings) as client:

        def raw(content: bytes) -> Any:
            return client.post(
                SEARCH, content=content, headers={"Content-Type": "application/json"}
            )

        assert_error(await raw(b'{"query": "x"'), 400, "invalid_json")
        assert_error(await raw(b"{bad json}"), 400, "invalid_json")
        assert_error(await raw(b'{"query": "\xff\xfe"}'), 400, "invalid_json")
        assert_error(await raw(b""), 400, "invalid_json")
        assert_error(await raw(b"x" * 5000), 413, "payload_too_large")
        assert_error(await raw(b'{"query": "' + b"a" * 4000 + b'"}'), 413, "payload_too_large")
        cases: list[Any] = [
            [],
            "lightning",
            None,
            42,
            {},
            {"query": 5},
            {"query": ""},
            {"query": ["x"]},
            {"query": "x", "top_k": 0},
            {"query": "x", "top_k": 101},
            {"query": "x", "top_k": "3"},
            {"query": "x", "top_k": 2.5},
            {"query": "x", "mode": "fuzzy"},
            {"query": "x", "top_k": 2.0},
            {"query": "x", "rerank": "yes"},
            {"query": "x", "rerank": "true"},
            {"query": "x", "rerank": 1},
            {"query": "x", "unknown": 1},
            {"query": "x" * 51},
            {"query": "   \n\t "},
        ]
        for body in cases:
            r = await raw(json.dumps(body).encode())
            assert_error(r, 422, "validation_error")
        for ctype, content in [
            ("application/x-www-form-urlencoded", b"query=x"),
            ("text/plain", b'{"query": "x"}'),
            ("multipart/form-data; boundary=b", b'{"query": "x"}'),
        ]:
            r = await client.post(SEARCH, content=content, headers={"Content-Type": ctype})
            body = assert_error(r, 415, "unsupported_media_type")
            assert "application/json" in body["error"]["message"]
        # no Content-Type at all is read as JSON (what a bare client sends)
        r = await client.post(SEARCH, content=b'{"query": "x"}', headers={"Content-Type": ""})
        assert r.status_code == 200, r.text
        assert (await client.post(SEARCH, json={"query": "x" * 50})).status_code == 200


async def test_rerank_without_a_reranker_is_a_clear_409(service: Any, service_settings: Any):
    async with service(service_settings()) as client:
        r = await client.post(SEARCH, json={"query": "lightning", "rerank": True})
        body = assert_error(r, 409, "reranker_unavailable")
        assert "TANDEM_RERANKER" in body["error"]["message"]
        r = await client.post(SEARCH, json={"query": "lightning", "rerank": False})
        assert r.status_code == 200


async def test_rate_limit_per_key(service: Any, service_settings: Any):
    settings = keyed(service_settings, rate_limit_requests=3, rate_limit_window_s=60)
    async with service(settings) as client:
        for _ in range(3):
            assert (await client.get("/v1/indexes", headers=AUTH)).status_code == 200
        r = await client.get("/v1/indexes", headers=AUTH)
        assert_error(r, 429, "rate_limited")
        assert 1 <= int(r.headers["retry-after"]) <= 60
        # Another key has its own budget; health checks are never limited.
        other = {"Authorization": f"Bearer {OTHER}"}
        assert (await client.get("/v1/indexes", headers=other)).status_code == 200
        assert (await client.get("/health/ready")).status_code == 200


async def test_embedder_mismatch_is_a_409_and_readiness_says_why(
    service: Any, service_settings: Any, fixture_index: Any, tmp_path: Path
):
    copy = fixture_index.copy_to(tmp_path)
    layout = IndexLayout(copy.data_dir, "fixture")
    manifest = layout.manifest()
    manifest["embedder"]["fingerprint"] = "some-other-model:0000"
    write_json_atomic(layout.version_dir(1) / "manifest.json", manifest)
    async with service(service_settings(data_dir=copy.data_dir)) as client:
        r = await client.post(SEARCH, json={"query": "lightning"})
        assert_error(r, 409, "embedder_mismatch")
        ready = await client.get("/health/ready")
        assert ready.status_code == 503  # its only index cannot be searched
        assert ready.json()["components"]["indexes"] == "down"
        assert "embedder" in ready.json()["details"]["indexes"]


async def test_readiness_without_indexes_is_ready(
    service: Any, service_settings: Any, tmp_path: Path
):
    async with service(service_settings(data_dir=tmp_path / "empty")) as client:
        ready = await client.get("/health/ready")
        assert ready.status_code == 200
        assert ready.json()["components"]["indexes"] == "absent"
        assert (await client.get("/v1/indexes")).json() == {"indexes": []}


async def test_metrics_cover_routes_stages_cache_errors_and_sizes(
    service: Any, service_settings: Any
):
    async with service(service_settings()) as client:
        await client.post(SEARCH, json={"query": "volcano magma"})
        await client.post(SEARCH, json={"query": "volcano magma"})
        await client.get("/v1/indexes/missing")
        text = (await client.get("/metrics")).text
    route = "/v1/indexes/{name}/search"
    assert f'tandem_http_requests_total{{method="POST",route="{route}",status="200"}} 2.0' in text
    assert f'tandem_http_request_seconds_count{{method="POST",route="{route}"}} 2.0' in text
    assert 'tandem_cache_requests_total{kind="search",result="hit"} 1.0' in text
    assert 'tandem_cache_requests_total{kind="search",result="miss"} 1.0' in text
    assert f'tandem_stage_seconds_count{{route="{route}",stage="embed"}} 1.0' in text
    assert 'tandem_errors_total{code="index_not_found"} 1.0' in text
    assert 'tandem_index_chunks{index="fixture"}' in text
    assert 'tandem_index_version{index="fixture"} 1.0' in text


async def test_openapi_documents_every_route(service: Any, service_settings: Any):
    async with service(service_settings()) as client:
        spec = (await client.get("/schema/openapi.json")).json()
    ops = {
        op["operationId"]: (path, method)
        for path, item in spec["paths"].items()
        for method, op in item.items()
    }
    assert ops["health_live"] == ("/health/live", "get")
    assert ops["health_ready"] == ("/health/ready", "get")
    assert ops["metrics"] == ("/metrics", "get")
    assert ops["list_indexes"] == ("/v1/indexes", "get")
    assert ops["get_index"] == ("/v1/indexes/{name}", "get")
    assert ops["search_index"] == ("/v1/indexes/{name}/search", "post")
    search = spec["paths"]["/v1/indexes/{name}/search"]["post"]
    assert {"401", "403", "404", "409", "413", "422", "429"} <= set(search["responses"])
    schemas = spec["components"]["schemas"]
    request = schemas["SearchRequest"]["properties"]
    assert set(request) == {"query", "top_k", "mode", "filters", "rerank"}
    assert request["top_k"]["maximum"] == 100 and request["top_k"]["minimum"] == 1
    assert set(schemas["SearchResponse"]["properties"]) == {
        "index",
        "version",
        "hits",
        "cached",
        "timings_ms",
    }
    assert set(schemas["HitOut"]["properties"]) == HIT_FIELDS
    assert "bearer" in spec["components"]["securitySchemes"]


async def test_index_dir_removed_while_serving_gives_404(
    service: Any, service_settings: Any, fixture_index: Any, tmp_path: Path
):
    copy = fixture_index.copy_to(tmp_path)
    async with service(service_settings(data_dir=copy.data_dir)) as client:
        assert (await client.post(SEARCH, json={"query": "chess knight"})).status_code == 200
        shutil.rmtree(copy.data_dir / "indexes" / "fixture")
        r = await client.post(SEARCH, json={"query": "chess knight castling"})
        assert_error(r, 404, "index_not_found")
        assert (await client.get("/v1/indexes")).json() == {"indexes": []}

"""The official MCP client (``mcp`` SDK) against a live ``tandem serve`` on 127.0.0.1.

Initialise, list the tools, call each one, read a manifest resource; the same keys as REST (a
wrong key refused with REST's 401, an index the key may not read refused with REST's
``forbidden``), and a search through MCP returns REST's hits.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serving import cli_env, tandem_serve

pytest.importorskip("mcp")

KEY = "mcp-key-0123456789"
LIMITED = "mcp-limited-0123456789"  # may read index "other" only
QUERY = "how do ice crystals separate charge in a thunderstorm"
TOOLS = {"list_indexes", "search", "ask", "get_passage"}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(fixture_index: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from tests.conftest import find_free_port

    tmp = tmp_path_factory.mktemp("mcp-http")
    env = cli_env(
        TANDEM_API_KEYS=f"{KEY},{LIMITED}:other",
        TANDEM_RATE_LIMIT_REQUESTS="0",
        TANDEM_READER="none",
        TANDEM_CHECKER="none",
    )
    with tandem_serve(fixture_index.data_dir, find_free_port(), env, tmp / "serve.log") as base:
        yield base


@asynccontextmanager
async def client(base: str, key: str) -> AsyncIterator[Any]:
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    async with (
        create_mcp_http_client(headers={"Authorization": f"Bearer {key}"}) as http,
        Client(streamable_http_client(f"{base}/mcp", http_client=http)) as c,
    ):
        yield c


def error_of(result: Any) -> dict[str, Any]:
    assert result.is_error, result
    body = result.structured_content or json.loads(result.content[0].text)
    error: dict[str, Any] = body["error"]
    return error


async def test_tools_over_http_match_rest(served: str) -> None:
    async with client(served, KEY) as c:
        listed = await c.list_tools()
        tools = {t.name: t for t in listed.tools}
        assert set(tools) == TOOLS
        search_schema = tools["search"].input_schema
        assert set(search_schema["required"]) == {"index", "query"}
        assert search_schema["properties"]["top_k"]["maximum"] == 100
        assert "chunk_id" in (tools["search"].description or "")

        indexes = (await c.call_tool("list_indexes", {})).structured_content
        assert [i["name"] for i in indexes["indexes"]] == ["fixture"]

        found = await c.call_tool("search", {"index": "fixture", "query": QUERY, "top_k": 3})
        assert not found.is_error
        hits = found.structured_content["hits"]
        assert hits[0]["metadata"]["id"] == "lightning"
        assert {"source", "chunk_id", "score", "text"} <= set(hits[0])

        rest = httpx.post(
            f"{served}/v1/indexes/fixture/search",
            json={"query": QUERY, "top_k": 3},
            headers={"Authorization": f"Bearer {KEY}"},
            timeout=60,
        ).json()
        strip = [{k: h[k] for k in ("rank", "chunk_id", "score", "text", "source")} for h in hits]
        assert strip == [
            {k: h[k] for k in ("rank", "chunk_id", "score", "text", "source")} for h in rest["hits"]
        ]
        assert found.structured_content["version"] == rest["version"]

        passage = await c.call_tool(
            "get_passage", {"index": "fixture", "chunk_id": hits[0]["chunk_id"]}
        )
        assert not passage.is_error
        p = passage.structured_content
        assert p["chunk"]["text"] == hits[0]["text"] and p["source"] == hits[0]["source"]
        assert p["before"] == [] and p["after"] == []  # one chunk per fixture document

        answer = await c.call_tool(
            "ask", {"index": "fixture", "question": "What separates charge in a storm cloud?"}
        )
        assert not answer.is_error, answer.content
        a = answer.structured_content
        assert a["served_by"] in ("small", "cache") and a["reason"]
        assert a["answer"] and a["citations"] and a["citations"][0]["n"] == 1
        assert a["citations"][0]["text"]
        assert a["sentences"] and {s["verdict"] for s in a["sentences"]} <= {
            "supported",
            "unsupported",
            "unchecked",
        }

        resources = await c.list_resources()
        uris = [str(r.uri) for r in resources.resources]
        assert uris == ["tandem://indexes/fixture/manifest"]
        read = await c.read_resource(uris[0])
        assert json.loads(read.contents[0].text)["version"] == rest["version"]

        bad = await c.call_tool("search", {"index": "fixture", "query": QUERY, "top_k": 1000})
        assert error_of(bad)["code"] == "validation_error"
        missing = await c.call_tool("search", {"index": "nope", "query": QUERY})
        rest_missing = httpx.post(
            f"{served}/v1/indexes/nope/search",
            json={"query": QUERY},
            headers={"Authorization": f"Bearer {KEY}"},
        ).json()["error"]
        assert error_of(missing) == {**rest_missing, "status": 404}


async def test_index_the_key_may_not_read_is_refused(served: str) -> None:
    rest = httpx.post(
        f"{served}/v1/indexes/fixture/search",
        json={"query": QUERY},
        headers={"Authorization": f"Bearer {LIMITED}"},
    )
    assert rest.status_code == 403
    async with client(served, LIMITED) as c:
        refused = await c.call_tool("search", {"index": "fixture", "query": QUERY})
        assert error_of(refused) == {**rest.json()["error"], "status": 403}
        asked = await c.call_tool("ask", {"index": "fixture", "question": "why?"})
        assert error_of(asked)["code"] == "forbidden"
        passage = await c.call_tool("get_passage", {"index": "fixture", "chunk_id": "x"})
        assert error_of(passage)["code"] == "forbidden"
        listed = (await c.call_tool("list_indexes", {})).structured_content
        assert listed == {"indexes": []}
        assert (await c.list_resources()).resources == []


async def test_wrong_key_is_refused(served: str) -> None:
    raw = httpx.post(
        f"{served}/mcp",
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={"Authorization": "Bearer wrong", "Accept": "application/json"},
    )
    assert raw.status_code == 401
    assert raw.json()["error"]["code"] == "unauthorized"
    assert "Bearer" in raw.headers["www-authenticate"]
    # The SDK's client gets no session: the 401 surfaces as an MCPError (in task groups).
    with pytest.raises(Exception) as info:
        async with client(served, "wrong") as c:
            await c.list_tools()
    assert "MCPError" in repr(info.value), repr(info.value)


def test_served_path_is_listed(tmp_path: Path) -> None:
    from app.server import create_app
    from app.settings import Settings

    app = create_app(Settings(_env_file=None, data_dir=tmp_path))  # type: ignore[call-arg]
    assert "/mcp" in [r.path for r in app.routes]

"""``tandem mcp --index NAME`` over stdio, driven by the official MCP client (``mcp`` SDK):
the same tools, reading the data dir directly; a search returns what REST returns; an index
outside ``--index`` is refused as REST refuses an index the key may not read."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.serving import REPO, cli_env

pytest.importorskip("mcp")
pytestmark = pytest.mark.slow

QUERY = "espresso pressure crema"


async def test_stdio_tools_match_rest(
    fixture_index: Any, tmp_path: Path, service: Any, service_settings: Any
) -> None:
    from mcp import Client, StdioServerParameters

    data = tmp_path / "data"
    shutil.copytree(fixture_index.data_dir, data)
    shutil.copytree(data / "indexes" / "fixture", data / "indexes" / "other")  # not --index
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "app.cli", "--data-dir", str(data), "mcp", "--index", "fixture"],
        env=cli_env(TANDEM_READER="none", TANDEM_CHECKER="none"),
        cwd=str(REPO),
    )
    async with Client(params, read_timeout_seconds=120) as c:
        names = {t.name for t in (await c.list_tools()).tools}
        assert names == {"list_indexes", "search", "ask", "get_passage"}
        listed = (await c.call_tool("list_indexes", {})).structured_content
        assert [i["name"] for i in listed["indexes"]] == ["fixture"]
        found = await c.call_tool("search", {"index": "fixture", "query": QUERY, "top_k": 2})
        assert not found.is_error, found.content
        hits = found.structured_content["hits"]
        refused = await c.call_tool("search", {"index": "other", "query": QUERY})
        assert refused.is_error and refused.structured_content["error"]["code"] == "forbidden"
        passage = await c.call_tool(
            "get_passage", {"index": "fixture", "chunk_id": hits[0]["chunk_id"]}
        )
        assert passage.structured_content["chunk"]["text"] == hits[0]["text"]
        missing = await c.call_tool("get_passage", {"index": "fixture", "chunk_id": "no-such"})
        assert missing.structured_content["error"]["code"] == "passage_not_found"
        answer = await c.call_tool(
            "ask", {"index": "fixture", "question": "How long does an espresso shot take?"}
        )
        assert not answer.is_error, answer.content
        assert answer.structured_content["served_by"] == "small"
        assert answer.structured_content["citations"]

    async with service(service_settings(data_dir=data)) as rest:
        body = (
            await rest.post("/v1/indexes/fixture/search", json={"query": QUERY, "top_k": 2})
        ).json()
    keys = ("rank", "chunk_id", "score", "text", "source")
    assert [{k: h[k] for k in keys} for h in hits] == [
        {k: h[k] for k in keys} for h in body["hits"]
    ]
    assert hits[0]["metadata"]["id"] == "coffee"

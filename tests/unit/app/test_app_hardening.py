"""Hardening of the HTTP surface: no 5xx from bad input, blank queries, constant-time keys,
upload names, security headers, the offline schema page (public shell, keyed document)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.controllers.answers import usage_of
from app.errors import describe
from app.jobs.errors import InvalidSource
from app.jobs.sources import missing_from_index, safe_filename
from app.security import KeyRing, is_blank

KEY = "hardening-key-0123"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.mark.parametrize(
    "text", ["", "   ", "\u200b\u200b", "\ufeff", "\u2060\u200d\u200c", "\u3164", "\t\u00a0\u2800"]
)
def test_blank_queries(text: str) -> None:
    assert is_blank(text)


@pytest.mark.parametrize("text", ["a", " x\u200b", "日本", "👍", "é"])
def test_visible_queries(text: str) -> None:
    assert not is_blank(text)


def test_keys_are_found_by_digest_and_compared_in_constant_time() -> None:
    ring = KeyRing({"k1": None, "k2": frozenset({"docs"})})
    assert ring.authenticate("k1") is not None and ring.authenticate("k1").indexes is None  # type: ignore[union-attr]
    assert ring.authenticate("k2").indexes == frozenset({"docs"})  # type: ignore[union-attr]
    assert ring.authenticate("k3") is None and ring.authenticate("") is None
    assert ring.authenticate("\udcff") is None  # a lone surrogate is no crash


def test_deep_nesting_is_a_400_not_a_500() -> None:
    status, code, _, _ = describe(RecursionError("maximum recursion depth exceeded"))
    assert (status, code) == (400, "invalid_json")


@pytest.mark.parametrize(
    "name", ["a/b/../.hidden.txt", "\u202etxt.exe.txt", "bad\x07.txt", ".env", "", "x.exe"]
)
def test_upload_names_refused(name: str) -> None:
    with pytest.raises(InvalidSource):
        safe_filename(name)


def test_upload_names_are_base_names_in_nfc() -> None:
    assert safe_filename("folder/sub\\README.txt") == "README.txt"
    assert safe_filename("cafe\u0301.md") == "caf\u00e9.md"


def test_usage_counts_llm_tokens_only() -> None:
    from types import SimpleNamespace

    R = SimpleNamespace(usage={"prompt_tokens": 10, "completion_tokens": 5}, served_by="llm")
    assert usage_of(R) == {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}  # type: ignore[arg-type]
    R.served_by = "small"
    assert usage_of(R)["total_tokens"] == 0  # type: ignore[arg-type]


def test_missing_sources_of_a_remove(fixture_index: Any, tmp_path: Path) -> None:
    data = fixture_index.data_dir
    assert missing_from_index(data, "fixture", ["docs.jsonl", "docs.jsonl#L1"]) == []
    assert missing_from_index(data, "fixture", ["nosuch.txt", "docs.jsonl"]) == ["nosuch.txt"]
    assert missing_from_index(tmp_path, "fixture", ["x"]) == []  # no index: the 404 is elsewhere


async def test_bad_input_gets_4xx_and_security_headers(service: Any, service_settings: Any) -> None:
    deep = '{"query": "x", "filters": {"a": ' + "[" * 5000 + "]" * 5000 + "}}"
    async with service(service_settings(api_keys=KEY)) as client:
        url = "/v1/indexes/fixture/search"
        r = await client.post(
            url, content=deep, headers={**AUTH, "content-type": "application/json"}
        )
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
        for query in ("\u200b\u200b", " \ufeff "):
            r = await client.post(url, json={"query": query}, headers=AUTH)
            assert r.status_code == 422 and "visible" in r.json()["error"]["message"]
        r = await client.post(
            "/v1/indexes/fixture/ask", json={"question": "\u2060", "mode": "small"}, headers=AUTH
        )
        assert r.status_code == 422
        r = await client.post(
            "/v1/indexes/fixture/ask", json={"question": "who?", "mode": "llm"}, headers=AUTH
        )
        assert r.status_code == 409 and r.json()["error"]["code"] == "not_configured"
        r = await client.get("/v1/indexes", headers=AUTH)
        assert r.headers["x-content-type-options"] == "nosniff" and "server" not in r.headers
        # The schema page: the shell is public, offline, under a CSP; the document needs the key.
        page = await client.get("/schema")
        assert page.status_code == 200 and "redoc.standalone.js" in page.text
        assert "https://" not in page.text and "<script>" not in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        asset = await client.get("/schema/static/redoc.standalone.js")
        assert asset.status_code == 200 and len(asset.content) > 500_000
        assert (await client.get("/schema/openapi.json")).status_code == 401
        doc = await client.get("/schema/openapi.json", headers=AUTH)
        assert doc.status_code == 200
        ask = json.loads(doc.text)["paths"]["/v1/indexes/{name}/ask"]["post"]["responses"]
        assert {"409", "503"} <= set(ask)
    async with service(service_settings(api_keys=KEY, public_schema=True)) as client:
        assert (await client.get("/schema/openapi.json")).status_code == 200
        assert (await client.get("/v1/indexes")).status_code == 401


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["search", "fixture", ""], 2, "visible text"),
        (["search", "fixture", "\u200b\u200b"], 2, "visible text"),
        (["ask", "fixture", "\u2060 "], 2, "visible text"),
        (["search", "nosuch", "hello"], 1, "not found"),
        (["ask", "nosuch", "hello"], 1, "not found"),  # as search and the API's 404
    ],
)
@pytest.mark.slow  # a CLI subprocess each (seconds apiece on a busy machine)
def test_cli_agrees_with_the_api(fixture_index: Any, args: list[str], code: int, says: str) -> None:
    import subprocess

    from tests.serving import cli_env, tandem

    done = subprocess.run(
        tandem("--data-dir", str(fixture_index.data_dir), *args),
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == code, done.stderr
    assert says in done.stderr + done.stdout

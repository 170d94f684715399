"""The jobs API with the embedded in-process worker (no Redis), through Litestar's test client."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from stores.layout import IndexLayout

ADMIN = {"Authorization": "Bearer admin-key-0123"}
FIXTURE_ONLY = {"Authorization": "Bearer fixture-key-0123"}
KEYS = "admin-key-0123,fixture-key-0123:fixture"
GLACIER = {
    "id": "glacier",
    "topic": "science",
    "text": "A glacier is a persistent body of dense ice that flows under its own weight; "
    "moraines are the rocks and debris a glacier leaves behind when it retreats.",
}


@pytest.fixture
def workspace(fixture_index: Any, tmp_path: Path) -> tuple[Any, Path]:
    copy = fixture_index.copy_to(tmp_path)
    root = tmp_path / "sources"
    (root / "extra").mkdir(parents=True)
    (root / "extra" / "glacier.jsonl").write_text(json.dumps(GLACIER) + "\n")
    (root / "notes").mkdir()
    (root / "notes" / "owls.md").write_text(
        "# Owls\n\nOwls hunt at night; their feathers have serrated edges that make their "
        "flight almost silent, and their eyes are fixed in their sockets."
    )
    return copy, root


async def wait_done(client: Any, job_id: str, headers: dict[str, str], timeout: float = 120):
    seen = []
    deadline = time.monotonic() + timeout
    while True:
        r = await client.get(f"/v1/jobs/{job_id}", headers=headers)
        assert r.status_code == 200, r.text
        job = r.json()
        seen.append(job)
        if job["state"] in ("done", "failed", "cancelled"):
            return job, seen
        assert time.monotonic() < deadline, job
        await asyncio.sleep(0.1)


def error_code(r: Any) -> str:
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    return str(body["error"]["code"])


async def test_build_add_upload_and_search(
    service: Any, service_settings: Any, workspace: tuple[Any, Path]
) -> None:
    copy, root = workspace
    settings = service_settings(data_dir=copy.data_dir, sources_root=root, api_keys=KEYS)
    async with service(settings) as client:
        # add documents from the sources root to the served index
        r = await client.post(
            "/v1/indexes/fixture/jobs",
            json={"action": "add", "sources": ["extra"], "options": {"dedup": True}},
            headers=FIXTURE_ONLY,
        )
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        assert r.json() == {
            "job_id": job_id,
            "index": "fixture",
            "action": "add",
            "state": "queued",
        }
        assert r.headers["location"] == f"/v1/jobs/{job_id}"
        job, _ = await wait_done(client, job_id, FIXTURE_ONLY)
        assert job["state"] == "done", job
        assert set(job) >= {"job_id", "index", "action", "state", "progress", "result", "error"}
        assert job["error"] is None and job["result"]["version"] == 2
        assert job["result"]["documents"] == 9 and job["result"]["embedded"] == 1
        assert job["progress"] == {
            "documents": 9,
            "chunks_total": 1,
            "chunks_done": 1,
            "eta_s": 0.0,
        }
        hits = await client.post(
            "/v1/indexes/fixture/search",
            json={"query": "moraines left by retreating ice", "top_k": 1},
            headers=ADMIN,
        )
        assert (
            hits.json()["version"] == 2 and hits.json()["hits"][0]["doc_id"] == "glacier.jsonl#L1"
        )

        # a new index from an upload; the uploaded files are removed afterwards
        r = await client.post(
            "/v1/indexes/birds/jobs",
            files={"files": ("owls.md", (root / "notes" / "owls.md").read_bytes())},
            data={"options": json.dumps({"chunk_tokens": 64})},
            headers=ADMIN,
        )
        assert r.status_code == 202, r.text
        job, _ = await wait_done(client, r.json()["job_id"], ADMIN)
        assert job["state"] == "done" and job["action"] == "build", job
        assert not (copy.data_dir / "uploads" / job["job_id"]).exists()
        r = await client.post(
            "/v1/indexes/birds/search", json={"query": "silent flight", "top_k": 1}, headers=ADMIN
        )
        assert r.status_code == 200 and r.json()["hits"][0]["source"] == "owls.md"

        # listings, and what a key restricted to "fixture" may see
        listed = (await client.get("/v1/jobs", headers=ADMIN)).json()["jobs"]
        assert [j["index"] for j in listed] == ["birds", "fixture"]
        mine = (await client.get("/v1/jobs", headers=FIXTURE_ONLY)).json()["jobs"]
        assert [j["index"] for j in mine] == ["fixture"]
        r = await client.get(f"/v1/jobs/{job['job_id']}", headers=FIXTURE_ONLY)
        assert r.status_code == 404 and error_code(r) == "job_not_found"
        r = await client.get("/v1/jobs?index=birds", headers=FIXTURE_ONLY)
        assert r.status_code == 403 and error_code(r) == "forbidden"
        r = await client.post(
            "/v1/indexes/birds/jobs", json={"sources": ["notes"]}, headers=FIXTURE_ONLY
        )
        assert r.status_code == 403 and error_code(r) == "forbidden"
        r = await client.get("/v1/jobs")
        assert r.status_code == 401 and error_code(r) == "unauthorized"


async def test_one_job_per_index_cancel_and_refusals(
    service: Any, service_settings: Any, workspace: tuple[Any, Path]
) -> None:
    copy, root = workspace
    settings = service_settings(
        data_dir=copy.data_dir, sources_root=root, upload_max_bytes=4096, upload_max_files=2
    )
    layout = IndexLayout(copy.data_dir, "fixture")
    async with service(settings) as client:
        with layout.lock():  # a build outside the jobs API (tandem index build) holds the index
            r = await client.post(
                "/v1/indexes/fixture/jobs", json={"action": "build", "sources": ["extra"]}
            )
            assert r.status_code == 202, r.text
            first = r.json()["job_id"]
            for _ in range(100):
                if (await client.get(f"/v1/jobs/{first}")).json()["state"] == "running":
                    break
                await asyncio.sleep(0.05)
            # a second job for the same index: 409 naming the first
            r = await client.post("/v1/indexes/fixture/jobs", json={"sources": ["notes"]})
            assert r.status_code == 409 and error_code(r) == "index_busy"
            assert first in r.json()["error"]["message"]
            # cancel the waiting job
            r = await client.delete(f"/v1/jobs/{first}")
            assert r.status_code == 200 and r.json()["job_id"] == first
            job, _ = await wait_done(client, first, {})
            assert job["state"] == "cancelled" and job["error"]["code"] == "cancelled"
        r = await client.delete(f"/v1/jobs/{first}")
        assert r.status_code == 409 and error_code(r) == "job_finished"
        assert layout.current_version() == 1  # nothing was published

        refusals = [
            ({"sources": ["../fixture-index"]}, 403, "source_forbidden"),
            ({"sources": ["/etc"]}, 400, "invalid_source"),
            ({"sources": ["missing"]}, 400, "invalid_source"),
            ({"sources": []}, 422, "validation_error"),
            ({"action": "merge", "sources": ["extra"]}, 422, "validation_error"),
            ({"sources": ["extra"], "options": {"model": "x"}}, 422, "validation_error"),
        ]
        for body, status, code in refusals:
            r = await client.post("/v1/indexes/fixture/jobs", json=body)
            assert (r.status_code, error_code(r)) == (status, code), (body, r.text)
        r = await client.post(
            "/v1/indexes/nothing/jobs", json={"action": "add", "sources": ["extra"]}
        )
        assert (r.status_code, error_code(r)) == (404, "index_not_found")
        r = await client.post("/v1/indexes/bad..name/jobs", json={"sources": ["extra"]})
        assert (r.status_code, error_code(r)) == (400, "invalid_index_name")
        r = await client.post(
            "/v1/indexes/fixture/jobs", content=b"x", headers={"Content-Type": "text/plain"}
        )
        assert (r.status_code, error_code(r)) == (415, "unsupported_media_type")
        r = await client.post(
            "/v1/indexes/fixture/jobs",
            content=b"{not json",
            headers={"Content-Type": "application/json"},
        )
        assert (r.status_code, error_code(r)) == (400, "invalid_json")

        # uploads over the limits: 413, and nothing is left behind
        big = {"files": ("big.txt", b"word " * 2000)}
        r = await client.post("/v1/indexes/fixture/jobs", files=big)
        assert (r.status_code, error_code(r)) == (413, "payload_too_large")
        many = [("files", (f"f{i}.txt", b"some words")) for i in range(3)]
        r = await client.post("/v1/indexes/fixture/jobs", files=many)
        assert (r.status_code, error_code(r)) == (413, "payload_too_large")
        r = await client.post("/v1/indexes/fixture/jobs", files={"files": ("x.exe", b"MZ")})
        assert (r.status_code, error_code(r)) == (400, "invalid_source")
        uploads = copy.data_dir / "uploads"
        assert not uploads.exists() or not any(uploads.iterdir())
        assert (await client.get("/v1/jobs/" + "0" * 32)).status_code == 404

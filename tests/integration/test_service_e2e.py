"""End to end: ``tandem serve`` as a subprocess, queried over HTTP while the index is rebuilt."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import FIXTURE_DOCS, write_corpus
from tests.serving import REPO, cli_env, tandem, tandem_serve

KEY = "e2e-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
PUMPERNICKEL = {
    "id": "rye",
    "topic": "food",
    "text": "Pumpernickel is a dense rye bread from Westphalia, baked for up to a day at a low "
    "temperature in a steam chamber, which turns it almost black.",
}


@pytest.fixture
def served(fixture_index: Any, tmp_path: Path, free_port: Any, redis_url: str) -> Iterator[Any]:
    copy = fixture_index.copy_to(tmp_path)
    port = free_port()
    log_path = tmp_path / "serve.log"
    env = cli_env(
        TANDEM_API_KEYS=KEY,
        TANDEM_REDIS_URL=redis_url,
        TANDEM_REFRESH_INTERVAL_MS="100",
        TANDEM_CACHE_TTL_S="600",
        TANDEM_RATE_LIMIT_REQUESTS="0",
    )
    with tandem_serve(copy.data_dir, port, env, log_path) as base:
        yield base, copy, log_path, env


@pytest.mark.slow
def test_serve_answers_and_picks_up_a_rebuilt_index(served: Any):
    base, copy, log_path, env = served
    query = {"query": "dense black rye bread from Westphalia", "top_k": 1}
    with httpx.Client(base_url=base, headers=AUTH, timeout=30) as client:
        assert client.get("/health/live").status_code == 200
        assert client.post("/v1/indexes/fixture/search", json=query).status_code == 200
        assert httpx.post(f"{base}/v1/indexes/fixture/search", json=query).status_code == 401
        first = client.post(
            "/v1/indexes/fixture/search", json=query, headers={"X-Request-ID": "e2e-first"}
        )
        assert first.headers["x-request-id"] == "e2e-first"
        v1 = first.json()
        assert v1["version"] == 1 and v1["cached"] is True
        assert v1["hits"][0]["metadata"]["id"] != "rye"

        # Rebuild with the CLI while requests keep flowing.
        statuses: list[int] = []
        stop = threading.Event()

        def traffic() -> None:
            with httpx.Client(base_url=base, headers=AUTH, timeout=30) as c:
                while not stop.is_set():
                    r = c.post("/v1/indexes/fixture/search", json={"query": "chess knight"})
                    statuses.append(r.status_code)
                    time.sleep(0.05)

        worker = threading.Thread(target=traffic)
        worker.start()
        try:
            write_corpus(copy.corpus, [*FIXTURE_DOCS, PUMPERNICKEL])
            build = subprocess.run(
                tandem(
                    "--data-dir",
                    str(copy.data_dir),
                    "--json",
                    "index",
                    "build",
                    "fixture",
                    str(copy.corpus),
                ),
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
                timeout=180,
            )
            assert build.returncode == 0, build.stderr
            assert json.loads(build.stdout)["version"] == 2
            deadline = time.monotonic() + 10
            while True:
                answer = client.post("/v1/indexes/fixture/search", json=query).json()
                if answer["version"] == 2:
                    break
                assert time.monotonic() < deadline, "v2 never served"
                time.sleep(0.05)
        finally:
            stop.set()
            worker.join()
        assert statuses and set(statuses) == {200}  # no downtime
        assert answer["cached"] is False  # never the old version's cache entry
        assert answer["hits"][0]["metadata"]["id"] == "rye"
        again = client.post("/v1/indexes/fixture/search", json=query).json()
        assert again["version"] == 2 and again["cached"] is True

        metrics = client.get("/metrics").text
        assert 'tandem_index_version{index="fixture"} 2.0' in metrics

    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    access = [entry for entry in lines if entry.get("logger") == "tandem.access"]
    assert any(
        e["request_id"] == "e2e-first" and e["status"] == 200 and e["cached"] is True
        for e in access
    )
    assert all({"request_id", "method", "route", "status", "duration_ms"} <= set(e) for e in access)


def test_serve_refuses_an_open_bind_without_keys(tmp_path: Path):
    result = subprocess.run(
        tandem("--data-dir", str(tmp_path), "serve", "--host", "0.0.0.0", "--port", "9"),
        cwd=REPO,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "TANDEM_API_KEYS" in result.stderr

"""Fuzzing the live service from its own OpenAPI document with schemathesis: 0 server errors.

``tandem serve`` runs as a subprocess on 127.0.0.1 over a copy of the fixture index, with two
API keys (one for every index, one restricted to ``fixture``) and the in-process job worker
(no sources root, so no job reads files). Every operation of ``/schema/openapi.json`` is
called with valid and invalid data (schemathesis's positive and negative modes, a bounded,
deterministic number of examples each), once with a key and once without. Then a stateful run
follows links (list indexes -> read, search and ask one; list jobs -> read and cancel one).

A pass means: no 5xx at all (every dependency of this server is configured and up, so not even
a 503), every 4xx in the one error shape ``{"error": {"code", "message"}}``, no unhandled
exception in the server's log, and the server still serving normally afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402
from hypothesis.stateful import run_state_machine_as_test  # noqa: E402

from tests.serving import cli_env, tandem_serve  # noqa: E402

KEY = "fuzz-key-0123456789"
SCOPED = "fuzz-scoped-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
#: Examples per operation and mode: bounded so the whole file runs in about a minute on 2 cores.
MAX_EXAMPLES = 12
PUBLIC = ("/health/",)


class Live:
    def __init__(self, base: str, log: Path) -> None:
        self.base = base
        self.log = log
        self.calls = 0
        self.statuses: dict[int, int] = {}


@pytest.fixture(scope="module")
def live(fixture_index: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    from tests.conftest import find_free_port

    root = tmp_path_factory.mktemp("fuzz")
    copy = fixture_index.copy_to(root)
    log = root / "serve.log"
    env = cli_env(
        TANDEM_API_KEYS=f"{KEY},{SCOPED}:{copy.name}",
        TANDEM_RATE_LIMIT_REQUESTS="0",
        TANDEM_CACHE_TTL_S="60",
        TANDEM_JOBS_BACKEND="local",
        TANDEM_ASK_TIMEOUT_S="20",
    )
    with tandem_serve(copy.data_dir, find_free_port(), env, log) as base:
        yield Live(base, log)


@pytest.fixture(scope="module")
def api_schema(live: Live) -> Any:
    schema = schemathesis.openapi.from_url(f"{live.base}/schema/openapi.json", headers=AUTH)
    schema.config.generation.update(
        modes=["positive", "negative"],
        max_examples=MAX_EXAMPLES,
        deterministic=True,  # the same cases every run: CI never flakes on a new example
        database="none",
    )
    return schema


def check_response(live: Live, case: Any, response: Any, authenticated: bool) -> None:
    """No 5xx; a 4xx in the one error shape; 401 without a key except on public routes."""
    live.calls += 1
    live.statuses[response.status_code] = live.statuses.get(response.status_code, 0) + 1
    where = f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
    assert response.status_code < 500, where
    if 400 <= response.status_code < 500:
        body = response.json()
        assert set(body) == {"error"}, where
        assert isinstance(body["error"]["code"], str) and body["error"]["code"], where
        assert isinstance(body["error"]["message"], str), where
    if not authenticated and not case.path.startswith(PUBLIC):
        assert response.status_code in (401, 404, 405), where


@pytest.mark.slow
def test_no_server_error_with_and_without_a_key(api_schema: Any, live: Live) -> None:
    """Every operation, valid and invalid data, each case with a key and without one.

    (Hypothesis is driven here rather than through ``schemathesis.pytest.from_fixture``, whose
    lazy loader does not run under pytest 9.)"""
    from hypothesis import given
    from schemathesis.generation import GenerationMode

    operations = [result.ok() for result in api_schema.get_all_operations()]
    paths = {op.path for op in operations}
    assert {"/v1/indexes/{name}/search", "/v1/indexes/{name}/ask", "/v1/jobs"} <= paths
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                derandomize=True,  # the same cases every run: CI never flakes on a new one
                database=None,
            )
            def run(case: Any) -> None:
                for headers, authenticated in ((AUTH, True), ({"Authorization": ""}, False)):
                    response = case.call(base_url=live.base, headers=headers, timeout=60)
                    check_response(live, case, response, authenticated)

            run()
    assert live.calls >= len(operations) * 2
    assert any(400 <= s < 500 for s in live.statuses) and 200 in live.statuses


@pytest.mark.slow
def test_stateful_links_and_the_server_still_serves(live: Live) -> None:
    """Follow links between operations, then check the server answers normally and logged no
    unhandled exception during the whole module."""
    raw = httpx.get(f"{live.base}/schema/openapi.json", headers=AUTH, timeout=30).json()
    links = {
        ("/v1/indexes", "get"): {
            "SearchIt": ("search_index", {"name": "$response.body#/indexes/0/name"}),
            "AskIt": ("ask_index", {"name": "$response.body#/indexes/0/name"}),
            "ReadIt": ("get_index", {"name": "$response.body#/indexes/0/name"}),
        },
        ("/v1/jobs", "get"): {
            "ReadJob": ("get_job", {"job_id": "$response.body#/jobs/0/job_id"}),
            "CancelJob": ("cancel_job", {"job_id": "$response.body#/jobs/0/job_id"}),
        },
    }
    for (path, method), named in links.items():
        item = raw["paths"].get(path) or raw["paths"][path + "/"]
        item[method]["responses"]["200"]["links"] = {
            name: {"operationId": op, "parameters": params} for name, (op, params) in named.items()
        }
    api_schema = schemathesis.openapi.from_dict(raw)
    api_schema.config.generation.update(modes=["positive", "negative"], database="none")
    machine = api_schema.as_state_machine()
    before = live.calls

    class Machine(machine):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": live.base, "headers": AUTH, "timeout": 60}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            check_response(live, case, response, authenticated=True)

    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=15,
            stateful_step_count=6,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        ),
    )

    assert live.calls > before + 15  # the machine did call the server

    with httpx.Client(base_url=live.base, headers=AUTH, timeout=30) as client:
        assert client.get("/health/live").json() == {"status": "ok"}
        assert client.get("/health/ready").status_code == 200
        r = client.post("/v1/indexes/fixture/search", json={"query": "espresso crema", "top_k": 1})
        assert r.status_code == 200 and r.json()["hits"][0]["metadata"]["id"] == "coffee"
    errors = []
    for line in live.log.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("level") in ("error", "critical") or "exc" in record:
            errors.append(line[:500])
        if record.get("msg") == "request":
            assert int(record.get("status", 0)) < 500, line[:500]
    assert not errors, "\n".join(errors[:5])

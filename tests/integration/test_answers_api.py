"""``/v1/indexes/{name}/ask`` over the real fixture index, with a real local LLM server that
answers well, slowly, with errors, or with citations to passages it was not given."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_llm import FakeLLM

ASK = "/v1/indexes/fixture/ask"
KEY = "key-full-0123456789"
OTHER = "key-other-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
QUESTION = "How does charge separate in a storm cloud?"
FIELDS = {
    "index",
    "version",
    "answer",
    "citations",
    "grounded",
    "confidence",
    "served_by",
    "reason",
    "cached",
    "timings_ms",
    "invalid_citations",
    "extract",
    "model",
}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server


@pytest.fixture
def llm(fake: FakeLLM) -> FakeLLM:
    """The module's fake LLM, reset: answers well, citing [1] and a passage never given."""
    fake.mode = "ok"
    fake.delay_s = 5.0
    fake.answer = (
        "Collisions between ice crystals and graupel separate the charge [1]. "
        "Lightning is made of cheese [7]."
    )
    fake.requests.clear()
    return fake


@pytest.fixture(scope="module")
def tiny_checker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real cross-encoder checker folder (MiniLM with an untrained one-logit head)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from smallmodels.spec import DEFAULT_EMBEDDER, resolve

    base = resolve(DEFAULT_EMBEDDER, DEFAULT_EMBEDDER).path
    out = tmp_path_factory.mktemp("checker") / "checker-tiny"
    AutoModelForSequenceClassification.from_pretrained(base, num_labels=1).save_pretrained(out)
    AutoTokenizer.from_pretrained(base).save_pretrained(out)
    return out


def settings_with(service_settings: Any, **overrides: Any) -> Any:
    values: dict[str, Any] = {"reader": "none", "checker": "none", "small_confident": 1.01}
    values.update(overrides)
    return service_settings(**values)


def with_llm(service_settings: Any, llm: FakeLLM, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "llm_url": llm.url,
        "llm_model": "fake-llm",
        "llm_first_token_timeout_s": 1.0,
        "llm_timeout_s": 2.0,
        "llm_retries": 0,
    }
    values.update(overrides)
    return settings_with(service_settings, **values)


async def ask(client: Any, **body: Any) -> dict[str, Any]:
    body.setdefault("question", QUESTION)
    r = await client.post(ASK, json=body)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    assert set(out) == FIELDS
    return out


# -- small mode and routing without an LLM -----------------------------------------------------
async def test_small_mode_answers_with_a_cited_sentence(service: Any, service_settings: Any):
    async with service(settings_with(service_settings)) as client:
        out = await ask(client, mode="small")
        assert out["served_by"] == "small" and out["reason"] == "requested"
        assert out["index"] == "fixture" and out["version"] == 1 and not out["cached"]
        assert "graupel" in out["answer"] and out["answer"].endswith("[1]")
        [cite] = out["citations"]
        assert cite["n"] == 1 and cite["doc_id"].startswith("docs.jsonl")
        assert cite["source"] == "docs.jsonl" and cite["chunk_id"].startswith(cite["doc_id"])
        assert out["extract"]["sentence"] in cite["text"]
        assert out["extract"]["method"] == "embedder" and out["extract"]["found"]
        # Nothing checked this answer (no reader, no checker), and the label says so.
        assert out["grounded"]["method"] == "unchecked" and out["grounded"]["score"] is None
        assert 0.0 <= out["confidence"] <= 1.0
        assert {"search", "small", "total"} <= set(out["timings_ms"])


async def test_auto_without_an_llm_serves_small_and_mode_llm_is_409(
    service: Any, service_settings: Any
):
    async with service(settings_with(service_settings)) as client:
        out = await ask(client)
        assert (out["served_by"], out["reason"]) == ("small", "no_llm")
        r = await client.post(ASK, json={"question": QUESTION, "mode": "llm"})
        assert r.status_code == 409  # not configured: a configuration question, not an outage
        assert r.json()["error"]["code"] == "not_configured"
        assert "TANDEM_LLM_URL" in r.json()["error"]["message"]
        ready = (await client.get("/health/ready")).json()
        assert ready["status"] == "ready"
        assert ready["components"]["llm"] == "absent"
        assert "small answers only" in ready["details"]["llm"]
        assert "no reader" in ready["details"]["answers"]


async def test_no_answer_below_the_confidence_floor(service: Any, service_settings: Any):
    async with service(settings_with(service_settings, small_min_confidence=1.0)) as client:
        out = await ask(client, mode="small")
        assert out["answer"] == "No answer found in the indexed documents."
        assert out["citations"] == [] and out["extract"]["found"] is False
        assert out["grounded"]["score"] is None


# -- with an LLM -------------------------------------------------------------------------------
async def test_llm_answer_with_invalid_citations_removed(
    service: Any, service_settings: Any, llm: FakeLLM
):
    async with service(with_llm(service_settings, llm)) as client:
        out = await ask(client, mode="llm")
        assert (out["served_by"], out["reason"], out["model"]) == ("llm", "requested", "fake-llm")
        assert out["answer"] == (
            "Collisions between ice crystals and graupel separate the charge [1]. "
            "Lightning is made of cheese."
        )
        assert out["invalid_citations"] == [7]
        [cite] = out["citations"]
        search = (await client.post("/v1/indexes/fixture/search", json={"query": QUESTION})).json()
        first = search["hits"][0]
        assert cite == {
            "n": 1,
            "source": first["source"],
            "doc_id": first["doc_id"],
            "chunk_id": first["chunk_id"],
            "text": first["text"],
        }
        assert out["grounded"]["score"] is None and out["grounded"]["method"] == "none"
        assert "TANDEM_CHECKER" in out["grounded"]["reason"]
        timings = set(out["timings_ms"]) - {"cache"}
        cost = {"llm_prompt_tokens", "llm_completion_tokens"}  # the answer's cost (issue 16)
        assert timings == {"search", "prompt", "llm", "llm_first_token", "total"} | cost
        # The prompt numbered the passages and asked the question.
        user = llm.requests[-1]["messages"][-1]["content"]
        assert "\n[1] " in user and user.endswith(f"Question: {QUESTION}")
        assert llm.requests[-1]["stream"] is True


async def test_auto_cascade_serves_a_confident_small_answer_without_the_llm(
    service: Any, service_settings: Any, llm: FakeLLM
):
    async with service(with_llm(service_settings, llm, small_confident=0.0)) as client:
        out = await ask(client)
        assert (out["served_by"], out["reason"]) == ("small", "confident_small")
        assert llm.requests == []
        metrics = (await client.get("/metrics")).text
        assert 'tandem_answers_total{reason="confident_small",served_by="small"} 1.0' in metrics
        saved = [
            line
            for line in metrics.splitlines()
            if line.startswith('tandem_llm_tokens_saved_total{reason="confident_small"}')
        ]
        assert saved and float(saved[0].split()[-1]) > 100
    async with service(with_llm(service_settings, llm, small_confident=1.01)) as client:
        out = await ask(client)
        assert (out["served_by"], out["reason"]) == ("llm", "low_confidence")
        assert len(llm.requests) == 1


@pytest.mark.parametrize(("mode", "reason"), [("error", "llm_error"), ("slow", "llm_timeout")])
async def test_llm_failures_fall_back_to_the_small_answer_in_time(
    service: Any, service_settings: Any, llm: FakeLLM, mode: str, reason: str
):
    llm.mode = mode
    async with service(with_llm(service_settings, llm)) as client:
        t = time.perf_counter()
        out = await ask(client, mode="llm")
        assert time.perf_counter() - t < 6.0  # first-token limit 1 s, then the small answer
        assert (out["served_by"], out["reason"]) == ("small", reason)
        assert out["citations"] and "graupel" in out["answer"]
        # A fallback after a passing failure is not cached: the next request tries again.
        again = await ask(client, mode="llm")
        assert again["served_by"] == "small" and not again["cached"]
        assert len(llm.requests) == 2
        metrics = (await client.get("/metrics")).text
        assert f'tandem_llm_calls_total{{result="{reason.removeprefix("llm_")}"}} 2.0' in metrics


async def test_the_circuit_opens_and_stops_calling_a_failing_llm(
    service: Any, service_settings: Any, llm: FakeLLM
):
    llm.mode = "error"
    cfg = with_llm(service_settings, llm, llm_breaker_failures=2, llm_breaker_reset_s=60)
    async with service(cfg) as client:
        reasons = [(await ask(client))["reason"] for _ in range(4)]
        assert reasons == ["llm_error", "llm_error", "circuit_open", "circuit_open"]
        assert len(llm.requests) == 2  # the open circuit spared the LLM
        ready = (await client.get("/health/ready")).json()
        assert ready["status"] == "degraded" and ready["components"]["llm"] == "down"
        assert "circuit open" in ready["details"]["llm"]
        llm.mode = "ok"
        state = client.app.state.tandem.extras["answers"].llm.breaker
        state._open_until = time.monotonic()  # the pause is over: the next call probes
        out = await ask(client)
        assert (out["served_by"], out["reason"]) == ("llm", "low_confidence")
        assert (await client.get("/health/ready")).json()["components"]["llm"] == "ok"


async def test_answers_are_cached_per_mode(service: Any, service_settings: Any, llm: FakeLLM):
    async with service(with_llm(service_settings, llm)) as client:
        first = await ask(client)
        second = await ask(client)
        assert first["served_by"] == "llm" and second["served_by"] == "cache"
        assert second["cached"] and second["reason"] == first["reason"]
        assert second["answer"] == first["answer"] and second["citations"] == first["citations"]
        assert set(second["timings_ms"]) == {"cache", "total"}
        small = await ask(client, mode="small")
        assert small["served_by"] == "small" and not small["cached"]
        assert len(llm.requests) == 1


async def test_groundedness_is_checked_on_llm_answers(
    service: Any, service_settings: Any, llm: FakeLLM, tiny_checker: Path
):
    for threshold, unsupported in ((0.0, 0), (1.0, 2)):
        cfg = with_llm(
            service_settings, llm, checker=str(tiny_checker), checker_threshold=threshold
        )
        async with service(cfg) as client:
            out = await ask(client, mode="llm")
            g = out["grounded"]
            assert g["method"] == "checker" and g["checker"] == "checker-tiny"
            assert 0.0 <= g["score"] <= 1.0 and out["confidence"] == g["score"]
            assert len(g["unsupported"]) == unsupported
            assert "check" in out["timings_ms"]
            ready = (await client.get("/health/ready")).json()
            assert "checker checker-tiny" in ready["details"]["answers"]


# -- keys, bounds, errors ----------------------------------------------------------------------
async def test_keys_scopes_and_bounds(service: Any, service_settings: Any):
    cfg = settings_with(service_settings, api_keys=f"{KEY},{OTHER}:other", max_query_chars=50)
    async with service(cfg) as client:
        r = await client.post(ASK, json={"question": QUESTION})
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
        r = await client.post(
            ASK, json={"question": QUESTION}, headers={"Authorization": f"Bearer {OTHER}"}
        )
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
        for body, status in [
            ({"question": "x" * 51}, 422),
            ({"question": "   "}, 422),
            ({"question": QUESTION, "mode": "huge"}, 422),
            ({"question": QUESTION, "top_k": 0}, 422),
            ({"question": QUESTION, "top_k": "3"}, 422),
            ({"question": QUESTION, "bogus": 1}, 422),
            ({}, 422),
        ]:
            r = await client.post(ASK, json=body, headers=AUTH)
            assert r.status_code == status, (body, r.text)
            assert set(r.json()) == {"error"}
        r = await client.post("/v1/indexes/nope/ask", json={"question": QUESTION}, headers=AUTH)
        assert r.status_code == 404 and r.json()["error"]["code"] == "index_not_found"
        for route in (ASK, "/v1/chat/completions"):
            r = await client.post(
                route,
                content=json.dumps({"question": QUESTION}).encode(),
                headers={**AUTH, "Content-Type": "text/plain"},
            )
            assert r.status_code == 415, r.text
            assert r.json()["error"]["code"] == "unsupported_media_type"
        r = await client.post(ASK, json={"question": QUESTION, "top_k": 2}, headers=AUTH)
        assert r.status_code == 200 and r.json()["served_by"] == "small"
        models = (
            await client.get("/v1/models", headers={"Authorization": f"Bearer {OTHER}"})
        ).json()
        assert models["data"] == []

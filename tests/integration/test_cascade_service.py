"""``TANDEM_UNGROUNDED`` (flag, drop, fallback) and the cost of each answer, through the real
service over the fixture index, a real LLM server on 127.0.0.1 and a real cross-encoder checker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_llm import FakeLLM

ASK = "/v1/indexes/fixture/ask"
QUESTION = "How does charge separate in a storm cloud?"
GOOD = "Collisions between ice crystals and graupel separate the charge [1]."
BAD = "The moon is made of green cheese and sings at night [2]."


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    with FakeLLM(answer=f"{GOOD} {BAD}") as server:
        yield server


@pytest.fixture(scope="module")
def checker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real cross-encoder checker folder (MiniLM with an untrained one-logit head)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from smallmodels.spec import DEFAULT_EMBEDDER, resolve

    base = resolve(DEFAULT_EMBEDDER, DEFAULT_EMBEDDER).path
    out = tmp_path_factory.mktemp("checker") / "checker-tiny"
    import torch

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1)
    with torch.no_grad():  # a small, seeded head: distinct scores, never saturated at 0 or 1
        model.classifier.weight.normal_(0.0, 0.05)
        model.classifier.bias.zero_()
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(base).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def between(checker: Path, fixture_index: Any) -> float:
    """A checker threshold between the scores of the two sentences (so one is unsupported)."""
    from retrievers.retriever import Retriever
    from smallmodels.checker import load_checker

    r = Retriever(fixture_index.data_dir, "fixture")
    try:
        hits = r.search(QUESTION, top_k=5).hits
    finally:
        r.close()
    c = load_checker(str(checker))
    g = c.check(QUESTION, f"{GOOD} {BAD}", [h.text for h in hits])
    a, b = sorted(s.score for s in g.sentences)
    assert a < b, "the two sentences must score differently"
    return (a + b) / 2


def settings(make: Any, llm: FakeLLM, checker: Path, **extra: Any) -> Any:
    values = {
        "reader": "none", "checker": str(checker), "llm_url": llm.url, "llm_model": "fake-llm",
        "llm_retries": 0, "small_confident": 1.01,
    }  # fmt: skip
    values.update(extra)
    return make(**values)


async def ask(client: Any, **body: Any) -> dict[str, Any]:
    r = await client.post(ASK, json={"question": QUESTION, **body})
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


async def test_flag_keeps_the_answer_and_reports_its_cost(
    service: Any, service_settings: Any, llm: FakeLLM, checker: Path, between: float
) -> None:
    s = settings(service_settings, llm, checker, checker_threshold=between)
    async with service(s) as client:
        out = await ask(client, mode="llm")
        assert out["served_by"] == "llm" and out["reason"] == "requested"
        assert out["answer"] == f"{GOOD} {BAD}"
        assert len(out["grounded"]["unsupported"]) == 1
        t = out["timings_ms"]
        assert t["llm_prompt_tokens"] > 50 and t["llm_completion_tokens"] > 0
        metrics = (await client.get("/metrics")).text
        assert 'tandem_llm_ungrounded_total{action="flagged"} 1.0' in metrics
        assert "tandem_llm_seconds_total" in metrics
        assert 'stage="llm_prompt_tokens"' not in metrics  # a cost, not a stage latency


async def test_drop_removes_the_unsupported_sentence(
    service: Any, service_settings: Any, llm: FakeLLM, checker: Path, between: float
) -> None:
    s = settings(service_settings, llm, checker, checker_threshold=between, ungrounded="drop")
    async with service(s) as client:
        out = await ask(client, mode="llm")
        assert out["served_by"] == "llm"
        kept = [x for x in (GOOD, BAD) if x in out["answer"]]
        assert len(kept) == 1 and out["answer"] == kept[0]
        assert out["grounded"]["unsupported"] == []
        dropped = GOOD if kept[0] == BAD else BAD
        assert "removed 1 unsupported" in out["grounded"]["reason"]
        assert dropped in out["grounded"]["reason"]
        assert out["grounded"]["score"] >= between
        assert [c["n"] for c in out["citations"]] == [1 if kept[0] == GOOD else 2]
        metrics = (await client.get("/metrics")).text
        assert 'tandem_llm_ungrounded_total{action="dropped"} 1.0' in metrics


@pytest.mark.parametrize("policy", ["fallback", "drop"])
async def test_fallback_serves_the_small_answer(
    service: Any, service_settings: Any, llm: FakeLLM, checker: Path, policy: str
) -> None:
    # Threshold 1: no sentence is supported; drop has nothing left and falls back too.
    s = settings(service_settings, llm, checker, checker_threshold=1.0, ungrounded=policy)
    async with service(s) as client:
        out = await ask(client, mode="llm")
        assert (out["served_by"], out["reason"]) == ("small", "llm_ungrounded")
        assert out["extract"] is not None and out["model"] is None
        metrics = (await client.get("/metrics")).text
        assert 'tandem_llm_ungrounded_total{action="fallback"} 1.0' in metrics


async def test_a_confident_small_answer_reports_what_it_saved(
    service: Any, service_settings: Any, llm: FakeLLM, checker: Path, tmp_path: Path
) -> None:
    model = tmp_path / "cost.json"
    model.write_text(
        '{"model": "fake-llm", "seconds_base": 0.5, "seconds_per_prompt_token": 0.01, '
        '"completion_tokens_mean": 20}'
    )
    s = settings(service_settings, llm, checker, small_confident=0.0, llm_cost_model=model)
    async with service(s) as client:
        out = await ask(client)
        assert (out["served_by"], out["reason"]) == ("small", "confident_small")
        t = out["timings_ms"]
        prompt_tokens = t["llm_saved_tokens"] - 20
        assert prompt_tokens > 50
        assert t["llm_saved_ms"] == pytest.approx((0.5 + 0.01 * prompt_tokens) * 1000, abs=1)
        metrics = (await client.get("/metrics")).text
        line = next(
            x for x in metrics.splitlines()
            if x.startswith('tandem_llm_seconds_saved_total{reason="confident_small"}')
        )  # fmt: skip
        assert float(line.split()[-1]) == pytest.approx(t["llm_saved_ms"] / 1000, rel=1e-3)

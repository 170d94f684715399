"""The OpenAI-compatible generator against a real local HTTP server (tests/integration/fake_llm):
streaming and not, first-token and total timeouts, errors, retries on connection errors only."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fake_llm import FakeLLM

from app.generators.base import GeneratorError, GeneratorTimeout, Timeouts
from app.generators.openai_compat import OpenAICompatGenerator, api_root

MESSAGES = [{"role": "user", "content": "Where is the answer?"}]


@pytest.fixture
def fake() -> Iterator[FakeLLM]:
    with FakeLLM(answer="It is in passage one [1].") as server:
        yield server


def client(url: str, **kw: Any) -> OpenAICompatGenerator:
    kw.setdefault("timeouts", Timeouts(connect_s=1, first_token_s=1.5, total_s=3))
    return OpenAICompatGenerator(url, "fake-llm", "secret-key", **kw)


def test_api_root() -> None:
    assert api_root("http://h:8080") == "http://h:8080/v1"
    assert api_root("http://h:8080/v1/") == "http://h:8080/v1"
    assert api_root("http://h:11434/api/v1") == "http://h:11434/api/v1"


async def test_streaming_and_plain_generation(fake: FakeLLM) -> None:
    gen = client(fake.url)
    try:
        stream = gen.stream(MESSAGES, max_tokens=32)
        deltas = [d async for d in stream]
        assert len(deltas) > 2 and "".join(deltas) == "It is in passage one [1]."
        assert stream.finish_reason == "stop" and stream.first_token_ms is not None
        done = await gen.generate(MESSAGES, max_tokens=32)
        assert done.text == "It is in passage one [1]." and done.prompt_tokens == 100
        body = fake.requests[-1]
        assert body["model"] == "fake-llm" and body["messages"] == MESSAGES
        assert body["max_tokens"] == 32 and body["stream"] is False
        assert fake.requests[0]["stream"] is True
    finally:
        await gen.aclose()


async def test_slow_first_token_times_out(fake: FakeLLM) -> None:
    fake.mode, fake.delay_s = "slow", 5
    gen = client(fake.url)
    try:
        t = time.perf_counter()
        with pytest.raises(GeneratorTimeout) as err:
            await gen.stream(MESSAGES, max_tokens=8).collect()
        assert err.value.stage == "first_token" and err.value.code == "llm_timeout"
        assert time.perf_counter() - t < 3
        with pytest.raises(GeneratorTimeout):
            await gen.generate(MESSAGES, max_tokens=8)
    finally:
        await gen.aclose()


async def test_a_stream_that_stalls_hits_the_total_limit(fake: FakeLLM) -> None:
    fake.mode, fake.delay_s = "stall", 6
    gen = client(fake.url)
    try:
        stream = gen.stream(MESSAGES, max_tokens=8)
        t = time.perf_counter()
        with pytest.raises(GeneratorTimeout) as err:
            async for _ in stream:
                pass
        assert err.value.stage == "total"
        assert stream.text == "It is "  # the first piece arrived before the stall
        assert 2.5 < time.perf_counter() - t < 5
    finally:
        await gen.aclose()


@pytest.mark.parametrize("mode", ["error", "garbage"])
async def test_server_errors_are_not_retried(fake: FakeLLM, mode: str) -> None:
    fake.mode = mode
    gen = client(fake.url, retries=3, backoff_s=0.01)
    try:
        with pytest.raises(GeneratorError) as err:
            await gen.generate(MESSAGES, max_tokens=8)
        assert not isinstance(err.value, GeneratorTimeout)
        if mode == "error":
            assert "500" in err.value.message and "model crashed" in err.value.message
        assert len(fake.requests) == 1
        with pytest.raises(GeneratorError):
            await gen.stream(MESSAGES, max_tokens=8).collect()
        assert len(fake.requests) == 2
    finally:
        await gen.aclose()


async def test_connection_errors_are_retried_with_backoff(free_port: Any) -> None:
    port = free_port()  # nobody listens: connection refused
    gen = client(f"http://127.0.0.1:{port}/v1", retries=2, backoff_s=0.2)
    try:
        t = time.perf_counter()
        with pytest.raises(GeneratorError) as err:
            await gen.stream(MESSAGES, max_tokens=8).collect()
        elapsed = time.perf_counter() - t
        assert "unreachable after 3 tries" in err.value.message
        assert 0.55 <= elapsed < 3.0  # 0.2 + 0.4 s of back-off (a loaded CI box may add more)
    finally:
        await gen.aclose()


async def test_a_server_that_comes_up_during_the_retries_answers(free_port: Any) -> None:
    import threading

    port = free_port()
    server = FakeLLM(port, answer="Late but here [1].")
    threading.Timer(0.3, server.start).start()
    gen = client(f"http://127.0.0.1:{port}", retries=4, backoff_s=0.2)
    try:
        out = await gen.stream(MESSAGES, max_tokens=8).collect()
        assert out.text == "Late but here [1]."
    finally:
        await gen.aclose()
        time.sleep(0.1)
        server.stop()

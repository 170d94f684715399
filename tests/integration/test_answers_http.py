"""Tandem served over real HTTP (uvicorn on 127.0.0.1): Server-Sent Events read with httpx
streaming, and the OpenAI-compatible face used through the official ``openai`` client."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fake_llm import FakeLLM

KEY = "http-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
QUESTION = "How does charge separate in a storm cloud?"
ANSWER = "Ice crystals and graupel collide and separate the charge [1]. Cheese is involved [9]."


class Served:
    """A Tandem app run by uvicorn in a thread, and the fake LLM behind it."""

    def __init__(self, app: Any, port: int, llm: FakeLLM) -> None:
        import uvicorn

        self.app = app
        self.llm = llm
        self.base = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 120
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)

    def reset(self) -> None:
        from app.generators.breaker import CircuitBreaker

        self.llm.mode, self.llm.answer, self.llm.delay_s = "ok", ANSWER, 5.0
        self.llm.requests.clear()
        self.app.state.tandem.extras["answers"].llm.breaker = CircuitBreaker(3, 30)


@pytest.fixture(scope="module")
def served(fixture_index: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    from app.server import create_app
    from app.settings import Settings
    from tests.conftest import find_free_port

    with FakeLLM(answer=ANSWER) as llm:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            data_dir=fixture_index.data_dir,
            api_keys=KEY,
            rate_limit_requests=0,
            cache_ttl_s=0,
            reader="none",
            checker="none",
            llm_url=llm.url,
            llm_model="fake-llm",
            llm_first_token_timeout_s=1.0,
            llm_timeout_s=1.5,
            small_confident=1.01,
        )
        server = Served(create_app(settings), find_free_port(), llm).start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def srv(served: Served) -> Served:
    served.reset()
    return served


def read_sse(response: httpx.Response) -> list[tuple[str, Any]]:
    """(event, data) pairs of a text/event-stream body, read as it streams."""
    events: list[tuple[str, Any]] = []
    event, data = "message", []
    for line in response.iter_lines():
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif not line and data:
            raw = "\n".join(data)
            events.append((event, raw if raw == "[DONE]" else json.loads(raw)))
            event, data = "message", []
    return events


def stream_ask(srv: Served, **body: Any) -> list[tuple[str, Any]]:
    body = {"question": QUESTION, "stream": True, **body}
    with httpx.stream(
        "POST", f"{srv.base}/v1/indexes/fixture/ask", json=body, headers=AUTH, timeout=60
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        return read_sse(r)


def test_sse_tokens_then_done(srv: Served) -> None:
    events = stream_ask(srv, mode="llm")
    kinds = [k for k, _ in events]
    assert kinds[-1] == "done" and set(kinds[:-1]) == {"token"} and len(kinds) > 3
    done = events[-1][1]
    streamed = "".join(d["text"] for k, d in events if k == "token")
    assert streamed == done["answer"]
    assert done["answer"] == (
        "Ice crystals and graupel collide and separate the charge [1]. Cheese is involved."
    )
    assert "[9]" not in streamed  # the marker to a passage never given never streamed
    assert done["served_by"] == "llm" and done["invalid_citations"] == [9]
    assert done["citations"][0]["n"] == 1 and done["reason"] == "requested"


def test_sse_small_answer_is_one_token_event(srv: Served) -> None:
    events = stream_ask(srv, mode="small")
    assert [k for k, _ in events] == ["token", "done"]
    assert events[0][1]["text"] == events[1][1]["answer"]
    assert events[1][1]["served_by"] == "small" and srv.llm.requests == []


def test_sse_reset_when_the_llm_stalls_mid_stream(srv: Served) -> None:
    srv.llm.mode = "stall"
    events = stream_ask(srv, mode="llm")
    kinds = [k for k, _ in events]
    assert kinds[0] == "token" and "reset" in kinds and kinds[-1] == "done"
    reset = kinds.index("reset")
    assert events[reset][1] == {"reason": "llm_timeout"}
    after = [d["text"] for k, d in events[reset + 1 :] if k == "token"]
    done = events[-1][1]
    assert after == [done["answer"]]
    assert (done["served_by"], done["reason"]) == ("small", "llm_timeout")


def test_sse_errors_before_streaming_are_json(srv: Served) -> None:
    r = httpx.post(
        f"{srv.base}/v1/indexes/missing/ask",
        json={"question": QUESTION, "stream": True},
        headers=AUTH,
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "index_not_found"


def test_openai_client_lists_models_and_chats(srv: Served) -> None:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{srv.base}/v1", api_key=KEY, max_retries=0)
    assert "tandem/fixture" in [m.id for m in client.models.list().data]
    completion = client.chat.completions.create(
        model="tandem/fixture",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Something earlier"},
            {"role": "assistant", "content": "Earlier answer."},
            {"role": "user", "content": QUESTION},
        ],
    )
    assert completion.object == "chat.completion" and completion.model == "tandem/fixture"
    message = completion.choices[0].message
    assert message.role == "assistant" and message.content.endswith("Cheese is involved.")
    extra = completion.model_extra["tandem"]
    assert extra["served_by"] == "llm" and extra["answer"] == message.content
    assert extra["citations"][0]["source"] == "docs.jsonl"
    assert completion.usage is not None and completion.usage.prompt_tokens > 0
    assert QUESTION in srv.llm.requests[-1]["messages"][-1]["content"]

    small = client.chat.completions.create(
        model="tandem/fixture",
        messages=[{"role": "user", "content": [{"type": "text", "text": QUESTION}]}],
        extra_body={"mode": "small", "top_k": 3},
    )
    assert small.model_extra["tandem"]["served_by"] == "small"
    assert small.choices[0].message.content.endswith("[1]")


def test_openai_client_streams_chunks(srv: Served) -> None:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{srv.base}/v1", api_key=KEY, max_retries=0)
    chunks = list(
        client.chat.completions.create(
            model="tandem/fixture",
            messages=[{"role": "user", "content": QUESTION}],
            stream=True,
        )
    )
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    final = chunks[-1]
    assert final.choices[0].finish_reason == "stop"
    tandem = final.model_extra["tandem"]
    assert text == tandem["answer"] and tandem["served_by"] == "llm"
    assert tandem["invalid_citations"] == [9]


def test_openai_errors_keep_the_error_shape(srv: Served) -> None:
    openai = pytest.importorskip("openai")
    bad = openai.OpenAI(base_url=f"{srv.base}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as auth:
        bad.models.list()
    assert auth.value.body["code"] == "unauthorized"
    client = openai.OpenAI(base_url=f"{srv.base}/v1", api_key=KEY, max_retries=0)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="tandem/missing", messages=[{"role": "user", "content": QUESTION}]
        )
    with pytest.raises(openai.UnprocessableEntityError):
        client.chat.completions.create(
            model="tandem/fixture", messages=[{"role": "assistant", "content": "no question"}]
        )

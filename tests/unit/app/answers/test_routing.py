"""Routing per request, the circuit breaker and the startup hardware check."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.answers.router import detect_hardware, load_llm, plan_route
from app.generators.base import GeneratorUnavailable, Timeouts, estimate_tokens
from app.generators.breaker import CircuitBreaker
from app.settings import Settings
from core.errors import NotConfigured, TandemError


def settings(**kw: object) -> Settings:
    return Settings(_env_file=None, **kw)  # type: ignore[call-arg]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# -- routing -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("mode", "availability", "circuit_open", "found", "confidence", "use_llm", "reason"),
    [
        ("small", "ready", False, True, 0.1, False, "requested"),
        ("small", "none", False, False, 0.0, False, "requested"),
        ("auto", "none", False, True, 0.1, False, "no_llm"),
        ("auto", "constrained", False, True, 0.1, False, "constrained"),
        ("auto", "failed", False, True, 0.1, False, "llm_unavailable"),
        ("auto", "ready", True, True, 0.1, False, "circuit_open"),
        ("auto", "ready", False, True, 0.95, False, "confident_small"),
        ("auto", "ready", False, False, 0.95, True, "low_confidence"),  # no answer found
        ("auto", "ready", False, True, 0.5, True, "low_confidence"),
        ("llm", "ready", False, None, None, True, "requested"),
        ("llm", "ready", True, None, None, False, "circuit_open"),
    ],
)
def test_plan_route(
    mode: str,
    availability: str,
    circuit_open: bool,
    found: bool | None,
    confidence: float | None,
    use_llm: bool,
    reason: str,
) -> None:
    plan = plan_route(mode, availability, circuit_open, found, confidence, 0.8)  # type: ignore[arg-type]
    assert (plan.use_llm, plan.reason) == (use_llm, reason)


@pytest.mark.parametrize(
    ("availability", "status", "code"),
    [
        ("none", 409, "not_configured"),  # a configuration question, not an outage
        ("constrained", 409, "not_configured"),
        ("failed", 503, "llm_unavailable"),  # configured, and down
    ],
)
def test_mode_llm_without_a_usable_llm(availability: str, status: int, code: str) -> None:
    with pytest.raises(TandemError) as err:
        plan_route("llm", availability, False, None, None, 0.8)  # type: ignore[arg-type]
    assert err.value.status == status and err.value.code == code
    assert isinstance(err.value, NotConfigured if status == 409 else GeneratorUnavailable)


# -- circuit breaker ---------------------------------------------------------------------------
def test_breaker_opens_after_consecutive_failures_and_probes_later() -> None:
    clock = Clock()
    b = CircuitBreaker(failures=2, reset_after_s=10, max_reset_s=40, clock=clock)
    assert b.allow() and b.state == "closed"
    b.failure()
    b.success()  # a success in between resets the count
    b.failure()
    assert b.state == "closed" and b.allow()
    b.failure()
    assert b.state == "open" and not b.allow() and b.retry_in_s == pytest.approx(10)
    clock.now += 10
    assert b.state == "half_open"
    assert b.allow()  # one probe ...
    assert not b.allow()  # ... and only one
    b.failure()  # the probe failed: open again, for twice as long
    assert b.state == "open" and b.retry_in_s == pytest.approx(20)
    clock.now += 20
    assert b.allow()
    b.abandon()  # the probe's client went away: someone else may probe
    assert b.allow()
    b.success()
    assert b.state == "closed" and b.failures == 0 and b.allow()


def test_breaker_pause_is_capped() -> None:
    clock = Clock()
    b = CircuitBreaker(failures=1, reset_after_s=10, max_reset_s=25, clock=clock)
    for _ in range(5):
        b.failure()
        clock.now += b.retry_in_s
        assert b.allow()
    b.failure()
    assert b.retry_in_s == pytest.approx(25)


# -- hardware ----------------------------------------------------------------------------------
def gguf(tmp_path: Path, mb: int) -> Path:
    path = tmp_path / f"model-{mb}.gguf"
    with path.open("wb") as fh:
        fh.truncate(mb * 1024 * 1024)
    return path


def test_an_llm_endpoint_is_never_constrained(tmp_path: Path) -> None:
    hw = detect_hardware(
        settings(llm_url="http://x/v1"), gguf(tmp_path, 10), memory_gb=0.1, gpu=False
    )
    assert not hw.constrained and "endpoint" in hw.detail


def test_too_little_memory_constrains_an_in_process_model(tmp_path: Path) -> None:
    model = gguf(tmp_path, 512)
    s = settings(llm_gguf=str(model), llm_memory_headroom_gb=1.0)
    low = detect_hardware(s, model, memory_gb=1.0, gpu=True)
    assert low.constrained and "GiB free" in low.detail and low.model_gb == pytest.approx(0.5)
    ok = detect_hardware(s, model, memory_gb=8.0, gpu=False)
    assert not ok.constrained


def test_a_big_model_without_a_gpu_is_constrained(tmp_path: Path) -> None:
    model = gguf(tmp_path, 300)
    s = settings(llm_gguf=str(model), llm_cpu_max_gb=0.1)
    assert detect_hardware(s, model, memory_gb=64.0, gpu=False).constrained
    assert "no GPU" in detect_hardware(s, model, memory_gb=64.0, gpu=False).detail
    assert not detect_hardware(s, model, memory_gb=64.0, gpu=True).constrained


def test_load_llm_reports_why_there_is_none(tmp_path: Path) -> None:
    none = load_llm(settings())
    assert none.availability == "none" and none.health()[0] == "absent"
    missing = load_llm(settings(llm_gguf=str(tmp_path / "nope.gguf")))
    assert missing.availability == "failed" and missing.health()[0] == "down"
    assert "not found" in missing.health()[1]
    big = gguf(tmp_path, 64)
    constrained = load_llm(settings(llm_gguf=str(big), llm_memory_headroom_gb=1000))
    assert constrained.availability == "constrained"
    state, detail = constrained.health()
    assert state == "absent" and "constrained" in detail


async def test_load_llm_with_an_endpoint_is_ready() -> None:
    slot = load_llm(settings(llm_url="http://127.0.0.1:9", llm_model="m"))
    try:
        assert slot.ready and slot.model == "m"
        assert slot.health()[0] == "ok" and "circuit closed" in slot.health()[1]
        for _ in range(3):
            slot.breaker.failure()
        assert slot.health()[0] == "down" and "circuit open" in slot.health()[1]
    finally:
        await slot.aclose()


def test_timeouts_are_cut_to_the_remaining_budget() -> None:
    t = Timeouts(connect_s=2, first_token_s=15, total_s=60).within(5)
    assert (t.connect_s, t.first_token_s, t.total_s) == (2, 5, 5)


def test_token_estimate_is_on_the_high_side() -> None:
    text = "The quick brown fox jumps over the lazy dog near the riverbank at dawn."
    assert estimate_tokens(text) >= 16  # GPT-style BPE: 16 tokens
    assert estimate_tokens("") == 0

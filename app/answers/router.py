"""Which answerer serves a question: routing per request, the LLM slot, the hardware check.

``mode`` per request:

* ``small``: the extractive answer (reason ``requested``).
* ``llm``: the LLM (reason ``requested``); with no LLM configured, or none that this hardware
  can load, a 409 ``not_configured`` (a configuration question); a configured LLM that failed
  to load is a 503 ``llm_unavailable``; an open circuit, an error or a timeout falls back to the
  small answer (reasons ``circuit_open``, ``llm_error``, ``llm_timeout``).
* ``auto`` (default): the small answer when there is no LLM (``no_llm``), when the hardware is
  constrained (``constrained``), when the in-process model failed to load
  (``llm_unavailable``), when the LLM's circuit is open (``circuit_open``) or when the small
  answer is confident (``confident_small``: the cascade, cheap answer first); the LLM
  otherwise (``low_confidence``), falling back to the small answer on an error or a timeout.

Whatever the mode, an LLM answer the checker does not support is handled by
``TANDEM_UNGROUNDED`` (:func:`app.answers.service.ungrounded_action`): ``flag`` (the default)
serves it with its unsupported sentences listed, ``drop`` removes them, ``fallback`` serves the
small answer instead (reason ``llm_ungrounded``; also ``drop`` when no sentence is left).

The hardware check runs once at startup (:func:`detect_hardware`): with an LLM endpoint
(``TANDEM_LLM_URL``) nothing is constrained; with an in-process GGUF the machine is
constrained when there is not enough free memory for the model plus a headroom, or when the
model is too big for a CPU (``TANDEM_LLM_CPU_MAX_GB``) and there is no GPU. Readiness shows the
result (component ``llm``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from app.generators.base import Generator, GeneratorUnavailable, Timeouts
from app.generators.breaker import CircuitBreaker
from app.generators.prompt_lookup import LookupConfig
from app.settings import Settings
from core.errors import NotConfigured, TandemError

log = logging.getLogger("tandem.answers")

Mode = Literal["auto", "llm", "small"]
MODES: tuple[Mode, ...] = ("auto", "llm", "small")
#: What the LLM slot holds: a usable LLM, nothing configured, a model the hardware cannot run,
#: or a model that failed to load.
Availability = Literal["ready", "none", "constrained", "failed"]
#: Reasons of answers that depended on a passing LLM failure: never cached.
TRANSIENT_REASONS = frozenset({"llm_timeout", "llm_error", "circuit_open"})


@dataclass(frozen=True)
class Hardware:
    """What the machine offers an in-process LLM (decided once at startup)."""

    cpus: int
    memory_gb: float | None
    """Memory available now (MemAvailable, or the cgroup limit when lower)."""
    gpu: bool
    model_gb: float | None = None
    constrained: bool = False
    detail: str = ""


def _cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def available_memory_gb() -> float | None:
    """Free memory for a new model: /proc/meminfo's MemAvailable, capped by a cgroup limit."""
    avail = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) / 1024**2
                break
    except (OSError, ValueError, IndexError):
        avail = None
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        ),
    ):
        try:
            raw = Path(limit_file).read_text().strip()
            if raw == "max":
                continue
            free = (int(raw) - int(Path(usage_file).read_text().strip())) / 1024**3
        except (OSError, ValueError):
            continue
        if free > 0 and (avail is None or free < avail) and int(raw) < 1 << 60:
            avail = free
    return None if avail is None else round(avail, 2)


def gpu_present() -> bool:
    """True when an NVIDIA (or ROCm) GPU device is visible to this process."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    return any(Path(p).exists() for p in ("/dev/nvidia0", "/dev/kfd"))


def detect_hardware(
    settings: Settings,
    gguf: Path | None,
    *,
    memory_gb: float | None = None,
    gpu: bool | None = None,
) -> Hardware:
    """Decide whether this machine can run the in-process model ``gguf`` (None: no model)."""
    cpus = _cpus()
    memory = available_memory_gb() if memory_gb is None else memory_gb
    has_gpu = gpu_present() if gpu is None else gpu
    where = f"{cpus} CPUs, {memory if memory is not None else '?'} GiB free, " + (
        "GPU" if has_gpu else "no GPU"
    )
    if settings.llm_url:
        return Hardware(cpus, memory, has_gpu, detail=f"LLM endpoint; {where}")
    if gguf is None:
        return Hardware(cpus, memory, has_gpu, detail=where)
    size_gb = round(gguf.stat().st_size / 1024**3, 3)
    # Weights, plus about a fifth for the KV cache and compute buffers of a 4k context.
    need = size_gb * 1.2 + settings.llm_memory_headroom_gb
    problems = []
    if memory is not None and memory < need:
        problems.append(f"{memory} GiB free < {need:.2f} GiB needed")
    if not has_gpu and size_gb > settings.llm_cpu_max_gb:
        problems.append(
            f"no GPU for a {size_gb} GiB model (CPU limit {settings.llm_cpu_max_gb} GiB)"
        )
    detail = f"model {size_gb} GiB; {where}"
    if problems:
        detail = "constrained: " + "; ".join(problems) + f" ({detail})"
    return Hardware(cpus, memory, has_gpu, size_gb, bool(problems), detail)


def settings_timeouts(settings: Settings) -> Timeouts:
    return Timeouts(
        connect_s=settings.llm_connect_timeout_s,
        first_token_s=settings.llm_first_token_timeout_s,
        total_s=settings.llm_timeout_s,
    )


@dataclass
class LLMSlot:
    """The configured LLM (if any), its circuit breaker and why it is (not) usable."""

    generator: Generator | None
    availability: Availability
    detail: str
    hardware: Hardware | None = None
    breaker: CircuitBreaker = field(default_factory=CircuitBreaker)

    @property
    def ready(self) -> bool:
        return self.generator is not None and self.availability == "ready"

    @property
    def model(self) -> str | None:
        return self.generator.model if self.generator is not None else None

    def health(self) -> tuple[Literal["ok", "absent", "down"], str]:
        """The readiness component ``llm``."""
        hw = f" [{self.hardware.detail}]" if self.hardware and self.hardware.detail else ""
        if self.availability == "none":
            return "absent", f"no LLM configured: small answers only{hw}"
        if self.availability == "constrained":
            return "absent", f"in-process LLM not loaded: hardware {self.detail}; small answers"
        if self.availability == "failed":
            return "down", f"LLM failed to load: {self.detail}; small answers only"
        live = getattr(self.generator, "health", None)  # the supervised llama.cpp child
        if callable(live):
            status, why = live()
            if status != "ok":
                return "down", f"{why}; serving small answers{hw}"
            self.detail = self.generator.describe() if self.generator else self.detail
        state = self.breaker.state
        if state == "open":
            return "down", (
                f"{self.detail}: circuit open after {self.breaker.failures} failures, "
                f"next try in {self.breaker.retry_in_s:.0f}s; serving small answers"
            )
        return "ok", f"{self.detail} (circuit {state.replace('_', '-')}){hw}"

    async def aclose(self) -> None:
        if self.generator is not None:
            await self.generator.aclose()


def load_llm(settings: Settings) -> LLMSlot:
    """Build the LLM slot from the settings (blocking: may load an in-process model).

    Never raises: a model that cannot be loaded leaves the slot ``failed`` with the reason.
    """
    breaker = CircuitBreaker(settings.llm_breaker_failures, settings.llm_breaker_reset_s)
    timeouts = settings_timeouts(settings)
    if settings.llm_url:
        from app.generators.openai_compat import OpenAICompatGenerator

        gen = OpenAICompatGenerator(
            settings.llm_url,
            settings.llm_model,
            settings.llm_api_key,
            timeouts=timeouts,
            retries=settings.llm_retries,
            backoff_s=settings.llm_retry_backoff_s,
            context_tokens=settings.llm_context_tokens,
        )
        hw = detect_hardware(settings, None)
        return LLMSlot(gen, "ready", gen.describe(), hw, breaker)
    if not settings.llm_gguf:
        return LLMSlot(None, "none", "no LLM configured", detect_hardware(settings, None), breaker)
    from app.generators.llama_inprocess import LlamaGenerator, resolve_gguf

    try:
        path = resolve_gguf(settings.llm_gguf)
    except TandemError as exc:
        log.error("LLM %s: %s", settings.llm_gguf, exc.message)
        return LLMSlot(None, "failed", exc.message, None, breaker)
    hw = detect_hardware(settings, path)
    if hw.constrained:
        log.warning("in-process LLM not loaded, %s: small answers only", hw.detail)
        return LLMSlot(None, "constrained", hw.detail, hw, breaker)
    try:
        # The model runs in a supervised child (llama_cpp.server): when it dies the circuit
        # opens at once, and the first call after its restart probes it.
        llama = LlamaGenerator(
            path,
            context_tokens=settings.llm_context_tokens,
            threads=settings.llm_threads or None,
            gpu_layers=settings.llm_gpu_layers,
            timeouts=timeouts,
            start_timeout_s=settings.llm_child_start_timeout_s,
            restart_backoff_s=settings.llm_child_restart_s,
            restart_max_s=settings.llm_child_restart_max_s,
            hang_timeouts=settings.llm_child_hang_timeouts,
            prompt_lookup=draft_options(settings),
            on_exit=breaker.trip,
            on_ready=breaker.probe_now,
        )
    except TandemError as exc:
        log.error("in-process LLM failed to load: %s", exc.message)
        return LLMSlot(None, "failed", exc.message, hw, breaker)
    log.info("LLM: %s", llama.describe())
    return LLMSlot(llama, "ready", llama.describe(), hw, breaker)


def draft_options(settings: Settings) -> LookupConfig | None:
    """The child's speculative decoding of ``TANDEM_LLM_DRAFT`` (issue 16): prompt-lookup
    decoding drafts ``TANDEM_LLM_DRAFT_TOKENS`` tokens a step from n-grams of the prompt, i.e.
    of the passages (:mod:`app.generators.prompt_lookup`); None for ``none``."""
    if settings.llm_draft == "prompt-lookup":
        return LookupConfig(draft_tokens=settings.llm_draft_tokens)
    return None


@dataclass(frozen=True)
class Plan:
    """The route chosen before any LLM call."""

    use_llm: bool
    reason: str


def plan_route(
    mode: Mode,
    availability: Availability,
    circuit_open: bool,
    small_found: bool | None,
    small_confidence: float | None,
    confident: float,
) -> Plan:
    """Route one question (see the module docstring); with ``mode="llm"`` and no usable LLM:
    :class:`~core.errors.NotConfigured` (none configured, or constrained hardware) or
    :class:`GeneratorUnavailable` (the configured one failed to load)."""
    if mode == "small":
        return Plan(False, "requested")
    if availability != "ready":
        if mode == "llm":
            what = {
                "none": "no LLM is configured (set TANDEM_LLM_URL or TANDEM_LLM_GGUF)",
                "constrained": "the in-process LLM is not loaded on this constrained hardware",
                "failed": "the configured LLM failed to load",
            }[availability]
            if availability == "failed":  # configured, and down
                raise GeneratorUnavailable(f"mode=llm but {what}")
            raise NotConfigured(f"mode=llm but {what}")
        return Plan(False, {"none": "no_llm", "constrained": "constrained"}.get(
            availability, "llm_unavailable"
        ))  # fmt: skip
    if circuit_open:
        return Plan(False, "circuit_open")
    if mode == "llm":
        return Plan(True, "requested")
    if small_found and small_confidence is not None and small_confidence >= confident:
        return Plan(False, "confident_small")
    return Plan(True, "low_confidence")

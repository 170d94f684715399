"""The ask pipeline shared by the HTTP service and ``tandem ask``.

:meth:`AnswerService.answer` takes a question and its retrieved passages (the caller searched:
the service through :func:`app.controllers.indexes.run_search`, the CLI through a
``Retriever``) and:

1. numbers the passages [1]..[n];
2. in ``auto`` and ``small`` modes computes the small extractive answer first (cheap; it is
   the cascade's first step and the fallback);
3. routes (:func:`app.answers.router.plan_route`);
4. for the LLM: packs the passages into the model's context budget, streams the answer with
   the first-token and total limits cut to what is left of the question's time budget,
   rewrites citation markers as they stream (markers to passages not given are removed and
   reported), and on an error or a timeout falls back to the small answer;
5. checks the groundedness of every LLM answer (``TANDEM_CHECKER``). Without a checker the
   ``grounded`` object says so: ``{"score": null, "unsupported": [], "method": "none",
   "reason": ...}`` (no embedder-based guess: a number that is not a groundedness check would
   be read as one). A small answer says who checked it: ``{"method": "checker", "score": S,
   "checker": NAME}`` when the checker scored the span against the question and its passage,
   ``{"method": "reader", "score": P}`` when only the reader's own span probability backs it,
   ``{"method": "unchecked", "score": null}`` when nothing did (an embedder-picked sentence);
   ``reason`` says it in words.

Every result carries ``served_by`` (``llm``, ``small``, ``cache``), ``reason`` and
``timings_ms`` per stage. Model calls run through ``offload`` (the service's limiter; a plain
worker thread in the CLI). A streaming caller passes ``emit``: it receives ``token`` events
(text deltas) and, when an LLM that already streamed text fails, one ``reset`` event before the
small answer's text.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import anyio.to_thread

from app.answers.citations import MarkerFilter, validate_citations
from app.answers.prompt import Passage, build_prompt, number_passages
from app.answers.router import LLMSlot, Mode, Plan, load_llm, plan_route, settings_timeouts
from app.answers.small import SmallAnswer, SmallAnswerer
from app.generators.base import GeneratorError, GeneratorTimeout
from app.settings import Settings
from core.errors import TandemError

log = logging.getLogger("tandem.answers")

Offload = Callable[..., Awaitable[Any]]
Emit = Callable[[str, dict[str, Any]], Awaitable[None]]
#: Seconds of the budget kept for the small fallback when it was not computed before the LLM.
SMALL_RESERVE_S = 3.0
#: Seconds of the budget kept for the groundedness check after the LLM.
CHECK_RESERVE_S = 1.0
_ABSTAIN_RE = re.compile(r"^\W*(i\s+(do\s*n[o']?t|cannot|can't)\s+know|unknown|no answer)", re.I)


async def run_in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """The default ``offload``: a worker thread (the CLI has no limiter)."""
    return await anyio.to_thread.run_sync(functools.partial(fn, *args))


def is_abstention(text: str) -> bool:
    """True for answers such as "I don't know." (asked for by the prompt)."""
    return bool(_ABSTAIN_RE.match(text.strip()))


@dataclass
class AnswerResult:
    """One answer, as the API returns it (:meth:`as_dict`)."""

    index: str
    version: int
    answer: str
    citations: list[dict[str, Any]]
    grounded: dict[str, Any]
    confidence: float | None
    served_by: str
    reason: str
    cached: bool = False
    timings_ms: dict[str, float] = field(default_factory=dict)
    invalid_citations: list[int] = field(default_factory=list)
    """Passage numbers the LLM cited that it was never given (removed from the answer)."""
    extract: dict[str, Any] | None = None
    """Small answers: the quoted span, its sentence, the passage number, the method."""
    model: str | None = None
    """The LLM that wrote the answer (None for small answers)."""
    usage: dict[str, int] = field(default_factory=dict)
    """LLM tokens (prompt, completion) of this answer; not part of :meth:`as_dict`."""
    features: dict[str, float] = field(default_factory=dict)
    """Small answers: what abstention and confidence were computed from (benchmarks read it);
    not part of :meth:`as_dict`."""

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("usage")
        out.pop("features")
        out["timings_ms"] = {k: round(v, 3) for k, v in self.timings_ms.items()}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnswerResult:
        names = {f for f in cls.__dataclass_fields__ if f not in ("usage", "features")}
        return cls(**{k: v for k, v in data.items() if k in names})

    @property
    def cacheable(self) -> bool:
        from app.answers.router import TRANSIENT_REASONS

        return self.served_by in ("llm", "small") and self.reason not in TRANSIENT_REASONS


class AnswerMetrics:
    """Prometheus collectors of the answer paths, in the service's own registry."""

    def __init__(self, registry: Any) -> None:
        from prometheus_client import Counter

        self.answers = Counter(
            "tandem_answers",
            "Answers by path (served_by: llm, small, cache) and routing reason.",
            ["served_by", "reason"],
            registry=registry,
        )
        self.llm_calls = Counter(
            "tandem_llm_calls",
            "LLM calls by result (ok, error, timeout) and refusals by an open circuit.",
            ["result"],
            registry=registry,
        )
        self.llm_tokens = Counter(
            "tandem_llm_tokens",
            "LLM tokens spent, by kind (prompt, completion).",
            ["kind"],
            registry=registry,
        )
        self.llm_seconds = Counter(
            "tandem_llm_seconds",
            "Seconds spent generating LLM answers (prompt, generation).",
            registry=registry,
        )
        self.seconds_saved = Counter(
            "tandem_llm_seconds_saved",
            "LLM seconds not spent because a small answer was served while an LLM was available "
            "(estimated by the cost model of `tandem bench cascade`), by reason.",
            ["reason"],
            registry=registry,
        )
        self.ungrounded = Counter(
            "tandem_llm_ungrounded",
            "LLM answers the checker did not support, by what was done (TANDEM_UNGROUNDED: "
            "flagged, dropped sentences, fallback to the small answer).",
            ["action"],
            registry=registry,
        )
        self.tokens_saved = Counter(
            "tandem_llm_tokens_saved",
            "LLM tokens (prompt + expected completion) not spent because a small answer was "
            "served while an LLM was available, by reason (confident_small, requested).",
            ["reason"],
            registry=registry,
        )


class AnswerService:
    """Small answers, the LLM, routing, citations and the groundedness check, loaded once."""

    def __init__(
        self,
        settings: Settings,
        small: SmallAnswerer,
        llm: LLMSlot,
        checker: Any = None,
        *,
        checker_detail: str = "",
        reader_detail: str = "",
        errors: dict[str, str] | None = None,
        metrics: AnswerMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.small = small
        self.llm = llm
        self.checker = checker
        self.checker_detail = checker_detail
        self.reader_detail = reader_detail
        self.errors = dict(errors or {})
        self.metrics = metrics
        self._completion_tokens = [0, 0]  # sum, count: the mean LLM answer length so far
        self._llm_spent = [0.0, 0.0]  # seconds, prompt tokens of this service's LLM calls
        self.cost_model = load_cost_model(settings.llm_cost_model)

    # -- descriptions ---------------------------------------------------------------------------
    def identity(self) -> dict[str, Any]:
        """What an answer depends on besides the question and the index (for cache keys)."""
        return {
            "llm": self.llm.model if self.llm.ready else None,
            "small": self.small.method,
            "reader": getattr(self.small.reader, "fingerprint", None),
            "checker": getattr(self.checker, "fingerprint", None),
            "calibration": [
                self.small.feature_set,
                getattr(self.small.calibration, "threshold", None),
            ],
            "k": [self.settings.small_confident, self.settings.small_min_confidence],
            "ungrounded": self.settings.ungrounded,
        }

    def health(self) -> tuple[str, str]:
        """The readiness component ``answers``: the small answerer and the checker."""
        parts = [self.small.describe(), self.checker_detail or "no checker"]
        if self.errors:
            failed = "; ".join(f"{k} failed: {v}" for k, v in self.errors.items())
            return "down", failed + " | serving with " + "; ".join(parts)
        return "ok", "; ".join(parts)

    async def aclose(self) -> None:
        await self.llm.aclose()

    # -- the pipeline ---------------------------------------------------------------------------
    async def answer(
        self,
        question: str,
        hits: Sequence[Any],
        *,
        index: str,
        version: int,
        mode: Mode = "auto",
        offload: Offload = run_in_thread,
        embedder: Any = None,
        deadline: float | None = None,
        emit: Emit | None = None,
        timings: dict[str, float] | None = None,
    ) -> AnswerResult:
        """Answer ``question`` from ``hits`` (rank order). ``deadline`` is a
        ``time.monotonic()`` instant (default: now + ``TANDEM_ASK_TIMEOUT_S``)."""
        started = time.perf_counter()
        deadline = deadline or time.monotonic() + self.settings.ask_timeout_s
        timings = dict(timings or {})
        passages = number_passages(hits)
        small: SmallAnswer | None = None

        async def small_answer() -> SmallAnswer:
            t = time.perf_counter()
            out: SmallAnswer = await offload(self.small.answer, question, passages, embedder)
            timings["small"] = (time.perf_counter() - t) * 1000
            return out

        if mode != "llm":
            small = await small_answer()
        breaker = self.llm.breaker
        plan = plan_route(
            mode,
            self.llm.availability,
            breaker.state == "open",
            small.found if small else None,
            small.confidence if small else None,
            self.settings.small_confident,
        )
        if plan.use_llm and not breaker.allow():
            plan = Plan(False, "circuit_open")
        if plan.use_llm:
            result = await self._llm_answer(
                question, passages, plan.reason, deadline, emit, timings, small, small_answer,
                offload,
            )  # fmt: skip
        else:
            if plan.reason == "circuit_open" and self.metrics:
                self.metrics.llm_calls.labels(result="circuit_open").inc()
            small = small or await small_answer()
            saved = self._count_saved(plan.reason, question, passages)
            timings.update(saved)
            result = self._small_result(small, plan.reason)
            if emit is not None:
                await emit("token", {"text": result.answer})
        result.index, result.version = index, version
        result.timings_ms = {**timings, "total": (time.perf_counter() - started) * 1000}
        if self.metrics:
            self.metrics.answers.labels(served_by=result.served_by, reason=result.reason).inc()
        return result

    async def _llm_answer(
        self,
        question: str,
        passages: list[Passage],
        reason: str,
        deadline: float,
        emit: Emit | None,
        timings: dict[str, float],
        small: SmallAnswer | None,
        small_answer: Callable[[], Awaitable[SmallAnswer]],
        offload: Offload,
    ) -> AnswerResult:
        gen = self.llm.generator
        assert gen is not None
        s = self.settings
        t = time.perf_counter()
        prompt = build_prompt(
            question, passages, gen.count_tokens, gen.context_tokens, s.llm_max_tokens
        )
        timings["prompt"] = (time.perf_counter() - t) * 1000
        reserve = CHECK_RESERVE_S + (0.0 if small is not None else SMALL_RESERVE_S)
        timeouts = settings_timeouts(s).within(deadline - time.monotonic() - reserve)
        stream = gen.stream(
            prompt.messages, max_tokens=s.llm_max_tokens, temperature=s.llm_temperature,
            timeouts=timeouts,
        )  # fmt: skip
        marker_filter = MarkerFilter(len(prompt.passages))
        streamed = False
        failure: str | None = None
        t = time.perf_counter()
        try:
            async for delta in stream:
                out = marker_filter.feed(delta)
                if out and emit is not None:
                    streamed = True
                    await emit("token", {"text": out})
            tail = marker_filter.flush()
            if tail and emit is not None:
                streamed = True
                await emit("token", {"text": tail})
            if not stream.text.strip():
                raise GeneratorError("the LLM returned an empty answer")
            self.llm.breaker.success()
        except GeneratorTimeout as exc:
            failure = "llm_timeout"
            log.warning("LLM timeout (%s): falling back to the small answer", exc.message)
        except GeneratorError as exc:
            failure = "llm_error"
            log.warning("LLM error (%s): falling back to the small answer", exc.message)
        except BaseException:
            self.llm.breaker.abandon()
            raise
        finally:
            await stream.aclose()
        timings["llm"] = (time.perf_counter() - t) * 1000
        if stream.first_token_ms is not None:
            timings["llm_first_token"] = stream.first_token_ms
        if failure is not None:
            self.llm.breaker.failure()
            if self.metrics:
                self.metrics.llm_calls.labels(result=failure.removeprefix("llm_")).inc()
            small = small or await small_answer()
            result = self._small_result(small, failure)
            if emit is not None:
                if streamed:
                    await emit("reset", {"reason": failure})
                await emit("token", {"text": result.answer})
            return result

        generation = stream.generation(gen.count_tokens)
        prompt_tokens = generation.prompt_tokens or prompt.prompt_tokens
        completion_tokens = generation.completion_tokens or 0
        self._completion_tokens[0] += completion_tokens
        self._completion_tokens[1] += 1
        spent_s = (timings.get("prompt", 0.0) + timings["llm"]) / 1000
        self._llm_spent[0] += spent_s
        self._llm_spent[1] += prompt_tokens
        timings["llm_prompt_tokens"] = float(prompt_tokens)
        timings["llm_completion_tokens"] = float(completion_tokens)
        if self.metrics:
            self.metrics.llm_calls.labels(result="ok").inc()
            self.metrics.llm_tokens.labels(kind="prompt").inc(prompt_tokens)
            self.metrics.llm_tokens.labels(kind="completion").inc(completion_tokens)
            self.metrics.llm_seconds.inc(spent_s)
        report = validate_citations(generation.text, len(prompt.passages))
        if report.invalid:
            log.info("LLM cited passages it was not given: %s (removed)", report.invalid)
        citations = [prompt.passages[n - 1].citation() for n in sorted(report.cited)]
        t = time.perf_counter()
        grounded, checked = await self._check_full(
            question, report.answer, prompt.passages, offload
        )
        if self.checker is not None:
            timings["check"] = (time.perf_counter() - t) * 1000
        action, kept = ungrounded_action(s.ungrounded, checked, s.checker_threshold)
        if action != "none" and self.metrics:
            self.metrics.ungrounded.labels(action=action).inc()
        if action == "fallback":  # TANDEM_UNGROUNDED=fallback, or drop with nothing left
            small = small or await small_answer()
            result = self._small_result(small, "llm_ungrounded")
            if emit is not None:
                await emit("reset", {"reason": "llm_ungrounded"})
                await emit("token", {"text": result.answer})
            return result
        if action == "dropped" and checked is not None:
            report = validate_citations(" ".join(c.text for c in kept), len(prompt.passages))
            citations = [prompt.passages[n - 1].citation() for n in sorted(report.cited)]
            grounded = {
                **grounded,
                "score": round(min(c.score for c in kept), 4),
                "unsupported": [],
                "reason": f"TANDEM_UNGROUNDED=drop removed {len(checked.unsupported)} "
                "unsupported sentence(s): " + " | ".join(checked.unsupported),
            }
            if emit is not None:
                await emit("reset", {"reason": "llm_ungrounded"})
                await emit("token", {"text": report.answer})
        return AnswerResult(
            index="",
            version=0,
            answer=report.answer,
            citations=citations,
            grounded=grounded,
            confidence=grounded.get("score"),
            served_by="llm",
            reason=reason,
            invalid_citations=report.invalid,
            model=generation.model,
            usage={"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
        )

    async def _check(
        self, question: str, answer: str, passages: list[Passage], offload: Offload
    ) -> dict[str, Any]:
        return (await self._check_full(question, answer, passages, offload))[0]

    async def _check_full(
        self, question: str, answer: str, passages: list[Passage], offload: Offload
    ) -> tuple[dict[str, Any], Any]:
        """The ``grounded`` object and the checker's result (None when nothing was checked)."""
        if is_abstention(answer):
            out: dict[str, Any] = {
                "score": None,
                "unsupported": [],
                "method": "none",
                "reason": "abstained",
            }
            return out, None
        if self.checker is None:
            return {
                "score": None,
                "unsupported": [],
                "method": "none",
                "reason": self.checker_detail or "no groundedness checker configured",
            }, None
        result = await offload(
            self.checker.check,
            question,
            answer,
            [p.text for p in passages],
            None,
            self.settings.checker_threshold,
        )
        return {
            "score": round(float(result.score), 4),
            "unsupported": list(result.unsupported),
            "method": "checker",
            "checker": getattr(self.checker, "name", None),
        }, result

    def _small_result(self, small: SmallAnswer, reason: str) -> AnswerResult:
        return AnswerResult(
            index="",
            version=0,
            answer=small.answer,
            citations=small.citations,
            grounded=small_grounded(small, self.settings.checker_threshold),
            confidence=small.confidence,
            served_by="small",
            reason=reason,
            extract=small.extract(),
            features=dict(small.features),
        )

    def _count_saved(self, reason: str, question: str, passages: list[Passage]) -> dict[str, float]:
        """The LLM tokens and milliseconds a small answer saved (an LLM was there and not
        called), counted in the metrics and returned as timings (empty when none)."""
        gen = self.llm.generator
        if gen is None or reason not in ("confident_small", "requested"):
            return {}
        if self.llm.availability != "ready":
            return {}
        s = self.settings
        try:
            prompt = build_prompt(
                question, passages, gen.count_tokens, gen.context_tokens, s.llm_max_tokens
            )
        except Exception:  # noqa: BLE001 - a cost figure must never fail a request
            return {}
        total, count = self._completion_tokens
        model = self.cost_model
        if count:
            expected = total / count
        elif model.get("completion_tokens_mean"):
            expected = float(model["completion_tokens_mean"])
        else:
            expected = float(min(64, s.llm_max_tokens))
        seconds = estimate_llm_seconds(model, self._llm_spent, prompt.prompt_tokens, gen.model)
        if self.metrics is not None:
            self.metrics.tokens_saved.labels(reason=reason).inc(prompt.prompt_tokens + expected)
            if seconds is not None:
                self.metrics.seconds_saved.labels(reason=reason).inc(seconds)
        out = {"llm_saved_tokens": float(round(prompt.prompt_tokens + expected))}
        if seconds is not None:
            out["llm_saved_ms"] = round(seconds * 1000, 1)
        return out


#: What a small answer saved is estimated from (``tandem bench cascade --cost-model FILE``).
DEFAULT_COST_MODEL = Path(__file__).with_name("llm_cost.json")


def load_cost_model(path: Path | None) -> dict[str, Any]:
    """The LLM cost model measured by ``tandem bench cascade`` (empty: none, or unreadable)."""
    import json

    file = Path(path) if path is not None else DEFAULT_COST_MODEL
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        if path is not None:
            log.warning("LLM cost model %s cannot be read: saved seconds go unestimated", file)
        return {}
    return data if isinstance(data, dict) else {}


def estimate_llm_seconds(
    model: dict[str, Any], spent: Sequence[float], prompt_tokens: int, llm: str | None
) -> float | None:
    """Seconds the LLM would have taken for a prompt of ``prompt_tokens``: the measured cost
    model when it was measured on this LLM (or names none), else this service's own LLM calls
    so far (seconds per prompt token); None when neither exists."""
    seconds, tokens = spent
    measured = "seconds_per_prompt_token" in model
    if measured and model.get("model") in (None, llm):
        base = float(model.get("seconds_base", 0.0))
        return base + float(model["seconds_per_prompt_token"]) * prompt_tokens
    if tokens:
        return seconds / tokens * prompt_tokens
    return None


def ungrounded_action(policy: str, checked: Any, threshold: float) -> tuple[str, list[Any]]:
    """What ``TANDEM_UNGROUNDED`` does with a checked LLM answer: ``none`` (supported, or not
    checked), ``flagged``, ``dropped`` (with the sentences kept) or ``fallback`` (the small
    answer instead: the answer's score is under the threshold, or no sentence is left)."""
    if checked is None or not checked.unsupported:
        return "none", []
    if policy == "fallback" and checked.score < threshold:
        return "fallback", []
    if policy == "drop":
        kept = [c for c in checked.sentences if c.supported]
        return ("dropped", kept) if kept else ("fallback", [])
    return "flagged", []


def small_grounded(small: SmallAnswer, threshold: float = 0.5) -> dict[str, Any]:
    """The ``grounded`` object of a small answer: who checked it, how, and the score."""
    if not small.found:
        return {
            "score": None,
            "unsupported": [],
            "method": "none",
            "reason": small.why or "no answer",
        }
    if small.checked_by == "checker" and small.check_score is not None:
        out: dict[str, Any] = {
            "score": small.check_score,
            "unsupported": [small.answer] if small.check_score < threshold else [],
            "method": "checker",
            "checker": small.checker_name,
            "reason": "the checker scored the quoted span against the question and its passage",
        }
        return out
    if small.checked_by == "reader" and small.check_score is not None:
        return {
            "score": small.check_score,
            "unsupported": [],
            "method": "reader",
            "checker": small.checker_name,
            "reason": "no checker configured: the reader's own probability for this span",
        }
    return {
        "score": None,
        "unsupported": [],
        "method": "unchecked",
        "reason": "not checked: no checker configured (TANDEM_CHECKER); the sentence was picked "
        f"by {small.method} similarity",
    }


# -- loading ---------------------------------------------------------------------------------
OFF = frozenset({"none", "off", "false", "0", ""})


def _default_checker_path() -> str:
    """``models/checker-minilm`` when trained here, else the released checker (smallmodels)."""
    from smallmodels.checker import DEFAULT_CHECKER

    return DEFAULT_CHECKER


def optional_spec(value: str | None, default: str) -> tuple[str | None, bool]:
    """``(spec, explicit)``: the configured spec, the default folder when unset and present,
    or None (``none``/``off``, or unset with no default folder)."""
    if value is None:
        return (default, False) if Path(default).is_dir() else (None, False)
    if value.strip().lower() in OFF:
        return None, True
    return value.strip(), True


def load_answer_service(
    settings: Settings,
    *,
    reranker: Any = None,
    embedder: Any = None,
    metrics: AnswerMetrics | None = None,
) -> AnswerService:
    """Load the reader, the checker and the LLM named by ``settings`` (blocking).

    ``TANDEM_READER`` / ``TANDEM_CHECKER`` unset: the trained folders under ``models/``
    (``reader-minilm``, ``checker-minilm``) when they exist; ``none`` switches one off. A
    configured model that fails to load is logged and reported by readiness; small mode then
    falls back to best sentences, LLM answers to ``grounded.score = null``.
    """
    from smallmodels.reader import DEFAULT_READER

    errors: dict[str, str] = {}
    reader = None
    spec, explicit = optional_spec(settings.reader, DEFAULT_READER)
    if spec:
        try:
            from smallmodels.reader import load_reader

            reader = load_reader(spec)
            reader.read("warm up?", ["warm up text."])
            log.info("reader %s loaded", reader.name)
        except TandemError as exc:
            errors["reader"] = exc.message
            log.error("reader %r could not be loaded: %s", spec, exc.message)
        except Exception as exc:  # noqa: BLE001 - a bad model folder: report, serve without
            errors["reader"] = f"{type(exc).__name__}: {exc}"
            log.error("reader %r could not be loaded: %s", spec, exc)
        if reader is None and not explicit:
            errors.pop("reader", None)
    checker = None
    checker_detail = "no groundedness checker configured (TANDEM_CHECKER)"
    spec, explicit = optional_spec(settings.checker, _default_checker_path())
    if spec:
        try:
            from smallmodels.checker import load_checker

            checker = load_checker(spec)
            checker.check("warm up?", "Warm up.", ["warm up text."])
            checker_detail = f"checker {checker.name}"
            log.info("groundedness checker %s loaded", checker.name)
        except Exception as exc:  # noqa: BLE001 - reported by readiness; answers go unchecked
            msg = exc.message if isinstance(exc, TandemError) else f"{type(exc).__name__}: {exc}"
            if explicit:
                errors["checker"] = msg
            checker_detail = f"checker {spec!r} failed to load: {msg}"
            log.error("checker %r could not be loaded: %s", spec, msg)
    small = SmallAnswerer(
        reader,
        reranker,
        embedder,
        checker=checker,
        min_confidence=settings.small_min_confidence,
        max_passages=settings.ask_top_k,
    )
    llm = load_llm(settings)
    return AnswerService(
        settings,
        small,
        llm,
        checker,
        checker_detail=checker_detail,
        reader_detail=small.describe(),
        errors=errors,
        metrics=metrics,
    )

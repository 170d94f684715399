"""The :class:`Generator` protocol: what Tandem needs of an LLM, and the timeouts around it.

A generator turns chat messages into text, either all at once (:meth:`Generator.generate`) or
as a :class:`TokenStream` of text deltas (:meth:`Generator.stream`). Every call runs under three
limits (:class:`Timeouts`): *connect* (reaching the server; HTTP generators only), *first token*
(from the call until the first piece of text, retries and queueing included) and *total* (the
whole generation). A limit that runs out raises :class:`GeneratorTimeout`; any other failure is
a :class:`GeneratorError`. The stream enforces the first-token and total limits itself, so every
generator gets them the same way.

Implementations: :class:`app.generators.openai_compat.OpenAICompatGenerator` (llama.cpp's
server, vLLM, Ollama, hosted APIs) and :class:`app.generators.llama_inprocess.LlamaGenerator`
(llama-cpp-python in this process, the ``[llama]`` extra).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from core.errors import TandemError

#: One chat message: ``{"role": "system"|"user"|"assistant", "content": "..."}``.
Message = dict[str, str]
Stage = Literal["connect", "first_token", "total"]


class GeneratorError(TandemError):
    """The LLM failed: unreachable, an error status, a malformed answer."""

    code = "llm_error"
    status = 502


class GeneratorTimeout(GeneratorError):
    """The LLM did not connect, start or finish in time."""

    code = "llm_timeout"
    status = 504

    def __init__(self, message: str, stage: Stage = "total") -> None:
        super().__init__(message)
        self.stage = stage


class GeneratorUnavailable(GeneratorError):
    """No LLM is configured or usable (not configured, constrained hardware, failed to load)."""

    code = "llm_unavailable"
    status = 503


@dataclass(frozen=True)
class Timeouts:
    """Limits of one generation, in seconds."""

    connect_s: float = 2.0
    first_token_s: float = 15.0
    total_s: float = 60.0

    def within(self, budget_s: float) -> Timeouts:
        """These limits, none longer than ``budget_s`` (what is left of a request's budget)."""
        budget_s = max(0.001, budget_s)
        return Timeouts(
            connect_s=min(self.connect_s, budget_s),
            first_token_s=min(self.first_token_s, budget_s),
            total_s=min(self.total_s, budget_s),
        )


@dataclass
class Generation:
    """A finished generation."""

    text: str
    model: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    first_token_ms: float | None = None
    total_ms: float | None = None


def estimate_tokens(text: str) -> int:
    """A deliberately high estimate of the tokens of ``text`` for an unknown tokenizer.

    BPE tokenizers of current LLMs average about four characters (0.75 words) per English
    token; this counts one token per 3.6 characters or 1.4 per word, whichever is more, so a
    prompt packed with it stays inside the real context window.
    """
    if not text:
        return 0
    return math.ceil(max(len(text) / 3.6, len(text.split()) * 1.4))


class TokenStream:
    """An async iterator of non-empty text deltas with first-token and total deadlines.

    ``source_factory(stream)`` makes the underlying async iterator; it may fill in
    :attr:`prompt_tokens`, :attr:`completion_tokens` and :attr:`finish_reason` as it learns
    them. The clock starts at the first ``__anext__``. On a timeout the source is closed
    (releasing its connection or stopping its thread) and :class:`GeneratorTimeout` raised.
    """

    def __init__(
        self,
        model: str,
        timeouts: Timeouts,
        source_factory: Callable[[TokenStream], AsyncIterator[str]],
    ) -> None:
        self.model = model
        self.timeouts = timeouts
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None
        self.finish_reason: str | None = None
        self.first_token_ms: float | None = None
        self.total_ms: float | None = None
        self.parts: list[str] = []
        self._source = source_factory(self)
        self._t0: float | None = None
        self._closed = False

    @property
    def text(self) -> str:
        """The text streamed so far."""
        return "".join(self.parts)

    def __aiter__(self) -> TokenStream:
        return self

    async def __anext__(self) -> str:
        if self._t0 is None:
            self._t0 = time.perf_counter()
        while True:
            now = time.perf_counter()
            limit = self._t0 + self.timeouts.total_s - now
            stage: Stage = "total"
            if self.first_token_ms is None:
                first = self._t0 + self.timeouts.first_token_s - now
                if first < limit:
                    limit, stage = first, "first_token"
            if limit <= 0:
                await self.aclose()
                raise self._timeout(stage)
            try:
                delta = await asyncio.wait_for(self._source.__anext__(), limit)
            except TimeoutError:
                await self.aclose()
                raise self._timeout(stage) from None
            except StopAsyncIteration:
                self.total_ms = (time.perf_counter() - self._t0) * 1000
                raise
            if not delta:
                continue
            if self.first_token_ms is None:
                self.first_token_ms = (time.perf_counter() - self._t0) * 1000
            self.parts.append(delta)
            return delta

    def _timeout(self, stage: Stage) -> GeneratorTimeout:
        limit = self.timeouts.first_token_s if stage == "first_token" else self.timeouts.total_s
        what = "no first token" if stage == "first_token" else "generation not finished"
        return GeneratorTimeout(f"LLM {self.model}: {what} within {limit:g}s", stage)

    async def aclose(self) -> None:
        """Stop the generation and release what it holds (idempotent)."""
        if self._closed:
            return
        self._closed = True
        aclose = getattr(self._source, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()

    async def collect(self, count: Callable[[str], int] | None = None) -> Generation:
        """Read the stream to its end and return the :class:`Generation`."""
        try:
            async for _ in self:
                pass
        finally:
            await self.aclose()
        return self.generation(count)

    def generation(self, count: Callable[[str], int] | None = None) -> Generation:
        """What was generated so far as a :class:`Generation` (tokens counted if unknown)."""
        text = self.text
        completion = self.completion_tokens
        if completion is None and count is not None:
            completion = count(text)
        return Generation(
            text=text,
            model=self.model,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=completion,
            finish_reason=self.finish_reason,
            first_token_ms=self.first_token_ms,
            total_ms=self.total_ms,
        )


@runtime_checkable
class Generator(Protocol):
    """An LLM that answers chat messages."""

    #: Kind of backend: ``"openai"`` (HTTP) or ``"llama"`` (in-process).
    kind: str
    #: The model name sent to (or loaded by) the backend.
    model: str
    #: Tokens the model's context window holds (prompt and answer together).
    context_tokens: int

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` (exact for an in-process model, a high estimate over HTTP)."""
        ...

    def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        timeouts: Timeouts | None = None,
    ) -> TokenStream:
        """Start a generation; iterate the stream for text deltas."""
        ...

    async def generate(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        timeouts: Timeouts | None = None,
    ) -> Generation:
        """The whole answer at once."""
        ...

    def describe(self) -> str:
        """One line for logs and readiness."""
        ...

    async def aclose(self) -> None:
        """Release connections or the model."""
        ...

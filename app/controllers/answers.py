"""Grounded answers over HTTP: ``/v1/indexes/{name}/ask`` and an OpenAI-compatible face.

* ``POST /v1/indexes/{name}/ask`` ``{"question", "mode", "top_k", "filters", "stream"}`` ->
  ``{"index", "version", "answer", "citations", "grounded", "confidence", "served_by",
  "reason", "cached", "timings_ms", "invalid_citations", "extract", "model"}``. With
  ``"stream": true`` the answer comes as Server-Sent Events: ``token`` events
  (``{"text": ...}``), a ``reset`` event (``{"reason"}``) if a streaming LLM failed and the
  small answer follows, then one ``done`` event with the whole object (or an ``error`` event
  with the usual error body).
* ``POST /v1/chat/completions``: the last user message is the question, ``model`` names the
  index (``tandem/<index>``); the answer is the assistant message (chat-completion chunks when
  ``stream`` is true), and the answer object above rides along in the extra field ``tandem``.
  Tandem options may be sent as extra body fields: ``mode``, ``top_k``, ``filters``.
* ``GET /v1/models``: every index the key may read, as model ``tandem/<index>``.

Same API keys, rate limits, bounds and error shape as search. Answers are cached like
searches: the key holds the question, mode, top_k, filters, the served index version and the
models in use; answers that fell back after a passing LLM failure are not cached. The models
are loaded once at startup by the ``answers`` lifespan hook, which also adds the readiness
components ``llm`` (endpoint, circuit, hardware check) and ``answers`` (reader, checker).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, cast

import anyio.to_thread
import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.openapi import ResponseSpec
from litestar.response import Stream

from app.answers.router import Mode
from app.answers.service import AnswerMetrics, AnswerResult, AnswerService, load_answer_service
from app.cache import cache_key
from app.controllers.indexes import run_search
from app.errors import ComponentUnavailable, InvalidRequest, describe
from app.schemas import (
    AskRequest,
    AskResponse,
    ChatMessage,
    ChatRequest,
    ErrorBody,
    ModelCard,
    ModelList,
    SearchRequest,
    decode_strict,
    json_body_guard,
)
from app.security import check_filters, normalise_query, readable, require_index_access
from app.state import ServiceState
from stores.chunkstore import normalise_filters

if TYPE_CHECKING:
    from litestar import Litestar

ASK_ROUTE = "/v1/indexes/{name}/ask"
CHAT_ROUTE = "/v1/chat/completions"
MODEL_PREFIX = "tandem/"
EXTRA = "answers"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


ERROR_TEXT = {
    400: "Malformed JSON or a bad filter.",
    401: "No valid API key.",
    403: "The key may not read this index.",
    404: "No such index.",
    405: "Method not allowed on this route.",
    409: "mode=llm with no LLM configured (or none this hardware can load); embedder mismatch.",
    413: "Request body too large.",
    415: "The body is not JSON (Content-Type other than application/json).",
    422: "The body does not match the schema or breaks a bound.",
    429: "Rate limit exceeded (see Retry-After).",
    503: "Busy (see Retry-After), the configured LLM failed to load, or the answer models are "
    "not loaded.",
}


def _errors(*codes: int) -> dict[int, ResponseSpec]:
    return {c: ResponseSpec(ErrorBody, description=ERROR_TEXT[c]) for c in codes}


# -- the flow ----------------------------------------------------------------------------------
def answer_service(tandem: ServiceState) -> AnswerService:
    svc = tandem.extras.get(EXTRA)
    if not isinstance(svc, AnswerService):
        raise ComponentUnavailable("answers are not available: the answer models were not loaded")
    return svc


class AskQuestion:
    """One validated question with its cache key and the search that feeds it."""

    def __init__(
        self,
        tandem: ServiceState,
        name: str,
        question: str,
        mode: Mode,
        top_k: int | None,
        filters: dict[str, Any] | None,
    ) -> None:
        s = tandem.settings
        self.tandem = tandem
        self.name = name
        self.question = normalise_query(question, s.max_query_chars, "question")
        check_filters(filters, s.max_filter_fields)
        self.filters = {k: sorted(set(v)) for k, v in sorted(normalise_filters(filters).items())}
        self.raw_filters = filters
        self.mode = mode
        self.top_k = top_k or s.ask_top_k
        self.service = answer_service(tandem)
        self.started = time.perf_counter()
        self.deadline = time.monotonic() + s.ask_timeout_s
        self.timings: dict[str, float] = {}
        self.key: str | None = None

    async def cached(self) -> AnswerResult | None:
        """The cached answer, if any (looks up the served version first)."""
        tandem, s = self.tandem, self.tandem.settings
        entry = await tandem.indexes.get(self.name)
        if s.cache_ttl_s <= 0:
            return None
        self.key = cache_key(
            s.cache_prefix,
            "answer",
            self.name,
            entry.tag,
            payload={
                "q": self.question,
                "m": self.mode,
                "k": self.top_k,
                "f": self.filters,
                "s": self.service.identity(),
                "r": getattr(tandem.reranker, "name", None),
            },
        )
        t = time.perf_counter()
        raw = await tandem.cache.get(self.key)
        self.timings["cache"] = (time.perf_counter() - t) * 1000
        if raw is None:
            tandem.metrics.cache.labels(kind="answer", result="miss").inc()
            return None
        try:
            result = AnswerResult.from_dict(json.loads(raw))
        except (ValueError, TypeError):
            return None
        tandem.metrics.cache.labels(kind="answer", result="hit").inc()
        result.cached = True
        result.served_by = "cache"
        result.timings_ms = {**self.timings, "total": (time.perf_counter() - self.started) * 1000}
        if self.service.metrics:
            self.service.metrics.answers.labels(served_by="cache", reason=result.reason).inc()
        return result

    async def answer(self, emit: Any = None) -> AnswerResult:
        """Search, answer, cache."""
        tandem = self.tandem
        search, entry = await run_search(
            tandem,
            self.name,
            SearchRequest(query=self.question, top_k=self.top_k, filters=self.raw_filters),
            route=ASK_ROUTE,
        )
        self.timings["search"] = search.timings_ms.get("total", 0.0)
        result = await self.service.answer(
            self.question,
            search.hits,
            index=search.index,
            version=search.version,
            mode=self.mode,
            offload=tandem.limiter.run,
            embedder=entry.retriever.embedder,
            deadline=self.deadline,
            emit=emit,
            timings=self.timings,
        )
        result.timings_ms["total"] = (time.perf_counter() - self.started) * 1000
        tandem.metrics.observe_stages(ASK_ROUTE, result.timings_ms)
        if self.key is not None and result.cacheable and search.version == entry.version:
            payload = json.dumps(result.as_dict(), ensure_ascii=False).encode()
            await tandem.cache.set(self.key, payload, tandem.settings.cache_ttl_s)
        return result


def sse(event: str | None, data: Any) -> str:
    """One Server-Sent Event (``data`` as JSON; a string as is)."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return (f"event: {event}\n" if event else "") + f"data: {payload}\n\n"


async def answer_events(q: AskQuestion) -> AsyncIterator[tuple[str, Any]]:
    """``(kind, data)`` events of one answer: token/reset as they come, then done or error."""
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    async def emit(kind: str, data: dict[str, Any]) -> None:
        await queue.put((kind, data))

    async def run() -> None:
        try:
            result = await q.answer(emit)
        except Exception as exc:  # noqa: BLE001 - becomes an error event: headers are sent
            _, code, message, _ = describe(exc)
            await queue.put(("error", {"error": {"code": code, "message": message}}))
            return
        await queue.put(("done", result))

    task = asyncio.create_task(run())
    try:
        while True:
            kind, data = await queue.get()
            yield kind, data
            if kind in ("done", "error"):
                break
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _result_struct(result: AnswerResult) -> AskResponse:
    return msgspec.convert(result.as_dict(), AskResponse)


# -- OpenAI face helpers -----------------------------------------------------------------------
def index_of_model(model: str) -> str:
    name = model.strip()
    return name[len(MODEL_PREFIX) :] if name.startswith(MODEL_PREFIX) else name


def last_user_message(messages: list[ChatMessage]) -> str:
    for message in reversed(messages):
        if message.role != "user":
            continue
        content = message.content
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            parts = [
                str(p.get("text", ""))
                for p in content
                if isinstance(p, dict) and p.get("type") == "text"
            ]
            return "\n".join(parts)
        return ""
    raise InvalidRequest("messages: no user message to answer")


def usage_of(result: AnswerResult) -> dict[str, int]:
    """OpenAI ``usage``: the LLM's tokens when an LLM answered this request; 0 when the small
    models did (their work is in ``tandem.timings_ms``) or the answer came from the cache."""
    prompt = int(result.usage.get("prompt_tokens", 0)) if result.served_by == "llm" else 0
    completion = int(result.usage.get("completion_tokens", 0)) if result.served_by == "llm" else 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _completion(result: AnswerResult, model: str, cid: str, created: int) -> dict[str, Any]:
    return {
        "id": cid,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": result.answer},
                "finish_reason": "stop",
            }
        ],
        "usage": usage_of(result),
        "tandem": result.as_dict(),
    }


def _chunk(
    cid: str, created: int, model: str, delta: dict[str, Any], finish: str | None = None
) -> dict[str, Any]:
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


async def chat_chunks(
    q: AskQuestion, model: str, cached: AnswerResult | None
) -> AsyncIterator[str]:
    cid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
    yield sse(None, _chunk(cid, created, model, {"role": "assistant", "content": ""}))
    if cached is not None:
        events: AsyncIterator[tuple[str, Any]] = _replay(cached)
    else:
        events = answer_events(q)
    async for kind, data in events:
        if kind == "token":
            yield sse(None, _chunk(cid, created, model, {"content": data["text"]}))
        elif kind == "reset":
            # Streamed text cannot be taken back here: the small answer follows it.
            yield sse(None, _chunk(cid, created, model, {"content": "\n\n"}))
        elif kind == "error":
            yield sse(None, data)
        else:
            final = _chunk(cid, created, model, {}, "stop")
            final["usage"] = usage_of(data)  # as OpenAI's stream_options.include_usage
            final["tandem"] = data.as_dict()
            yield sse(None, final)
    yield sse(None, "[DONE]")


async def _replay(result: AnswerResult) -> AsyncIterator[tuple[str, Any]]:
    yield "token", {"text": result.answer}
    yield "done", result


async def ask_stream(q: AskQuestion, cached: AnswerResult | None) -> AsyncIterator[str]:
    events = _replay(cached) if cached is not None else answer_events(q)
    async for kind, data in events:
        yield sse(kind, data.as_dict() if isinstance(data, AnswerResult) else data)


# -- controllers -------------------------------------------------------------------------------
class AskController(Controller):
    path = "/v1/indexes"
    tags = ("answers",)

    @post(
        "/{name:str}/ask",
        operation_id="ask_index",
        status_code=200,
        summary="A grounded, cited answer from one index (small model, LLM or cascade).",
        description="With stream=true: text/event-stream of `token` events, then `done` with "
        "the whole answer object (a `reset` event first if an LLM failed mid-stream).",
        responses=_errors(400, 401, 403, 404, 409, 413, 415, 422, 429, 503),
        guards=[json_body_guard],
    )
    async def ask(
        self, request: Request[Any, Any, Any], tandem: ServiceState, name: str, data: AskRequest
    ) -> Response[AskResponse]:
        require_index_access(request, name)
        data = await decode_strict(request, AskRequest)
        request.scope["state"]["index"] = name
        q = AskQuestion(tandem, name, data.question, data.mode, data.top_k, data.filters)
        cached = await q.cached()
        request.scope["state"]["cached"] = cached is not None
        if data.stream:
            return cast(
                Response[AskResponse],
                Stream(ask_stream(q, cached), media_type="text/event-stream", headers=SSE_HEADERS),
            )
        result = cached or await q.answer()
        return Response(_result_struct(result))


class OpenAIController(Controller):
    path = "/v1"
    tags = ("openai",)

    @get(
        "/models",
        operation_id="list_models",
        summary="OpenAI-compatible: each readable index as model tandem/<index>.",
        responses=_errors(401, 429),
    )
    async def models(self, request: Request[Any, Any, Any], tandem: ServiceState) -> ModelList:
        names = readable(request, await anyio.to_thread.run_sync(tandem.indexes.names))
        created = int(tandem.started_at)
        return ModelList(data=[ModelCard(id=MODEL_PREFIX + n, created=created) for n in names])

    @post(
        "/chat/completions",
        operation_id="chat_completions",
        status_code=200,
        summary="OpenAI-compatible chat completions over an index (model tandem/<index>).",
        description="The last user message is the question. The answer object (citations, "
        "served_by, grounded, ...) is in the extra field `tandem` (of the last chunk when "
        "streaming). Extra body fields: mode, top_k, filters.",
        responses=_errors(400, 401, 403, 404, 409, 413, 415, 422, 429, 503),
        guards=[json_body_guard],
    )
    async def chat(
        self, request: Request[Any, Any, Any], tandem: ServiceState, data: ChatRequest
    ) -> Response[dict[str, Any]]:
        data = await decode_strict(request, ChatRequest)
        name = index_of_model(data.model)
        require_index_access(request, name)
        request.scope["state"]["index"] = name
        question = last_user_message(data.messages)
        q = AskQuestion(tandem, name, question, data.mode, data.top_k, data.filters)
        cached = await q.cached()
        request.scope["state"]["cached"] = cached is not None
        model = MODEL_PREFIX + name
        if data.stream:
            return cast(
                Response[dict[str, Any]],
                Stream(
                    chat_chunks(q, model, cached),
                    media_type="text/event-stream",
                    headers=SSE_HEADERS,
                ),
            )
        result = cached or await q.answer()
        cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        return Response(_completion(result, model, cid, int(time.time())))


# -- startup -----------------------------------------------------------------------------------
@asynccontextmanager
async def answers_hook(app: Litestar, state: ServiceState) -> AsyncIterator[None]:
    """Load the reader, checker and LLM once; readiness components ``llm`` and ``answers``."""
    metrics = AnswerMetrics(state.metrics.registry)
    service = await anyio.to_thread.run_sync(
        lambda: load_answer_service(
            state.settings, reranker=state.reranker, embedder=state.embedder, metrics=metrics
        )
    )
    state.extras[EXTRA] = service

    async def llm_health() -> tuple[Any, str]:
        return service.llm.health()

    async def answers_health() -> tuple[Any, str]:
        return service.health()

    state.health_checks["llm"] = llm_health
    state.health_checks["answers"] = answers_health
    try:
        yield
    finally:
        state.extras.pop(EXTRA, None)
        await service.aclose()

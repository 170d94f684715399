"""OpenTelemetry traces of requests and jobs, off unless an OTLP endpoint is configured.

With ``TANDEM_OTEL_ENDPOINT`` (or the standard ``OTEL_EXPORTER_OTLP_ENDPOINT``) set,
:func:`setup` installs one process-wide SDK ``TracerProvider`` exporting over OTLP/HTTP, and:

* the app is wrapped by the OpenTelemetry ASGI middleware (one server span per request; an
  incoming W3C ``traceparent`` is honoured), and httpx and redis are instrumented (a client
  span per LLM call and per Redis command; httpx injects ``traceparent`` into the LLM request);
* every stage of a search or an answer becomes a child span: ``cache``, ``embed``,
  ``search.dense``, ``search.sparse``, ``fuse``, ``rerank``, ``fetch``, ``search``, ``read``
  (the small reader), ``prompt``, ``llm`` (with its token counts), ``check``. They are built
  from the per-stage timings that the retriever and the answer service already measure (the
  numbers the responses carry in ``timings_ms`` and Prometheus gets through
  :meth:`app.metrics.Metrics.observe_stages`), as spans with explicit start and end times, so
  the lower layers know nothing of tracing. Each carries ``tandem.index``, ``tandem.version``,
  ``tandem.mode`` and ``tandem.served_by`` (when known); the query text only with
  ``TANDEM_OTEL_CONTENT=true``;
* an index job is a trace of its own with spans ``load``, ``chunk``, ``curate``, ``embed``,
  ``publish`` (from the build's own timings).

Without an endpoint nothing is installed: :func:`enabled` is false, the app is not wrapped,
and the one remaining cost is a contextvar lookup per request.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app.metrics import Metrics

if TYPE_CHECKING:
    from litestar import Request, Response
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

    from app.settings import Settings

log = logging.getLogger("tandem.tracing")

TRACER_NAME = "tandem"
#: Paths never traced (probes and scrapes would drown the traces that matter).
EXCLUDED_URLS = "health/.*,metrics"

#: Stage name in ``timings_ms`` -> span name, in pipeline order (the order spans are laid out).
SEARCH_STAGES: tuple[tuple[str, str], ...] = (
    ("cache", "cache"),
    ("embed", "embed"),
    ("queue", "queue"),
    ("filter", "filter"),
    ("dense", "search.dense"),
    ("bm25", "search.sparse"),
    ("fusion", "fuse"),
    ("rerank", "rerank"),
    ("fetch", "fetch"),
)
ANSWER_STAGES: tuple[tuple[str, str], ...] = (
    ("cache", "cache"),
    ("search", "search"),
    ("small", "read"),
    ("prompt", "prompt"),
    ("llm", "llm"),
    ("check", "check"),
)
#: Build timings (seconds) -> span name, in order.
JOB_STAGES: tuple[tuple[str, str], ...] = (
    ("load_s", "load"),
    ("chunk_s", "chunk"),
    ("curate_s", "curate"),
    ("embed_s", "embed"),
    ("write_s", "publish"),
)


@dataclass
class _State:
    provider: TracerProvider | None = None
    content: bool = False
    instrumented: bool = False


_STATE = _State()


def enabled() -> bool:
    """Whether a tracer provider is installed (spans are recorded)."""
    return _STATE.provider is not None


def content_enabled() -> bool:
    return _STATE.content


def provider() -> TracerProvider | None:
    return _STATE.provider


def tracer() -> Tracer:
    from opentelemetry import trace

    if _STATE.provider is None:
        return trace.NoOpTracer()
    return _STATE.provider.get_tracer(TRACER_NAME)


def endpoint_of(settings: Settings) -> str | None:
    """The OTLP/HTTP traces URL: ``TANDEM_OTEL_ENDPOINT``, else the standard variables."""
    base = settings.otel_endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    traces = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if not base:
        return traces or None
    base = base.rstrip("/")
    return base if base.endswith("/v1/traces") else base + "/v1/traces"


def setup(settings: Settings) -> bool:
    """Install the process's tracer provider when an endpoint is configured (once)."""
    if _STATE.provider is not None:
        return True
    url = endpoint_of(settings)
    if not url:
        return False
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ModuleNotFoundError as exc:
        log.error("tracing configured but %s (a dependency of tandem)", exc)
        return False
    resource = Resource.create({"service.name": settings.otel_service_name})
    tp = TracerProvider(resource=resource)
    tp.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
    install(tp, content=settings.otel_content)
    from opentelemetry import trace

    trace.set_tracer_provider(tp)  # spans of other libraries (the MCP SDK's) go there too
    log.info("tracing: exporting spans to %s", url)
    return True


def install(tp: TracerProvider, *, content: bool = False) -> None:
    """Use ``tp`` for every span of this process and instrument httpx and redis with it."""
    _STATE.provider = tp
    _STATE.content = content
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    if _STATE.instrumented:
        HTTPXClientInstrumentor().uninstrument()
        RedisInstrumentor().uninstrument()
    HTTPXClientInstrumentor().instrument(tracer_provider=tp)
    RedisInstrumentor().instrument(tracer_provider=tp)
    _STATE.instrumented = True


def uninstall() -> None:
    """Back to no tracing (tests)."""
    if _STATE.instrumented:
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        HTTPXClientInstrumentor().uninstrument()
        RedisInstrumentor().uninstrument()
    _STATE.provider, _STATE.content, _STATE.instrumented = None, False, False


def wrap_asgi(app: Any) -> Any:
    """``app`` inside the OpenTelemetry ASGI middleware (a server span per request)."""
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    return OpenTelemetryMiddleware(
        app,
        excluded_urls=EXCLUDED_URLS,
        tracer_provider=_STATE.provider,
        default_span_details=_span_details,
    )


def _span_details(scope: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    method = str(scope.get("method", "HTTP"))
    return f"{method} {scope.get('path', '')}", {}


def current_context() -> Any:
    """The current OpenTelemetry context (to hand to work that runs in other tasks)."""
    from opentelemetry import context

    return context.get_current()


@contextlib.contextmanager
def span(name: str, parent: Any = None, **attrs: Any) -> Iterator[Any]:
    """A current span ``name`` (a child of ``parent``, a context, when given); no-op when off."""
    if _STATE.provider is None:
        yield None
        return
    with tracer().start_as_current_span(
        name, context=parent, attributes=_attributes(attrs)
    ) as current_span:
        yield current_span


# -- one request's stages ----------------------------------------------------------------------
@dataclass
class RequestTrace:
    """What one request learns while it runs; spans are made from it at the end."""

    attrs: dict[str, Any] = field(default_factory=dict)
    records: list[tuple[dict[str, float], int]] = field(default_factory=list)
    tokens: dict[str, int] = field(default_factory=dict)


_CURRENT: ContextVar[RequestTrace | None] = ContextVar("tandem_request_trace", default=None)


def current() -> RequestTrace | None:
    return _CURRENT.get()


@contextlib.contextmanager
def request_trace(**attrs: Any) -> Iterator[RequestTrace]:
    """Collect the stages of the code inside, then turn them into spans (MCP tools, tests)."""
    rt = RequestTrace({k: v for k, v in attrs.items() if v is not None})
    token = _CURRENT.set(rt)
    try:
        yield rt
    finally:
        _CURRENT.reset(token)
        flush(rt)


def note(**attrs: Any) -> None:
    """Add attributes to the current request's trace (no-op without one)."""
    rt = _CURRENT.get()
    if rt is not None:
        rt.attrs.update({k: v for k, v in attrs.items() if v is not None})


class TracedMetrics(Metrics):
    """:class:`Metrics` that also keeps each request's stage timings for its spans."""

    def observe_stages(self, route: str, timings_ms: dict[str, float]) -> None:
        super().observe_stages(route, timings_ms)
        rt = _CURRENT.get()
        if rt is None:
            rt = RequestTrace()
            rt.records.append((dict(timings_ms), time.time_ns()))
            flush(rt)
        else:
            rt.records.append((dict(timings_ms), time.time_ns()))


def _attributes(attrs: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if key == "query" and not _STATE.content:
            continue
        if isinstance(value, str | bool | int | float):
            out[f"tandem.{key}"] = value
    return out


def _lay_out(
    tr: Tracer,
    timings: Mapping[str, float],
    end_ns: int,
    stages: tuple[tuple[str, str], ...],
    attrs: dict[str, Any],
    context: Any = None,
) -> dict[str, Span]:
    """Spans of ``stages`` in order, back to back, ending by ``end_ns`` (durations in ms)."""
    total_ms = timings.get("total") or sum(timings.get(k, 0.0) for k, _ in stages)
    cursor = end_ns - int(total_ms * 1e6)
    spans: dict[str, Span] = {}
    for key, name in stages:
        ms = timings.get(key)
        if ms is None:
            continue
        stop = cursor + int(ms * 1e6)
        span = tr.start_span(f"tandem.{name}", context=context, start_time=cursor, attributes=attrs)
        span.set_attribute("tandem.stage", name)
        span.set_attribute("tandem.duration_ms", round(float(ms), 3))
        spans[key] = span
        span.end(end_time=stop)
        cursor = stop
    return spans


def flush(rt: RequestTrace) -> None:
    """Turn a request's recorded stage timings into child spans of the current span."""
    if _STATE.provider is None or not rt.records:
        return
    from opentelemetry import trace

    tr = tracer()
    attrs = _attributes(rt.attrs)
    parent = trace.get_current_span()
    if parent.is_recording():
        parent.set_attributes(attrs)
    answers = [r for r in rt.records if "search" in r[0]]
    searches = [r for r in rt.records if "search" not in r[0]]
    search_parent = None
    for timings, end_ns in answers:
        spans = _lay_out(tr, timings, end_ns, ANSWER_STAGES, attrs)
        llm = spans.get("llm")
        if llm is not None:
            for kind, n in rt.tokens.items():
                llm.set_attribute(f"gen_ai.usage.{kind}", n)
            if "llm_first_token" in timings:
                llm.set_attribute("tandem.first_token_ms", round(timings["llm_first_token"], 3))
        if "search" in spans:
            search_parent = trace.set_span_in_context(spans["search"])
    for timings, end_ns in searches:
        _lay_out(tr, timings, end_ns, SEARCH_STAGES, attrs, search_parent)
    rt.records.clear()


def record_tokens(prompt: int | None, completion: int | None) -> None:
    rt = _CURRENT.get()
    if rt is None:
        return
    if prompt:
        rt.tokens["input_tokens"] = rt.tokens.get("input_tokens", 0) + int(prompt)
    if completion:
        rt.tokens["output_tokens"] = rt.tokens.get("output_tokens", 0) + int(completion)


class _TokenTap:
    """Wraps the answer service's ``llm_tokens`` counter: counts also go to the request trace."""

    def __init__(self, counter: Any) -> None:
        self._counter = counter

    def labels(self, *args: Any, **kwargs: Any) -> Any:
        child = self._counter.labels(*args, **kwargs)
        kind = kwargs.get("kind") or (args[0] if args else "")
        return _TokenChild(child, str(kind))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._counter, name)


class _TokenChild:
    def __init__(self, child: Any, kind: str) -> None:
        self._child, self._kind = child, kind

    def inc(self, amount: float = 1) -> None:
        self._child.inc(amount)
        if self._kind == "prompt":
            record_tokens(int(amount), None)
        elif self._kind == "completion":
            record_tokens(None, int(amount))


def tap_tokens(answer_metrics: Any) -> None:
    """Let the LLM span carry the tokens the answer service counts (idempotent)."""
    counter = getattr(answer_metrics, "llm_tokens", None)
    if counter is not None and not isinstance(counter, _TokenTap):
        answer_metrics.llm_tokens = _TokenTap(counter)


# -- Litestar hooks (REST) ---------------------------------------------------------------------
async def before_request(request: Request[Any, Any, Any]) -> None:
    """Open the request's trace record: the index and the mode (and the query with content)."""
    rt = RequestTrace()
    _CURRENT.set(rt)
    name = request.path_params.get("name")
    if isinstance(name, str):
        rt.attrs["index"] = name
    if request.method != "POST" or not request.headers.get("content-type", "").startswith(
        "application/json"
    ):
        return
    try:
        import msgspec

        body = msgspec.json.decode(await request.body())
    except Exception:  # noqa: BLE001 - the handler reports a bad body; tracing says nothing
        return
    if isinstance(body, dict):
        mode = body.get("mode")
        if not isinstance(mode, str):  # the schemas' defaults: search hybrid, answers auto
            mode = "hybrid" if "query" in body else "auto"
        rt.attrs["mode"] = mode
        model = body.get("model")
        if isinstance(model, str) and "index" not in rt.attrs:
            rt.attrs["index"] = model.removeprefix("tandem/")
        query = body.get("query") or body.get("question")
        if isinstance(query, str):
            rt.attrs["query"] = query


async def after_request(response: Response[Any]) -> Response[Any]:
    """Close the request's trace record: version, served_by, tokens; make the stage spans."""
    rt = _CURRENT.get()
    if rt is None:
        return response
    content = response.content
    data: Any = content
    if not isinstance(content, dict):
        data = {
            k: getattr(content, k)
            for k in ("index", "version", "served_by", "reason", "cached")
            if hasattr(content, k)
        }
    for key in ("index", "version", "served_by", "reason", "cached"):
        if key in data and data[key] is not None:
            rt.attrs[key] = data[key]
    extra = data.get("tandem") if isinstance(data, dict) else None
    if isinstance(extra, dict):
        for key in ("version", "served_by", "reason", "cached"):
            if extra.get(key) is not None:
                rt.attrs[key] = extra[key]
    if "served_by" in rt.attrs and "cached" not in rt.attrs:
        rt.attrs["cached"] = rt.attrs["served_by"] == "cache"
    flush(rt)
    _CURRENT.set(None)
    return response


@contextlib.asynccontextmanager
async def tracing_hook(app: Any, state: Any) -> AsyncIterator[None]:
    """Lifespan hook: the LLM span gets the tokens that the answer service counts."""
    service = state.extras.get("answers")
    if enabled() and service is not None and getattr(service, "metrics", None) is not None:
        tap_tokens(service.metrics)
    yield


# -- jobs --------------------------------------------------------------------------------------
@contextlib.contextmanager
def job_span(index: str, job_id: str, action: str) -> Iterator[Any]:
    """The root span of one index job (a trace of its own); no-op when tracing is off."""
    with span("tandem.job", index=index, job_id=job_id, action=action) as current:
        yield current


def record_build(current: Any, result: Any) -> None:
    """Stage spans (load, chunk, curate, embed, publish) of a finished build, from its timings.

    Loading and chunking overlap (a reader feeds the chunker), so both start with the build;
    curation, embedding and publishing follow one another up to the build's end.
    """
    if current is None or _STATE.provider is None:
        return
    from opentelemetry import trace

    timings: dict[str, float] = dict(getattr(result, "timings", {}) or {})
    current.set_attribute("tandem.version", int(result.version))
    current.set_attribute("tandem.chunks", int(result.chunks))
    current.set_attribute("tandem.documents", int(result.documents))
    end = time.time_ns()
    start = end - int(float(result.seconds) * 1e9)
    parent = trace.set_span_in_context(current)
    tr = tracer()
    attrs = _attributes({"index": result.index, "version": int(result.version)})
    read_end = start + int(timings.get("read_chunk_wall_s", 0.0) * 1e9)
    cursor = read_end
    for key, name in JOB_STAGES:
        if key not in timings:
            continue
        seconds = float(timings[key])
        if key in ("load_s", "chunk_s"):
            begin, stop = start, start + int(seconds * 1e9)
        else:
            begin, stop = cursor, cursor + int(seconds * 1e9)
            cursor = stop
        s = tr.start_span(f"tandem.{name}", context=parent, start_time=begin, attributes=attrs)
        s.set_attribute("tandem.stage", name)
        s.end(end_time=min(max(stop, begin), end))

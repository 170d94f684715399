"""Request and response bodies of the HTTP API (msgspec Structs, documented in OpenAPI).

These are the service's wire format, kept apart from the internal objects (``Hit``,
``SearchResult``, manifests) so that either can change without breaking the other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import msgspec

if TYPE_CHECKING:
    from litestar import Request
    from litestar.connection import ASGIConnection

T = TypeVar("T")

#: Hard upper bound of the schema; the served bound is ``TANDEM_MAX_QUERY_CHARS``.
QUERY_MAX = 100_000
FilterValue = str | int | float | bool
Mode = Literal["hybrid", "dense", "bm25"]
ComponentState = Literal["ok", "absent", "down"]
AskMode = Literal["auto", "llm", "small"]


class SearchRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A search in one index."""

    query: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=QUERY_MAX,
            description="The query text (at most TANDEM_MAX_QUERY_CHARS characters).",
            examples=["how does lightning form?"],
        ),
    ]
    top_k: Annotated[int, msgspec.Meta(ge=1, le=100, description="Hits to return.")] = 10
    mode: Annotated[
        Mode, msgspec.Meta(description="hybrid (BM25 + dense, fused), dense or bm25.")
    ] = "hybrid"
    filters: Annotated[
        dict[str, FilterValue | list[FilterValue]] | None,
        msgspec.Meta(
            description="Metadata filters: field -> value or list of values (any of them). "
            "Fields: metadata keys, or source, doc_id, chunk_id.",
            examples=[{"topic": ["science", "history"]}],
        ),
    ] = None
    rerank: Annotated[
        bool | None,
        msgspec.Meta(
            description="Rerank the candidates with the cross-encoder; null: whenever a reranker "
            "is configured. true with no reranker configured: 409."
        ),
    ] = None


class HitOut(msgspec.Struct, kw_only=True):
    """One retrieved chunk (the same shape as ``tandem search --json``)."""

    rank: int
    score: float
    text: str
    source: str
    doc_id: str
    chunk_id: str
    metadata: dict[str, Any]


class SearchResponse(msgspec.Struct, kw_only=True):
    index: str
    version: Annotated[int, msgspec.Meta(description="The index version that answered.")]
    hits: list[HitOut]
    cached: Annotated[bool, msgspec.Meta(description="Answered from the cache.")]
    timings_ms: Annotated[
        dict[str, float],
        msgspec.Meta(
            description="Milliseconds per stage (cache, embed, bm25, dense, fusion, rerank, fetch) "
            "and total."
        ),
    ]


class IndexSummary(msgspec.Struct, kw_only=True):
    name: str
    version: int
    documents: int
    chunks: int
    store: str
    embedder: str
    created_at: str


class IndexList(msgspec.Struct, kw_only=True):
    indexes: list[IndexSummary]


class ErrorDetail(msgspec.Struct, kw_only=True):
    code: Annotated[
        str,
        msgspec.Meta(
            description="Stable machine code: unauthorized, forbidden, index_not_found, "
            "validation_error, rate_limited, reranker_unavailable, ...",
        ),
    ]
    message: str


class ErrorBody(msgspec.Struct, kw_only=True):
    """Every error response: ``{"error": {"code", "message"}}``."""

    error: ErrorDetail


class Live(msgspec.Struct, kw_only=True):
    status: Literal["ok"] = "ok"


class Ready(msgspec.Struct, kw_only=True):
    status: Annotated[
        Literal["ready", "degraded", "unavailable"],
        msgspec.Meta(
            description="ready: all components ok; degraded: answering without some (e.g. Redis "
            "down: uncached); unavailable: cannot answer (503)."
        ),
    ]
    components: Annotated[
        dict[str, ComponentState],
        msgspec.Meta(description="models, indexes and redis: ok, absent or down."),
    ]
    details: dict[str, str]


# -- answers: /v1/indexes/{name}/ask and the OpenAI-compatible face ---------------------------


class AskRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A question about one index."""

    question: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=QUERY_MAX,
            description="The question (at most TANDEM_MAX_QUERY_CHARS characters).",
            examples=["When did Apollo 11 land on the Moon?"],
        ),
    ]
    mode: Annotated[
        AskMode,
        msgspec.Meta(
            description="auto: the small answer when it is confident or no LLM is usable, else "
            "the LLM; llm: the LLM (small answer on its failure); small: no LLM."
        ),
    ] = "auto"
    top_k: (
        Annotated[
            int,
            msgspec.Meta(
                ge=1, le=50, description="Passages given to the answerers (TANDEM_ASK_TOP_K)."
            ),
        ]
        | None
    ) = None
    filters: Annotated[
        dict[str, FilterValue | list[FilterValue]] | None,
        msgspec.Meta(description="Metadata filters of the retrieval, as in search."),
    ] = None
    stream: Annotated[
        bool, msgspec.Meta(description="Answer as Server-Sent Events (token ..., done).")
    ] = False


class Citation(msgspec.Struct, kw_only=True):
    n: Annotated[int, msgspec.Meta(description="The marker number: [n] in the answer.")]
    source: str
    doc_id: str
    chunk_id: str
    text: str


class Grounded(msgspec.Struct, kw_only=True, omit_defaults=True):
    score: Annotated[
        float | None,
        msgspec.Meta(
            description="Answer-level support 0..1 (the least supported sentence); null when "
            "nothing was checked (see reason)."
        ),
    ]
    unsupported: Annotated[
        list[str], msgspec.Meta(description="Answer sentences the passages do not support.")
    ]
    method: Annotated[str, msgspec.Meta(description="checker, extractive (a quote) or none.")]
    checker: str | None = None
    reason: str | None = None


class AskResponse(msgspec.Struct, kw_only=True):
    index: str
    version: Annotated[int, msgspec.Meta(description="The index version that answered.")]
    answer: Annotated[str, msgspec.Meta(description="The answer with citation markers [n].")]
    citations: list[Citation]
    grounded: Grounded
    confidence: Annotated[
        float | None,
        msgspec.Meta(
            description="Small answers: the reader's (or sentence scorer's) confidence; LLM "
            "answers: the groundedness score."
        ),
    ]
    served_by: Annotated[
        Literal["llm", "small", "cache"], msgspec.Meta(description="Who answered.")
    ]
    reason: Annotated[
        str,
        msgspec.Meta(
            description="Why: requested, no_llm, constrained, llm_unavailable, circuit_open, "
            "confident_small, low_confidence, llm_timeout, llm_error."
        ),
    ]
    cached: bool
    timings_ms: Annotated[
        dict[str, float],
        msgspec.Meta(
            description="Milliseconds per stage: cache, search, small, prompt, llm, "
            "llm_first_token, check, total."
        ),
    ]
    invalid_citations: Annotated[
        list[int], msgspec.Meta(description="Passage numbers cited but never given (removed).")
    ] = []
    extract: Annotated[
        dict[str, Any] | None,
        msgspec.Meta(description="Small answers: found, span, sentence, n, method."),
    ] = None
    model: Annotated[str | None, msgspec.Meta(description="The LLM that answered.")] = None


class ChatMessage(msgspec.Struct, kw_only=True):
    role: str
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None


class ChatRequest(msgspec.Struct, kw_only=True):
    """An OpenAI chat-completions request (other OpenAI fields are accepted and ignored)."""

    model: Annotated[str, msgspec.Meta(description="tandem/<index> (or just the index name).")]
    messages: Annotated[list[ChatMessage], msgspec.Meta(min_length=1, max_length=256)]
    stream: bool = False
    mode: AskMode = "auto"
    top_k: Annotated[int, msgspec.Meta(ge=1, le=50)] | None = None
    filters: dict[str, FilterValue | list[FilterValue]] | None = None


class ModelCard(msgspec.Struct, kw_only=True):
    id: str
    object: str = "model"
    created: int = 0
    owned_by: str = "tandem"


class ModelList(msgspec.Struct, kw_only=True):
    object: str = "list"
    data: list[ModelCard]


async def decode_strict(request: Request[Any, Any, Any], type_: type[T]) -> T:
    """The body decoded strictly as ``type_``: no ``"3"`` for 3 or ``1`` for true.

    Litestar's own body parsing (which documents the schema in OpenAPI) coerces such values;
    handlers call this as well so that a wrong JSON type is a 422, not a guess.

    Raises:
        InvalidRequest: (422) the body does not match ``type_``.
    """
    from app.errors import InvalidRequest

    try:
        return msgspec.json.decode(await request.body(), type=type_, strict=True)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(str(exc)) from exc


async def json_body_guard(connection: ASGIConnection[Any, Any, Any, Any], _: Any) -> None:
    """Route guard of the JSON routes (search, ask, chat): refuse a body that is not JSON.

    Runs before Litestar reads the body, so a form or text body is a 415 rather than a
    parse error. No ``Content-Type`` at all is read as JSON (what a bare client sends).

    Raises:
        UnsupportedMediaType: (415) any other ``Content-Type`` than ``application/json`` or
            ``*/*+json``.
    """
    from app.errors import UnsupportedMediaType

    ctype = connection.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype not in ("", "application/json") and not ctype.endswith("+json"):
        raise UnsupportedMediaType(
            f"content type {ctype!r}: send the body as JSON with "
            "'Content-Type: application/json' (curl: -H 'Content-Type: application/json')"
        )

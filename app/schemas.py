"""Request and response bodies of the HTTP API (msgspec Structs, documented in OpenAPI).

These are the service's wire format, kept apart from the internal objects (``Hit``,
``SearchResult``, manifests) so that either can change without breaking the other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import msgspec

if TYPE_CHECKING:
    from litestar import Request

T = TypeVar("T")

#: Hard upper bound of the schema; the served bound is ``TANDEM_MAX_QUERY_CHARS``.
QUERY_MAX = 100_000
FilterValue = str | int | float | bool
Mode = Literal["hybrid", "dense", "bm25"]
ComponentState = Literal["ok", "absent", "down"]


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


async def decode_strict(request: Request[Any, Any, Any], type_: type[T]) -> T:
    """The body decoded strictly as ``type_``: no ``"3"`` for 3 or ``1`` for true.

    Litestar's own body parsing (which documents the schema in OpenAPI) coerces such values;
    handlers call this as well so that a wrong JSON type is a 422, not a guess.
    """
    from app.errors import InvalidRequest

    try:
        return msgspec.json.decode(await request.body(), type=type_, strict=True)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(str(exc)) from exc

"""``/v1/indexes``: list, show (the manifest) and search.

:func:`run_search` is the whole search flow (bounds, access, cache, offloaded model calls,
metrics); other controllers (``/ask``, chat) call it rather than the retriever directly.
"""

from __future__ import annotations

import time
from typing import Any

import anyio.to_thread
import msgspec
import numpy as np
from litestar import Controller, Request, get, post
from litestar.openapi import ResponseSpec

from app.cache import cache_key
from app.schemas import (
    ErrorBody,
    HitOut,
    IndexList,
    IndexSummary,
    SearchRequest,
    SearchResponse,
    decode_strict,
    json_body_guard,
)
from app.security import check_filters, normalise_query, readable, require_index_access
from app.state import LoadedIndex, ServiceState
from retrievers.retriever import Retriever, SearchResult
from stores.chunkstore import normalise_filters
from stores.errors import IndexNotFound
from stores.layout import IndexLayout

ROUTE = "/v1/indexes/{name}/search"


def _errors(*codes: int) -> dict[int, ResponseSpec]:
    text = {
        400: "Malformed JSON or a bad filter.",
        401: "No valid API key.",
        403: "The key may not read this index.",
        404: "No such index.",
        409: "Reranking requested but no reranker is configured; embedder mismatch.",
        413: "Request body too large.",
        415: "The body is not JSON (Content-Type other than application/json).",
        422: "The body does not match the schema or breaks a bound.",
        429: "Rate limit exceeded (see Retry-After).",
        503: "Busy or a component is unavailable.",
    }
    return {c: ResponseSpec(ErrorBody, description=text[c]) for c in codes}


class _Cached(msgspec.Struct):
    index: str
    version: int
    hits: list[HitOut]


def _summary(name: str, m: dict[str, Any]) -> IndexSummary:
    return IndexSummary(
        name=name,
        version=int(m["version"]),
        documents=int(m["counts"]["documents"]),
        chunks=int(m["counts"]["chunks"]),
        store=str(m["store"]["backend"]),
        embedder=str(m["embedder"]["spec"]),
        created_at=str(m["created_at"]),
    )


def read_summaries(data_dir: Any, names: list[str]) -> list[IndexSummary]:
    out = []
    for name in names:
        try:
            out.append(_summary(name, IndexLayout(data_dir, name).manifest()))
        except (IndexNotFound, OSError, KeyError, ValueError):
            continue  # deleted or half-written between listing and reading
    return out


def _reranker_identity(reranker: Any) -> list[Any]:
    """What makes a reranker's order: its identity and its top_n/fusion settings."""
    return [
        getattr(reranker, "fingerprint", None) or getattr(reranker, "name", "reranker"),
        getattr(reranker, "top_n", None),
        getattr(reranker, "fusion_weight", None),
    ]


def _search_sync(
    retriever: Retriever,
    query: str,
    top_k: int,
    mode: str,
    filters: dict[str, list[str]],
    rerank: bool,
    vector: np.ndarray | None,
    fingerprint: str,
    candidates: int,
) -> tuple[SearchResult, np.ndarray | None]:
    """Embed (unless the vector came from the cache) and search; runs in a worker thread."""
    new_vector = None
    embed_ms = None
    if mode != "bm25" and (vector is None or retriever.embedder.fingerprint != fingerprint):
        t = time.perf_counter()
        vector = retriever.embed_queries([query])[0]
        embed_ms = (time.perf_counter() - t) * 1000
        new_vector = vector
    result = retriever.search(
        query,
        top_k,
        mode,
        filters or None,
        rerank,
        query_vector=vector if mode != "bm25" else None,
        candidates=candidates,
    )
    if embed_ms is not None:
        result.timings_ms["embed"] = embed_ms
    return result, new_vector


async def run_search(
    tandem: ServiceState, name: str, req: SearchRequest, route: str = ROUTE
) -> tuple[SearchResponse, LoadedIndex]:
    """Search index ``name`` as the service does: cached, offloaded, measured.

    The caller checks access first (:func:`app.security.require_index_access`).
    """
    started = time.perf_counter()
    s = tandem.settings
    query = normalise_query(req.query, s.max_query_chars)
    check_filters(req.filters, s.max_filter_fields)
    filters = {k: sorted(set(v)) for k, v in sorted(normalise_filters(req.filters).items())}
    if req.rerank:
        tandem.require_reranker()
    use_rerank = req.rerank if req.rerank is not None else tandem.reranking
    entry = await tandem.indexes.get(name)
    retriever = entry.retriever
    snapshot = retriever.snapshot
    # First-stage depth as in the CLI; the reranker scores its own top_n of these.
    candidates = max(req.top_k, s.candidates)
    use_cache = s.cache_ttl_s > 0
    cache = tandem.cache
    timings: dict[str, float] = {}

    key = cache_key(
        s.cache_prefix,
        "search",
        name,
        entry.tag,
        payload={
            "q": query,
            "k": req.top_k,
            "m": req.mode,
            "f": filters,
            "c": candidates,
            "r": _reranker_identity(tandem.reranker) if use_rerank else None,
            "o": [s.fusion, s.dense_weight, s.rrf_k],
        },
    )
    if use_cache:
        t = time.perf_counter()
        raw = await cache.get(key)
        timings["cache"] = (time.perf_counter() - t) * 1000
        if raw is not None:
            try:
                hit = msgspec.json.decode(raw, type=_Cached)
            except msgspec.DecodeError:
                hit = None
            if hit is not None:
                tandem.metrics.cache.labels(kind="search", result="hit").inc()
                timings["total"] = (time.perf_counter() - started) * 1000
                return SearchResponse(
                    index=hit.index,
                    version=hit.version,
                    hits=hit.hits,
                    cached=True,
                    timings_ms={k: round(v, 3) for k, v in timings.items()},
                ), entry
        tandem.metrics.cache.labels(kind="search", result="miss").inc()

    fingerprint = retriever.embedder.fingerprint
    vector = None
    emb_key = cache_key(s.cache_prefix, "emb", fingerprint, payload=query)
    if use_cache and req.mode != "bm25":
        raw = await cache.get(emb_key)
        dim = retriever.embedder.dimension
        if raw is not None and len(raw) == dim * 4:
            vector = np.frombuffer(raw, dtype=np.float32)
            tandem.metrics.cache.labels(kind="embedding", result="hit").inc()
        else:
            tandem.metrics.cache.labels(kind="embedding", result="miss").inc()

    new_vector = None
    if req.mode != "bm25" and vector is None:
        t = time.perf_counter()
        vector = new_vector = await tandem.batcher.embed(retriever.embedder, fingerprint, query)
        timings["embed"] = (time.perf_counter() - t) * 1000
    (result, resized_vector), model_ms = await tandem.limiter.timed(
        _search_sync,
        retriever,
        query,
        req.top_k,
        req.mode,
        filters,
        bool(use_rerank),
        vector,
        fingerprint,
        candidates,
    )
    new_vector = resized_vector if resized_vector is not None else new_vector
    stage_ms = {k: v for k, v in result.timings_ms.items() if k not in ("total", "embed")}
    if resized_vector is not None:  # the embedder changed under us and embedded again
        stage_ms["embed"] = result.timings_ms.get("embed", 0.0)
    timings.update(stage_ms)
    timings["queue"] = max(0.0, model_ms - sum(stage_ms.values()))
    hits = [
        HitOut(
            rank=h.rank,
            score=h.score,
            text=h.text,
            source=h.source,
            doc_id=h.doc_id,
            chunk_id=h.chunk_id,
            metadata=h.metadata,
        )
        for h in result.hits
    ]
    if use_cache:
        if new_vector is not None:
            await cache.set(
                emb_key, np.asarray(new_vector, dtype=np.float32).tobytes(), s.cache_ttl_s
            )
        if result.version == snapshot.version:  # never file a new version's hits under old key
            payload = msgspec.json.encode(_Cached(result.index, result.version, hits))
            await cache.set(key, payload, s.cache_ttl_s)
    timings["total"] = (time.perf_counter() - started) * 1000
    tandem.metrics.observe_stages(route, timings)
    return SearchResponse(
        index=result.index,
        version=result.version,
        hits=hits,
        cached=False,
        timings_ms={k: round(v, 3) for k, v in timings.items()},
    ), entry


class IndexController(Controller):
    path = "/v1/indexes"
    tags = ("indexes",)

    @get(
        "/",
        operation_id="list_indexes",
        summary="Indexes this key may read.",
        responses=_errors(401, 429),
    )
    async def list_indexes(
        self, request: Request[Any, Any, Any], tandem: ServiceState
    ) -> IndexList:
        names = readable(request, await anyio.to_thread.run_sync(tandem.indexes.names))
        summaries = await anyio.to_thread.run_sync(read_summaries, tandem.settings.data_dir, names)
        return IndexList(indexes=summaries)

    @get(
        "/{name:str}",
        operation_id="get_index",
        summary="The manifest of the index's current version.",
        responses=_errors(400, 401, 403, 404, 429),
    )
    async def get_index(
        self, request: Request[Any, Any, Any], tandem: ServiceState, name: str
    ) -> dict[str, Any]:
        require_index_access(request, name)
        layout = IndexLayout(tandem.settings.data_dir, name)
        manifest: dict[str, Any] = await anyio.to_thread.run_sync(layout.manifest)
        return manifest

    @post(
        "/{name:str}/search",
        operation_id="search_index",
        status_code=200,
        summary="Search one index (hybrid, dense or BM25; optional reranking).",
        responses=_errors(400, 401, 403, 404, 409, 413, 415, 422, 429, 503),
        guards=[json_body_guard],
    )
    async def search(
        self, request: Request[Any, Any, Any], tandem: ServiceState, name: str, data: SearchRequest
    ) -> SearchResponse:
        require_index_access(request, name)
        data = await decode_strict(request, SearchRequest)
        request.scope["state"]["index"] = name
        response, _ = await run_search(tandem, name, data)
        request.scope["state"]["cached"] = response.cached
        return response

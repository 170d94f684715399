"""What the MCP tools do, over the loaded service state: the REST code paths, called as is.

Every function takes the :class:`~app.state.ServiceState` and the caller's
:class:`~app.security.Principal` and returns plain JSON data. Access is checked with the same
functions as REST (:func:`app.security.require_index_access`, :func:`app.security.readable`);
search is :func:`app.controllers.indexes.run_search`; an answer is the ``/ask`` flow of
:mod:`app.controllers.answers` (cache, search, route, check). Errors are the service's own
:class:`~core.errors.TandemError` kinds; :mod:`app.mcp.server` maps them with
:func:`app.errors.describe`, so an MCP error has the code and message REST would send.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
import msgspec

from app import tracing
from app.controllers.answers import ASK_ROUTE, AskQuestion
from app.controllers.indexes import read_summaries, run_search
from app.errors import InvalidRequest
from app.schemas import AskResponse, SearchRequest
from app.security import Principal, readable, require_index_access
from app.state import ServiceState
from core.errors import TandemError
from core.text import split_sentences
from stores.chunkstore import ChunkRecord
from stores.layout import IndexLayout, check_name

MCP_ROUTE = "mcp"
#: Most neighbours on each side that ``get_passage`` returns.
MAX_NEIGHBOURS = 5


class PassageNotFound(TandemError):
    code = "passage_not_found"
    status = 404


@dataclass
class Caller:
    """The caller as :mod:`app.security` sees a connection: ``scope["state"]["principal"]``."""

    principal: Principal
    scope: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.scope = {"state": {"principal": self.principal}}


def _check(caller: Caller, index: str) -> None:
    require_index_access(caller, index)  # type: ignore[arg-type]
    check_name(index)


async def list_indexes(tandem: ServiceState, caller: Caller) -> dict[str, Any]:
    names = await anyio.to_thread.run_sync(tandem.indexes.names)
    names = readable(caller, names)  # type: ignore[arg-type]
    summaries = await anyio.to_thread.run_sync(read_summaries, tandem.settings.data_dir, names)
    return {"indexes": msgspec.to_builtins(summaries)}


def _convert(data: dict[str, Any], type_: type[Any]) -> Any:
    try:
        return msgspec.convert(data, type_, strict=True)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(str(exc)) from exc


async def search(
    tandem: ServiceState,
    caller: Caller,
    index: str,
    query: str,
    top_k: int = 10,
    mode: str = "hybrid",
    filters: dict[str, Any] | None = None,
    rerank: bool | None = None,
) -> dict[str, Any]:
    _check(caller, index)
    req = _convert(
        {"query": query, "top_k": top_k, "mode": mode, "filters": filters, "rerank": rerank},
        SearchRequest,
    )
    with tracing.request_trace(index=index, mode=req.mode, query=req.query) as rt:
        response, _ = await run_search(tandem, index, req, route=MCP_ROUTE)
        rt.attrs.update(version=response.version, cached=response.cached)
    out: dict[str, Any] = msgspec.to_builtins(response)
    return out


def sentence_verdicts(answer: str, grounded: dict[str, Any]) -> list[dict[str, Any]]:
    """The groundedness verdict of each answer sentence: supported, unsupported or unchecked.

    The checker splits the answer with the same splitter (:func:`core.text.split_sentences`)
    and lists the sentences it finds unsupported; a small answer is a verbatim quote.
    """
    given = grounded.get("sentences")
    if isinstance(given, list):  # a service that reports them itself
        return given
    method = grounded.get("method")
    unsupported = set(grounded.get("unsupported") or [])
    out = []
    for sentence in split_sentences(answer):
        if method in ("checker", "extractive"):
            verdict = "unsupported" if sentence in unsupported else "supported"
        else:
            verdict = "unchecked"
        out.append({"text": sentence, "verdict": verdict})
    return out


async def ask(
    tandem: ServiceState,
    caller: Caller,
    index: str,
    question: str,
    mode: str = "auto",
    top_k: int | None = None,
    filters: dict[str, Any] | None = None,
) -> dict[str, Any]:
    _check(caller, index)
    if mode not in ("auto", "llm", "small"):
        raise InvalidRequest(f"mode: expected one of auto, llm, small; got {mode!r}")
    with tracing.request_trace(index=index, mode=mode, query=question) as rt:
        q = AskQuestion(tandem, index, question, mode, top_k, filters)  # type: ignore[arg-type]
        result = await q.cached() or await q.answer()
        rt.attrs.update(version=result.version, served_by=result.served_by, cached=result.cached)
        if result.usage:
            tracing.record_tokens(
                result.usage.get("prompt_tokens"), result.usage.get("completion_tokens")
            )
    out: dict[str, Any] = msgspec.to_builtins(msgspec.convert(result.as_dict(), AskResponse))
    out["sentences"] = sentence_verdicts(result.answer, result.grounded)
    return out


def _chunk_dict(c: ChunkRecord) -> dict[str, Any]:
    return {
        "chunk_id": c.chunk_id,
        "doc_id": c.doc_id,
        "source": c.source,
        "position": c.position,
        "text": c.text,
        "metadata": c.metadata,
    }


def _passage_sync(
    chunks: Any, chunk_id: str, neighbours: int
) -> tuple[ChunkRecord, list[ChunkRecord], list[ChunkRecord]]:
    rows = chunks.rows_matching({"chunk_id": [chunk_id]})
    if len(rows) == 0:
        raise PassageNotFound(f"no chunk {chunk_id!r} in this index")
    (chunk,) = chunks.get([int(rows[0])])
    siblings = chunks.rows_matching({"doc_id": [chunk.doc_id]})
    records = sorted(chunks.get([int(r) for r in siblings]), key=lambda c: c.position)
    at = next(i for i, c in enumerate(records) if c.chunk_id == chunk_id)
    return chunk, records[max(0, at - neighbours) : at], records[at + 1 : at + 1 + neighbours]


async def get_passage(
    tandem: ServiceState, caller: Caller, index: str, chunk_id: str, neighbours: int = 1
) -> dict[str, Any]:
    _check(caller, index)
    if not 0 <= neighbours <= MAX_NEIGHBOURS:
        raise InvalidRequest(f"neighbours: must be between 0 and {MAX_NEIGHBOURS}")
    entry = await tandem.indexes.get(index)
    snapshot = entry.retriever.snapshot
    chunk, before, after = await anyio.to_thread.run_sync(
        _passage_sync, snapshot.chunks, chunk_id, neighbours
    )
    return {
        "index": index,
        "version": snapshot.version,
        "source": chunk.source,
        "chunk": _chunk_dict(chunk),
        "before": [_chunk_dict(c) for c in before],
        "after": [_chunk_dict(c) for c in after],
    }


async def manifest(tandem: ServiceState, caller: Caller, index: str) -> dict[str, Any]:
    _check(caller, index)
    layout = IndexLayout(tandem.settings.data_dir, index)
    data: dict[str, Any] = await anyio.to_thread.run_sync(layout.manifest)
    return data


__all__ = [
    "ASK_ROUTE",
    "Caller",
    "PassageNotFound",
    "ask",
    "get_passage",
    "list_indexes",
    "manifest",
    "search",
    "sentence_verdicts",
]

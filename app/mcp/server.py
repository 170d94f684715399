"""Tandem's MCP server (the official ``mcp`` SDK's ``MCPServer``): tools, resources, errors.

Tools: ``list_indexes``, ``search``, ``ask``, ``get_passage`` (read only). Resources: the
manifest of each index the caller may read, ``tandem://indexes/{name}/manifest``.

The same server object serves both transports; only the caller differs: over HTTP the
principal that :func:`app.security.api_key_guard` put in the request scope (so the same keys,
index restrictions and rate limits as REST apply), over stdio the one given to
:func:`build_server` (``tandem mcp --index NAME``: that index only). A failed tool call is a
tool result with ``isError: true`` whose structured content is REST's error body,
``{"error": {"code", "message", "status"}}``, mapped by :func:`app.errors.describe`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp_types import (
    CallToolResult,
    ContentBlock,
    ListResourcesResult,
    Resource,
    TextContent,
    ToolAnnotations,
)
from pydantic import Field, ValidationError

from app import tracing
from app.errors import describe
from app.mcp import tools
from app.mcp.tools import Caller
from app.security import Principal
from app.state import ServiceState

log = logging.getLogger("tandem.mcp")

MANIFEST_URI = "tandem://indexes/{name}/manifest"
INSTRUCTIONS = (
    "Tandem searches and answers over document indexes. Call list_indexes first to learn the "
    "index names. Use search for ranked passages (hybrid BM25 + dense by default), ask for a "
    "cited answer whose every sentence is checked against its passages, and get_passage to "
    "read a hit's surrounding text. Errors carry a stable code (forbidden, index_not_found, "
    "validation_error, rate_limited, ...)."
)
READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True)

#: ``(context) -> Principal``: who calls (from the HTTP request, or fixed for stdio).
PrincipalOf = Callable[[Any], Principal]

IndexArg = Annotated[
    str, Field(description="Index name, as returned by list_indexes.", min_length=1)
]
FilterValue = str | int | float | bool
Filters = Annotated[
    dict[str, FilterValue | list[FilterValue]] | None,
    Field(
        description="Metadata filters: field -> value or list of values (any of them matches). "
        "Fields are metadata keys of the documents, or source, doc_id, chunk_id. "
        'Example: {"topic": ["science", "history"]}.'
    ),
]


def _json_text(data: Any) -> list[ContentBlock]:
    return [TextContent(type="text", text=json.dumps(data, ensure_ascii=False, default=str))]


def ok(data: dict[str, Any]) -> CallToolResult:
    return CallToolResult(content=_json_text(data), structured_content=data)


def error_result(exc: Exception) -> CallToolResult:
    """REST's error body for ``exc`` as a tool error (``isError: true``)."""
    status, code, message, _ = describe(exc)
    if code == "internal_error":
        log.error("MCP tool failed", exc_info=exc)
    body = {"error": {"code": code, "message": message, "status": status}}
    return CallToolResult(content=_json_text(body), structured_content=body, is_error=True)


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        parts.append(f"{where}: {err['msg']}" if where else str(err["msg"]))
    return "; ".join(parts)


class TandemMCP(MCPServer[Any]):
    """``MCPServer`` whose argument errors and listed resources follow Tandem's rules."""

    def __init__(self, state: ServiceState, principal_of: PrincipalOf, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tandem = state
        self.principal_of = principal_of

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if isinstance(exc.__cause__, ValidationError):  # as REST: 422 validation_error
                from app.errors import InvalidRequest

                return error_result(InvalidRequest(_validation_message(exc.__cause__)))
            raise

    async def _handle_list_resources(self, ctx: Any, params: Any) -> ListResourcesResult:
        """One manifest resource per index the caller may read (indexes come and go)."""
        try:
            listing = await tools.list_indexes(self.tandem, Caller(self.principal_of(ctx)))
        except Exception as exc:
            _, code, message, _ = describe(exc)
            raise MCPError(-32603, f"{code}: {message}", {"code": code}) from exc
        resources = [
            Resource(
                uri=MANIFEST_URI.format(name=s["name"]),
                name=f"{s['name']} manifest",
                description=f"Manifest of index {s['name']} v{s['version']}: build time, "
                f"models, parameters, {s['documents']} documents, {s['chunks']} chunks.",
                mime_type="application/json",
            )
            for s in listing["indexes"]
        ]
        return ListResourcesResult(resources=resources)


def _principal_from_request(ctx: Any) -> Principal:
    """The principal :func:`app.security.api_key_guard` stored in the HTTP request's scope."""
    request = getattr(getattr(ctx, "request_context", ctx), "request", None)
    scope = getattr(request, "scope", None) or {}
    principal = scope.get("state", {}).get("principal")
    if isinstance(principal, Principal):
        return principal
    from app.errors import Unauthorized

    raise Unauthorized("a valid API key is required: send 'Authorization: Bearer <key>'")


def _otel_parent(ctx: Any) -> Any:
    """The HTTP request's span context that :mod:`app.mcp.http` left in the scope, if any."""
    request = getattr(getattr(ctx, "request_context", None), "request", None)
    scope = getattr(request, "scope", None) or {}
    return scope.get("state", {}).get("otel_context")


def build_server(
    state: ServiceState, principal: Principal | None = None, *, version: str = ""
) -> TandemMCP:
    """The MCP server over ``state``: HTTP callers by their key, or always ``principal``."""

    def principal_of(ctx: Any) -> Principal:
        return principal if principal is not None else _principal_from_request(ctx)

    server = TandemMCP(
        state,
        principal_of,
        name="tandem",
        title="Tandem",
        description="Search and cited, groundedness-checked answers over your documents.",
        instructions=INSTRUCTIONS,
        version=version,
        log_level="WARNING",
    )

    async def guarded(
        ctx: Context, tool: str, call: Callable[[Caller], Awaitable[dict[str, Any]]]
    ) -> Any:
        with tracing.span(f"tandem.mcp.{tool}", _otel_parent(ctx), tool=tool) as current:
            try:
                return ok(await call(Caller(principal_of(ctx))))
            except Exception as exc:  # noqa: BLE001 - every failure is a tool error with its code
                result = error_result(exc)
                if current is not None:
                    current.set_attribute(
                        "tandem.error", result.structured_content["error"]["code"]
                    )  # type: ignore[index]
                return result

    @server.tool(
        name="list_indexes",
        title="List indexes",
        annotations=READ_ONLY,
        description="List the document indexes this caller may read, with their current version, "
        "number of documents and chunks, vector store and embedding model. Call it first: the "
        "other tools take an index name from this list.",
    )
    async def list_indexes(ctx: Context) -> CallToolResult:
        return await guarded(ctx, "list_indexes", lambda c: tools.list_indexes(state, c))  # type: ignore[no-any-return]

    @server.tool(
        name="search",
        title="Search an index",
        annotations=READ_ONLY,
        description="Find the passages of an index most relevant to a query. Returns ranked hits, "
        "each with its source (file or URL), chunk_id (for get_passage), doc_id, score, text and "
        "metadata, plus the index version that answered. Use it to gather evidence; use ask for "
        "a written answer. Modes: hybrid (BM25 + dense, best default), dense (meaning), bm25 "
        "(exact words, names, codes).",
    )
    async def search(
        index: IndexArg,
        query: Annotated[
            str, Field(description="What to look for, in natural language or keywords.")
        ],
        ctx: Context,
        top_k: Annotated[int, Field(ge=1, le=100, description="Number of hits to return.")] = 10,
        mode: Annotated[
            Literal["hybrid", "dense", "bm25"],
            Field(description="hybrid (default), dense or bm25."),
        ] = "hybrid",
        filters: Filters = None,
    ) -> CallToolResult:
        return await guarded(  # type: ignore[no-any-return]
            ctx, "search", lambda c: tools.search(state, c, index, query, top_k, mode, filters)
        )

    @server.tool(
        name="ask",
        title="Ask a question",
        annotations=READ_ONLY,
        description="Answer a question from an index, with numbered citations [n]. Returns the "
        "answer, citations (n, source, doc_id, chunk_id and the passage text), a groundedness "
        "verdict for every answer sentence (supported, unsupported or unchecked) and the overall "
        "'grounded' score, served_by (llm, small or cache) and reason (why that path). Treat "
        "unsupported sentences as unverified.",
    )
    async def ask(
        index: IndexArg,
        question: Annotated[str, Field(description="The question to answer.")],
        ctx: Context,
        mode: Annotated[
            Literal["auto", "llm", "small"],
            Field(
                description="auto (default): a small extractive model when it is confident, "
                "else the LLM; llm: the LLM (the small answer if it fails); small: no LLM."
            ),
        ] = "auto",
        top_k: Annotated[
            int | None,
            Field(ge=1, le=50, description="Passages given to the answerer (server default)."),
        ] = None,
        filters: Filters = None,
    ) -> CallToolResult:
        return await guarded(  # type: ignore[no-any-return]
            ctx, "ask", lambda c: tools.ask(state, c, index, question, mode, top_k, filters)
        )

    @server.tool(
        name="get_passage",
        title="Read a passage",
        annotations=READ_ONLY,
        description="Read one chunk of an index by its chunk_id (from search hits or ask "
        "citations), with the chunks just before and after it in the same document and its "
        "source, to see a passage in context.",
    )
    async def get_passage(
        index: IndexArg,
        chunk_id: Annotated[str, Field(description="The chunk_id of a hit or a citation.")],
        ctx: Context,
        neighbours: Annotated[
            int,
            Field(ge=0, le=tools.MAX_NEIGHBOURS, description="Chunks on each side to include."),
        ] = 1,
    ) -> CallToolResult:
        return await guarded(  # type: ignore[no-any-return]
            ctx, "get_passage", lambda c: tools.get_passage(state, c, index, chunk_id, neighbours)
        )

    @server.resource(
        MANIFEST_URI,
        name="index manifest",
        description="The manifest of an index's current version (JSON): build time, library "
        "and model versions, parameters and counts.",
        mime_type="application/json",
    )
    async def index_manifest(name: str, ctx: Context) -> str:
        try:
            data = await tools.manifest(state, Caller(principal_of(ctx)), name)
        except Exception as exc:
            _, code, message, _ = describe(exc)
            raise MCPError(
                -32602 if code != "internal_error" else -32603, message, {"code": code}
            ) from exc
        return json.dumps(data, ensure_ascii=False, indent=2, default=str)

    return server

"""``tandem mcp``: the MCP tools over stdin/stdout, for desktop assistants.

The process loads what ``tandem serve`` loads (embedder, reranker, reader, checker, LLM as
configured by ``TANDEM_*``) and reads the data dir directly: no HTTP service, no API key. With
``--index NAME`` (repeatable) the caller may read those indexes only, exactly as an API key
limited to them: other names are refused with ``forbidden``. stdout carries the protocol alone:
anything printed while the models load goes to stderr.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any, cast

from app import tracing
from app.controllers.answers import answers_hook
from app.mcp.server import build_server
from app.security import Principal
from app.settings import Settings
from app.state import ServiceState


def stdio_principal(indexes: list[str] | None) -> Principal:
    return Principal("stdio", frozenset(indexes) if indexes else None, authenticated=False)


async def serve_stdio(settings: Settings, indexes: list[str] | None = None) -> None:
    """Serve until stdin closes."""
    tracing.setup(settings)
    state = ServiceState.create(settings, tracing.TracedMetrics() if tracing.enabled() else None)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            await state.start()
            for name in indexes or []:
                await state.indexes.get(name)  # a missing index fails now, not at first call
        async with answers_hook(cast(Any, None), state), tracing.tracing_hook(None, state):
            server = build_server(state, stdio_principal(indexes))
            await server.run_stdio_async()
    finally:
        await state.close()

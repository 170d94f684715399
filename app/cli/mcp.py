"""``tandem mcp``: serve the MCP tools (list_indexes, search, ask, get_passage) over stdio."""

from __future__ import annotations

from typing import Annotated

import typer

from app.settings import get_settings


def mcp(
    index: Annotated[
        list[str] | None,
        typer.Option(
            "--index",
            help="Index the client may read (repeatable); default: every index.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve Tandem's MCP tools over stdin/stdout (for a desktop assistant's MCP config)."""
    import anyio

    from app.mcp.stdio import serve_stdio
    from stores.layout import check_name

    names = [check_name(n) for n in index or []]
    anyio.run(serve_stdio, get_settings(), names or None)


def register(cli: typer.Typer) -> None:
    cli.command("mcp")(mcp)

"""``tandem bench serve``: HTTP serving speed (wired by ``app.commands.bench``).

Register with ``app.command("serve")(serve_bench_command)`` on the bench Typer app.
"""

from __future__ import annotations

from typing import Annotated

import typer

from app.output import emit, json_mode
from app.settings import get_settings
from smallmodels.errors import UsageError


def serve_bench_command(
    index: Annotated[str, typer.Argument(help="Index to query (in --data-dir).")],
    requests: Annotated[
        int, typer.Option("--requests", min=10, max=100_000, help="Requests per phase.")
    ] = 200,
    reranker: Annotated[
        str | None, typer.Option("--reranker", help="Reranker spec: adds the rerank phase.")
    ] = None,
    rerank_candidates: Annotated[
        int, typer.Option("--rerank-candidates", min=1, max=200, help="Candidates reranked.")
    ] = 20,
    concurrency: Annotated[
        list[int] | None,
        typer.Option("--concurrency", min=1, max=256, help="Concurrent clients (repeatable)."),
    ] = None,
    max_seconds: Annotated[
        float, typer.Option("--max-seconds", min=1, help="Time limit of each phase.")
    ] = 30.0,
    redis_url: Annotated[
        str | None, typer.Option("--redis-url", help="Cache in this Redis (default: in-process).")
    ] = None,
) -> None:
    """p50/p95 of search, search+rerank and cache hits, and req/s at 1, 4 and 16 clients."""
    from bench.serve import format_table, run_serve_bench
    from stores.layout import IndexLayout

    data_dir = get_settings().data_dir
    if not IndexLayout(data_dir, index).exists():
        raise UsageError(f"index {index!r} not found in {data_dir}")

    def log(message: str) -> None:
        if not json_mode():
            typer.echo(message, err=True)

    result = run_serve_bench(
        index,
        data_dir,
        reranker,
        requests,
        concurrency=tuple(concurrency or (1, 4, 16)),
        max_seconds=max_seconds,
        rerank_candidates=rerank_candidates,
        redis_url=redis_url,
        log=log,
    )
    emit(result, format_table(result))

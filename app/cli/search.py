"""``tandem search``: ranked passages from an index, for one query or a JSONL file of them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import data_dir, load_reranker_if, parse_filters, read_jsonl
from app.output import emit
from app.settings import get_settings
from core.errors import UsageError


def search(
    name: str,
    query: Annotated[str | None, typer.Argument(help="The query.")] = None,
    top_k: Annotated[int, typer.Option("--top-k", min=1, max=100)] = 10,
    mode: Annotated[str, typer.Option("--mode", help="hybrid, dense or bm25.")] = "hybrid",
    filters: Annotated[list[str] | None, typer.Option("--filter", help="key=value")] = None,
    queries: Annotated[Path | None, typer.Option("--queries", help="JSONL of {id, query}.")] = None,
    rerank: Annotated[bool | None, typer.Option("--rerank/--no-rerank")] = None,
    reranker: Annotated[str | None, typer.Option("--reranker", help="Reranker spec.")] = None,
    fusion: Annotated[
        str | None, typer.Option("--fusion", help="Hybrid fusion: convex (default) or rrf.")
    ] = None,
) -> None:
    """Search index NAME for QUERY (or every query of --queries)."""
    from app.security import is_blank
    from retrievers.retriever import Retriever

    if (query is None) == (queries is None):
        raise UsageError("give either QUERY or --queries FILE")
    if query is not None and is_blank(query):
        raise UsageError("query: must contain some visible text")  # the API's 422
    batch = read_jsonl(queries, "query") if queries else None
    for row in batch or []:
        if is_blank(str(row["query"])):
            raise UsageError(f"query {row['id']!r}: must contain some visible text")
    parsed = parse_filters(filters)
    settings = get_settings()
    rr = load_reranker_if(reranker or settings.reranker, rerank)
    opts = settings.retriever_options()
    if fusion is not None:
        opts["fusion"] = fusion
    retriever = Retriever(data_dir(), name, reranker=rr, **opts)
    if batch is not None:
        for start in range(0, len(batch), 64):
            part = batch[start : start + 64]
            results = retriever.search_many([r["query"] for r in part], top_k, mode, parsed, rerank)
            for row, res in zip(part, results, strict=True):
                emit({"id": row["id"], "hits": [h.as_dict() for h in res.hits]})
        return
    assert query is not None
    res = retriever.search(query, top_k, mode, parsed, rerank)
    noun = "hit" if len(res.hits) == 1 else "hits"
    lines = [f"{name} v{res.version} — {len(res.hits)} {noun} for {query!r}"]
    for h in res.hits:
        snippet = " ".join(h.text.split())[:160]
        lines.append(f"{h.rank:>2}. [{h.score:.4f}] {h.source}  ({h.chunk_id})\n    {snippet}")
    emit(res.as_dict(), "\n".join(lines))


def register(cli: typer.Typer) -> None:
    """Add ``tandem search`` to the CLI."""
    cli.command("search")(search)

"""The ``tandem`` command line.

``tandem --json ...`` prints machine output: one JSON object, or one JSON line per item for
batch calls. Bad input prints one line on stderr and exits 2 (usage) or 1 (failure).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from app.output import STATE, emit, show_progress
from app.settings import get_settings
from smallmodels.errors import TandemError, UsageError

try:  # typer >= 0.20 vendors click; its exceptions live beside it
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover - older typer on plain click
    from click.exceptions import ClickException  # type: ignore[assignment]

cli = typer.Typer(
    name="tandem",
    help="Tandem: retrieval-augmented answers where small models do most of the work.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
)
index_app = typer.Typer(help="Build, update, inspect and delete indexes.", no_args_is_help=True)
cli.add_typer(index_app, name="index")


@cli.callback()
def _main(
    json_output: Annotated[
        bool, typer.Option("--json", help="Machine output: JSON object / JSON lines.")
    ] = False,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir", help="Where indexes live (env TANDEM_DATA_DIR).", show_default=False
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress.")] = False,
) -> None:
    STATE.json = json_output
    if data_dir is not None:
        os.environ["TANDEM_DATA_DIR"] = str(data_dir)
        get_settings.cache_clear()
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def data_dir() -> Path:
    return get_settings().data_dir


# -- index -----------------------------------------------------------------------------------
def _build(
    action: str,
    name: str,
    paths: list[Path],
    store: str | None,
    model: str | None,
    chunk_tokens: int | None,
    text_field: str,
) -> None:
    from indexers.builder import BuildOptions, run_build

    settings = get_settings()
    if store not in (None, "faiss", "qdrant"):
        raise UsageError(f"unknown store {store!r}: choose faiss or qdrant")
    opts = BuildOptions(
        store=store,
        model=model or settings.embedder,
        chunk_tokens=chunk_tokens,
        text_field=text_field,
        qdrant_url=settings.qdrant_url,
        qdrant_api_key=settings.qdrant_api_key,
        show_progress=show_progress(),
    )
    if opts.model is None or model is None:
        opts.model = model  # an existing index keeps its own embedder unless one is given
    result = run_build(data_dir(), name, [str(p) for p in paths], action, opts)
    for source, reason in result.failed_files:
        typer.echo(f"warning: skipped {source}: {reason}", err=True)
    out = result.as_dict()
    cur = result.curation
    emit(
        out,
        (
            f"index {name!r} v{result.version}: {result.documents} documents, "
            f"{result.chunks} chunks ({result.embedded} embedded, {result.reused} reused), "
            f"{result.removed} removed, {result.duplicates} duplicate chunks dropped "
            f"({cur.get('exact_duplicates', 0)} exact, {cur.get('near_duplicates', 0)} near), "
            f"{cur.get('empty', 0) + cur.get('boilerplate', 0)} empty/boilerplate documents "
            f"dropped, {result.failed} files failed, "
            f"{result.seconds:.1f}s"
        ),
    )


StoreOpt = Annotated[str | None, typer.Option("--store", help="faiss (default) or qdrant.")]
ModelOpt = Annotated[str | None, typer.Option("--model", help="Embedder spec.")]
ChunkOpt = Annotated[int | None, typer.Option("--chunk-tokens", help="Chunk size in tokens.")]
FieldOpt = Annotated[str, typer.Option("--text-field", help="Text field of .jsonl documents.")]
PathsArg = Annotated[list[Path], typer.Argument(help="Files or folders.", show_default=False)]


@index_app.command("build")
def index_build(
    name: str,
    paths: PathsArg,
    store: StoreOpt = None,
    model: ModelOpt = None,
    chunk_tokens: ChunkOpt = None,
    text_field: FieldOpt = "text",
) -> None:
    """Build NAME from PATHs; on an existing index, mirror PATHs into a new version."""
    _build("build", name, paths, store, model, chunk_tokens, text_field)


@index_app.command("add")
def index_add(
    name: str,
    paths: PathsArg,
    store: StoreOpt = None,
    model: ModelOpt = None,
    chunk_tokens: ChunkOpt = None,
    text_field: FieldOpt = "text",
) -> None:
    """Add or replace the documents under PATHs, keeping the others."""
    _build("add", name, paths, store, model, chunk_tokens, text_field)


@index_app.command("remove")
def index_remove(
    name: str,
    sources: Annotated[list[str], typer.Argument(help="Sources (or doc ids) to remove.")],
) -> None:
    """Remove documents by source from NAME (a new version)."""
    _build("remove", name, [Path(s) for s in sources], None, None, None, "text")


@index_app.command("list")
def index_list() -> None:
    """List the indexes with their current version and size."""
    from stores.layout import IndexLayout, list_indexes

    rows = []
    for name in list_indexes(data_dir()):
        m = IndexLayout(data_dir(), name).manifest()
        rows.append(
            {
                "index": name,
                "version": m["version"],
                "documents": m["counts"]["documents"],
                "chunks": m["counts"]["chunks"],
                "store": m["store"]["backend"],
                "created_at": m["created_at"],
            }
        )
    if STATE.json:
        emit({"indexes": rows})
    else:
        emit(
            rows,
            "\n".join(
                f"{r['index']:<24} v{r['version']:<4} {r['documents']:>6} docs "
                f"{r['chunks']:>8} chunks"
                f"  {r['store']}  {r['created_at']}"
                for r in rows
            )
            or "no indexes",
        )


@index_app.command("show")
def index_show(name: str) -> None:
    """Show the manifest of NAME's current version."""
    from stores.layout import IndexLayout

    emit(IndexLayout(data_dir(), name).manifest())


@index_app.command("rm")
def index_rm(name: str) -> None:
    """Delete index NAME and all of its versions."""
    from stores.layout import IndexLayout

    layout = IndexLayout(data_dir(), name)
    with layout.lock():
        layout.remove()
    emit({"index": name, "removed": True}, f"index {name!r} removed")


# -- search ----------------------------------------------------------------------------------
def parse_filters(items: list[str] | None) -> dict[str, list[str]]:
    filters: dict[str, list[str]] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--filter wants key=value, got {item!r}")
        filters.setdefault(key.strip(), []).append(value.strip())
    return filters


def read_jsonl(path: Path, key: str) -> list[dict[str, Any]]:
    if not path.is_file():
        raise UsageError(f"file not found: {path}")
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}:{lineno}: invalid JSON ({exc.msg})") from exc
        if not isinstance(row, dict) or not isinstance(row.get(key), str):
            raise UsageError(f"{path}:{lineno}: each line needs a string {key!r}")
        row.setdefault("id", str(lineno))
        rows.append(row)
    return rows


@cli.command("search")
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
    from retrievers.retriever import Retriever

    if (query is None) == (queries is None):
        raise UsageError("give either QUERY or --queries FILE")
    batch = read_jsonl(queries, "query") if queries else None
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
    lines = [f"{name} v{res.version} — {len(res.hits)} hits for {query!r}"]
    for h in res.hits:
        snippet = " ".join(h.text.split())[:160]
        lines.append(f"{h.rank:>2}. [{h.score:.4f}] {h.source}  ({h.chunk_id})\n    {snippet}")
    emit(res.as_dict(), "\n".join(lines))


def load_reranker_if(spec: str | None, wanted: bool | None) -> Any:
    """The reranker for ``spec`` unless reranking is switched off."""
    if wanted is False or not spec:
        return None
    from smallmodels.reranker import load_reranker

    return load_reranker(spec)


def _register_optional() -> None:
    """Sub-commands that live in their own modules."""
    import importlib

    for module, name in (
        ("app.commands.bench", "bench"),
        ("app.commands.reranker", "reranker"),
        ("app.commands.reader", "reader"),
        ("app.commands.checker", "checker"),
    ):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        cli.add_typer(mod.app, name=name)
    for module in ("app.commands.serve", "app.commands.ask", "app.commands.worker"):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        mod.register(cli)


_register_optional()


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning every expected error into one line and an exit code."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    command = typer.main.get_command(cli)
    try:
        rv = command.main(args=argv, prog_name="tandem", standalone_mode=False)
    except typer.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except typer.Abort:
        typer.echo("error: aborted", err=True)
        raise SystemExit(130) from None
    except ClickException as exc:
        typer.echo(f"error: {exc.format_message()}", err=True)
        raise SystemExit(exc.exit_code) from None
    except TandemError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt:
        typer.echo("error: interrupted", err=True)
        raise SystemExit(130) from None
    except BrokenPipeError:
        raise SystemExit(1) from None
    if isinstance(rv, int) and rv:
        raise SystemExit(rv)


if __name__ == "__main__":
    main()

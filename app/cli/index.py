"""``tandem index ...``: build, update, inspect and delete indexes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import data_dir, group
from app.output import STATE, emit, show_progress
from app.settings import get_settings
from core.errors import UsageError

app = group("Build, update, inspect and delete indexes.")


def register(cli: typer.Typer) -> None:
    """Add ``tandem index`` to the CLI."""
    cli.add_typer(app, name="index")


def _build(
    action: str,
    name: str,
    paths: list[Path],
    store: str | None,
    model: str | None,
    chunk_tokens: int | None,
    text_field: str,
    strict: bool = False,
    engine: str = "local",
    ray_address: str | None = None,
    ray_workers: int | None = None,
    ray_batch_size: int | None = None,
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
        strict=strict,
        **settings.build_store_options(),
        show_progress=show_progress(),
    )
    if opts.model is None or model is None:
        opts.model = model  # an existing index keeps its own embedder unless one is given
    if engine not in ("local", "ray"):
        raise UsageError(f"unknown engine {engine!r}: choose local or ray")
    if engine == "ray":
        from indexers.ray_build import EMBED_BATCH, RayOptions, run_ray_build

        ropts = RayOptions(
            address=ray_address or settings.ray_address,
            workers=ray_workers,
            batch_size=ray_batch_size or EMBED_BATCH,
        )
        result = run_ray_build(data_dir(), name, [str(p) for p in paths], action, opts, ropts)
    else:
        result = run_build(data_dir(), name, [str(p) for p in paths], action, opts)
    for problem in result.problems:
        label = {"failed": "failed", "skipped": "skipped", "dropped": "dropped"}.get(problem.kind)
        if label:
            typer.echo(f"warning: {label} {problem.source}: {problem.reason}", err=True)
        elif problem.kind == "kept":
            typer.echo(f"warning: {problem.source}: {problem.reason}", err=True)
    out = result.as_dict()
    rep = result.report()
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
            f"{rep['skipped']} skipped (unsupported), {rep['dropped']} dropped, "
            f"{rep['merged']} merged into identical files, {rep['kept']} kept from the "
            f"previous version, {result.pages} PDF pages, "
            f"{result.seconds:.1f}s"
        ),
    )


StoreOpt = Annotated[str | None, typer.Option("--store", help="faiss (default) or qdrant.")]
ModelOpt = Annotated[str | None, typer.Option("--model", help="Embedder spec.")]
ChunkOpt = Annotated[int | None, typer.Option("--chunk-tokens", help="Chunk size in tokens.")]
FieldOpt = Annotated[str, typer.Option("--text-field", help="Text field of .jsonl documents.")]
StrictOpt = Annotated[
    bool, typer.Option("--strict", help="Fail (publish nothing) if any file fails or is skipped.")
]
EngineOpt = Annotated[
    str,
    typer.Option(
        "--engine",
        help="local (this process) or ray (Ray Data: a local Ray instance, or --ray-address).",
    ),
]
RayAddressOpt = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="Ray cluster for --engine ray (ray://host:10001, auto); default TANDEM_RAY_ADDRESS, "
        "else a local Ray instance.",
    ),
]
RayWorkersOpt = Annotated[
    int | None,
    typer.Option("--ray-workers", min=1, help="--engine ray: actors per pool (default: CPUs)."),
]
RayBatchOpt = Annotated[
    int | None,
    typer.Option("--ray-batch-size", min=1, help="--engine ray: chunks per embedding batch (256)."),
]
PathsArg = Annotated[list[Path], typer.Argument(help="Files or folders.", show_default=False)]


@app.command("build")
def index_build(
    name: str,
    paths: PathsArg,
    store: StoreOpt = None,
    model: ModelOpt = None,
    chunk_tokens: ChunkOpt = None,
    text_field: FieldOpt = "text",
    strict: StrictOpt = False,
    engine: EngineOpt = "local",
    ray_address: RayAddressOpt = None,
    ray_workers: RayWorkersOpt = None,
    ray_batch_size: RayBatchOpt = None,
) -> None:
    """Build NAME from PATHs; on an existing index, mirror PATHs into a new version."""
    _build(
        "build", name, paths, store, model, chunk_tokens, text_field, strict,
        engine, ray_address, ray_workers, ray_batch_size,
    )  # fmt: skip


@app.command("add")
def index_add(
    name: str,
    paths: PathsArg,
    store: StoreOpt = None,
    model: ModelOpt = None,
    chunk_tokens: ChunkOpt = None,
    text_field: FieldOpt = "text",
    strict: StrictOpt = False,
    engine: EngineOpt = "local",
    ray_address: RayAddressOpt = None,
    ray_workers: RayWorkersOpt = None,
    ray_batch_size: RayBatchOpt = None,
) -> None:
    """Add or replace the documents under PATHs, keeping the others."""
    _build(
        "add", name, paths, store, model, chunk_tokens, text_field, strict,
        engine, ray_address, ray_workers, ray_batch_size,
    )  # fmt: skip


@app.command("remove")
def index_remove(
    name: str,
    sources: Annotated[list[str], typer.Argument(help="Sources (or doc ids) to remove.")],
) -> None:
    """Remove documents by source from NAME (a new version)."""
    _build("remove", name, [Path(s) for s in sources], None, None, None, "text")


@app.command("list")
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


@app.command("show")
def index_show(name: str) -> None:
    """Show the manifest of NAME's current version."""
    from stores.layout import IndexLayout

    emit(IndexLayout(data_dir(), name).manifest())


@app.command("rm")
def index_rm(name: str) -> None:
    """Delete index NAME and all of its versions."""
    from stores.errors import IndexNotFound
    from stores.layout import IndexLayout

    layout = IndexLayout(data_dir(), name)
    if not layout.root.is_dir():
        raise IndexNotFound(f"index {name!r} not found in {layout.data_dir}")
    with layout.lock():
        layout.remove()
    emit({"index": name, "removed": True}, f"index {name!r} removed")

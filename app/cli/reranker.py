"""`tandem reranker ...`: train the cross-encoder reranker offline and try it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from app.cli.common import group
from app.output import emit, json_mode, show_progress
from app.settings import get_settings
from core.errors import UsageError

app = group("Train and try the cross-encoder reranker.")


def register(cli: typer.Typer) -> None:
    """Add ``tandem reranker`` to the CLI."""
    cli.add_typer(app, name="reranker")


@app.command("train")
def train(
    out: Path = typer.Argument(..., help="Folder to write the trained CrossEncoder to."),
    squad: Path | None = typer.Option(
        None, "--squad", help="SQuAD-format file: questions against their paragraphs."
    ),
    corpus: str | None = typer.Option(
        None, "--corpus", help="Index NAME: pseudo-queries made from your own corpus."
    ),
    steps: int | None = typer.Option(
        None, "--steps", min=1, help="Optimizer steps (overrides --epochs)."
    ),
    epochs: float = typer.Option(1.0, "--epochs", min=0.01, help="Passes over the queries."),
    max_questions: int | None = typer.Option(
        2000, "--max-questions", min=1, help="Train on at most this many queries."
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed (sampling, split, init)."),
    negatives: int = typer.Option(3, "--negatives", min=1, max=31, help="Negatives per query."),
    max_length: int = typer.Option(96, "--max-length", min=32, max=512, help="Tokens per pair."),
    top_n: int = typer.Option(20, "--top-n", min=1, max=200, help="Candidates reranked."),
    heldout: int = typer.Option(100, "--heldout", min=0, help="Held-out queries for figures."),
    max_minutes: float | None = typer.Option(
        None, "--max-minutes", min=0.1, help="Stop training after this long (busy machines)."
    ),
    lr: float = typer.Option(
        7e-5,
        "--lr",
        min=0.0,
        help="Encoder learning rate (head: 10x; 2e-4 suits --train-layers 3).",
    ),
    train_layers: int = typer.Option(
        0,
        "--train-layers",
        min=0,
        max=48,
        help="Top encoder layers trained (0: all, the measured best; 3: about half the cost).",
    ),
    threads: int = typer.Option(
        2, "--threads", min=1, help="Torch threads (1 when another job shares the cores)."
    ),
    mining_dir: Path | None = typer.Option(
        None, "--mining-dir", help="With --squad: keep the mining index here, reused next time."
    ),
    progress: bool | None = typer.Option(
        None, "--progress/--no-progress", help="Progress bar on stderr (default: on a terminal)."
    ),
) -> None:
    """Fine-tune a small cross-encoder from the packaged all-MiniLM-L6-v2 weights."""
    from training.reranker import train_reranker

    if (squad is None) == (corpus is None):
        raise UsageError("give exactly one of --squad FILE or --corpus INDEX")
    if squad is not None and not squad.is_file():
        raise UsageError(f"SQuAD file not found: {squad}")
    settings = get_settings()
    data_dir = settings.data_dir
    if corpus is not None:
        from stores.layout import IndexLayout

        if not IndexLayout(data_dir, corpus).exists():
            raise UsageError(f"index {corpus!r} not found in {data_dir}")
    figures = train_reranker(
        out,
        squad_files=[squad] if squad else None,
        corpus_index=corpus,
        data_dir=data_dir if corpus is not None else mining_dir,
        steps=steps,
        epochs=epochs,
        negatives=negatives,
        max_questions=max_questions,
        seed=seed,
        progress=show_progress(progress),
        max_length=max_length,
        top_n=top_n,
        heldout=heldout,
        max_minutes=max_minutes,
        lr=lr,
        train_layers=train_layers or None,
        threads=threads,
        log=None if json_mode() else _log,
        store_options=settings.store_options(),
    )
    emit(figures, _summary(figures))


def _log(msg: str) -> None:
    typer.echo(msg, err=True)


def _summary(f: dict[str, Any]) -> str:
    held = f["heldout"]
    lines = [
        f"trained reranker -> {f['out']}",
        f"  {f['data']['train_queries']} {f['data']['source']} queries x (1 + {f['negatives']}) "
        f"passages, {f['steps']} steps (~{f['epochs']} epochs), {f['train_seconds']} s "
        f"({f['train_pairs_per_s']} pairs/s); loss {f['first_loss']} -> {f['last_loss']}",
    ]
    if held.get("queries"):
        lines.append(
            f"  held-out ({held['queries']} queries) nDCG@10: hybrid {held['hybrid_ndcg@10']:.4f}"
            f", rerank {held['rerank_ndcg@10']:.4f}, fused (w={held['fusion']}) "
            f"{held['fused_ndcg@10']:.4f}; int8 fused {held['int8']['fused_ndcg@10']:.4f}"
        )
        lines.append(
            f"  pairs/s: fp32 {held['pairs_per_s']}, int8 {held['int8']['pairs_per_s']}; "
            f"default backend {f['config']['backend']}"
        )
    return "\n".join(lines)


@app.command("score")
def score(
    query: str = typer.Argument(..., help="The query."),
    passage: list[str] = typer.Option(..., "--passage", "-p", help="A passage (repeatable)."),
    model: str | None = typer.Option(
        None, "--model", help="Reranker spec (default: TANDEM_RERANKER)."
    ),
) -> None:
    """Score passages against QUERY with the reranker, best first."""
    from smallmodels.reranker import load_reranker

    spec = model or get_settings().reranker
    if not spec:
        raise UsageError("no reranker configured: give --model SPEC or set TANDEM_RERANKER")
    logits = load_reranker(spec).score(query, passage)
    order = sorted(range(len(passage)), key=lambda i: -float(logits[i]))
    rows = [{"passage": i, "score": round(float(logits[i]), 4)} for i in order]
    human = [f"{float(logits[i]):>8.3f}  [{i}] {passage[i][:100]}" for i in order]
    emit({"query": query, "scores": rows}, "\n".join(human))

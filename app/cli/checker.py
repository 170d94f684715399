"""``tandem checker ...``: train and try the groundedness checker."""

from __future__ import annotations

from pathlib import Path

import typer

from app.cli.common import group
from app.output import emit, show_progress
from core.errors import UsageError

app = group("Train and try the groundedness checker (does a passage support this answer?).")


def register(cli: typer.Typer) -> None:
    """Add ``tandem checker`` to the CLI."""
    cli.add_typer(app, name="checker")


def _need_file(path: Path, what: str) -> None:
    if not path.is_file():
        raise UsageError(f"{what} file not found: {path}")


@app.command("train")
def train(
    out: Path = typer.Argument(..., help="Folder to write the trained checker to."),
    halueval: list[Path] = typer.Option(
        [],
        "--halueval",
        help="HaluEval file: QA, dialogue or summarization rows, told apart by their fields"
        " (repeatable).",
    ),
    squad: list[Path] = typer.Option(
        [], "--squad", help="SQuAD-format file to make hard wrong answers from (repeatable)."
    ),
    halueval_rows: str = typer.Option(
        "3000",
        "--halueval-rows",
        help="HaluEval rows to train on, in each file: N (the first N) or A:B.",
    ),
    epochs: float = typer.Option(1.0, "--epochs", min=0.01, help="Passes over the groups."),
    steps: int | None = typer.Option(
        None, "--steps", min=1, help="Optimizer steps (overrides --epochs)."
    ),
    max_minutes: float | None = typer.Option(
        None, "--max-minutes", min=0.1, help="Stop training after this many minutes."
    ),
    loss: str = typer.Option("both", "--loss", help="both, listwise or pointwise."),
    lr: float = typer.Option(1e-4, "--lr", min=0.0, help="Learning rate."),
    batch_size: int = typer.Option(16, "--batch-size", min=2, help="Pairs per step."),
    seed: int = typer.Option(0, "--seed", help="Random seed (negatives, shuffling, init)."),
    sentence_share: float = typer.Option(
        0.5,
        "--sentence-share",
        min=0.0,
        max=1.0,
        help="Share of questions that also get a whole-sentence group (style-neutral).",
    ),
    squad_groups: int | None = typer.Option(
        None,
        "--squad-groups",
        min=1,
        help="Keep at most this many SQuAD groups, drawn at random (to balance a mix).",
    ),
    threads: int | None = typer.Option(
        None, "--threads", min=1, help="Torch threads (1 is fastest on a busy machine)."
    ),
    base: str | None = typer.Option(
        None, "--base", help="Model to start from (default: packaged all-MiniLM-L6-v2)."
    ),
    progress: bool | None = typer.Option(
        None, "--progress/--no-progress", help="Progress bar on stderr (default: on a terminal)."
    ),
    device: str = typer.Option(
        "cpu", "--device", help="Torch device to train on: cpu or cuda[:N] (bfloat16 on a GPU)."
    ),
) -> None:
    """Fine-tune a cross-encoder checker on HaluEval rows and/or SQuAD-format files."""
    from training.checker import summary_text, train_checker

    if not halueval and not squad:
        raise UsageError("nothing to train on: give --halueval FILE and/or --squad FILE")
    for path in halueval:
        _need_file(path, "HaluEval")
    for path in squad:
        _need_file(path, "SQuAD")
    summary = train_checker(
        out,
        halueval,
        squad,
        base=base,
        halueval_rows=halueval_rows,
        epochs=epochs,
        steps=steps,
        batch_size=batch_size,
        learning_rate=lr,
        loss=loss,
        max_seconds=None if max_minutes is None else max_minutes * 60,
        seed=seed,
        threads=threads,
        sentence_share=sentence_share,
        squad_limit=squad_groups,
        progress=show_progress(progress),
        device=device,
    )
    emit(summary, summary_text(summary))


@app.command("check")
def check(
    question: str = typer.Argument(..., help="The question."),
    answer: str = typer.Argument(..., help="The answer to check (citation markers allowed)."),
    passage: list[str] = typer.Option(..., "--passage", "-p", help="A passage (repeatable)."),
    checker: str | None = typer.Option(
        None, "--checker", help="Checker spec (default: TANDEM_CHECKER or models/checker-minilm)."
    ),
    threshold: float = typer.Option(0.5, "--threshold", min=0.0, max=1.0),
) -> None:
    """Score every sentence of ANSWER against the passages and flag unsupported ones."""
    from dataclasses import asdict

    from smallmodels.checker import load_checker

    result = load_checker(checker).check(question, answer, passage, threshold=threshold)
    lines = [f"answer score {result.score:.3f}"]
    for s in result.sentences:
        mark = "ok " if s.supported else "!! "
        lines.append(f"  {mark}{s.score:.3f}  {s.text}")
    emit(asdict(result), "\n".join(lines))

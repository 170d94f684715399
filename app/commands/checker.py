"""``tandem checker ...``: train and try the groundedness checker.

``faithfulness_command`` and ``swapped_command`` are plain functions for ``tandem bench``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from app.output import emit, fail, show_progress
from smallmodels.errors import TandemError

app = typer.Typer(
    help="Train and try the groundedness checker (does a passage support this answer?).",
    no_args_is_help=True,
)


def _need_file(path: Path, what: str) -> None:
    if not path.is_file():
        raise fail(f"{what} file not found: {path}", 2)


@app.command("train")
def train(
    out: Path = typer.Argument(..., help="Folder to write the trained checker to."),
    halueval: Path | None = typer.Option(
        None, "--halueval", help="HaluEval QA rows (JSON lines: knowledge, question, ...)."
    ),
    squad: list[Path] = typer.Option(
        [], "--squad", help="SQuAD-format file to make hard wrong answers from (repeatable)."
    ),
    halueval_rows: str = typer.Option(
        "3000", "--halueval-rows", help="HaluEval rows to train on: N (the first N) or A:B."
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
    threads: int | None = typer.Option(
        None, "--threads", min=1, help="Torch threads (1 is fastest on a busy machine)."
    ),
    base: str | None = typer.Option(
        None, "--base", help="Model to start from (default: packaged all-MiniLM-L6-v2)."
    ),
    progress: bool | None = typer.Option(
        None, "--progress/--no-progress", help="Progress bar on stderr (default: on a terminal)."
    ),
) -> None:
    """Fine-tune a cross-encoder checker on HaluEval rows and/or SQuAD-format files."""
    from smallmodels.training.checker import summary_text, train_checker

    if halueval is None and not squad:
        raise fail("nothing to train on: give --halueval FILE and/or --squad FILE", 2)
    if halueval is not None:
        _need_file(halueval, "HaluEval")
    for path in squad:
        _need_file(path, "SQuAD")
    try:
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
            progress=show_progress(progress),
        )
    except TandemError as exc:
        raise fail(exc.message, exc.exit_code) from None
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

    try:
        result = load_checker(checker).check(question, answer, passage, threshold=threshold)
    except TandemError as exc:
        raise fail(exc.message, exc.exit_code) from None
    lines = [f"answer score {result.score:.3f}"]
    for s in result.sentences:
        mark = "ok " if s.supported else "!! "
        lines.append(f"  {mark}{s.score:.3f}  {s.text}")
    emit(asdict(result), "\n".join(lines))


def faithfulness_command(
    halueval: Path, limit: int | None = None, offset: int = 0, checker: str | None = None
) -> dict[str, Any]:
    """``tandem bench faithfulness``: ROC AUC / accuracy on HaluEval rows ``offset..``.

    Raises :class:`typer.Exit` (after one error line) on a missing file or a bad checker.
    """
    from bench.faithfulness import run_faithfulness

    _need_file(halueval, "HaluEval")
    if offset < 0 or (limit is not None and limit < 1):
        raise fail("--offset must be >= 0 and --limit >= 1", 2)
    try:
        return run_faithfulness(halueval, checker, limit, offset)
    except TandemError as exc:
        raise fail(exc.message, exc.exit_code) from None


def swapped_command(
    squad: Path, limit: int | None = 300, seed: int = 0, checker: str | None = None
) -> dict[str, Any]:
    """Right answers vs answers to other questions about the same passage (SQuAD-format file)."""
    from bench.faithfulness import run_swapped

    _need_file(squad, "SQuAD")
    try:
        return run_swapped(squad, checker, limit, seed)
    except TandemError as exc:
        raise fail(exc.message, exc.exit_code) from None

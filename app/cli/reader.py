"""`tandem reader ...`: train, evaluate and try the extractive reader."""

from __future__ import annotations

from pathlib import Path

import typer

from app.cli.common import group
from app.output import emit, json_mode, show_progress
from core.errors import UsageError

app = group("Train and try the extractive reader.")


def register(cli: typer.Typer) -> None:
    """Add ``tandem reader`` to the CLI."""
    cli.add_typer(app, name="reader")


@app.command("train")
def train(
    out: Path = typer.Argument(..., help="Folder to write the trained reader to."),
    squad: list[Path] = typer.Option(
        ..., "--squad", help="SQuAD-format training file (repeatable)."
    ),
    steps: int | None = typer.Option(
        None, "--steps", min=1, help="Optimizer steps (overrides --epochs)."
    ),
    epochs: float = typer.Option(2.0, "--epochs", min=0.01, help="Passes over the training data."),
    max_questions: int | None = typer.Option(
        None, "--max-questions", min=1, help="Train on at most this many questions."
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed (held-out split, shuffling, init)."),
    base: str | None = typer.Option(
        None, "--base", help="Encoder to start from (default: packaged all-MiniLM-L6-v2)."
    ),
    lr: float = typer.Option(1e-4, "--lr", min=0.0, help="Encoder learning rate (head: 10x)."),
    batch_size: int = typer.Option(32, "--batch-size", min=1),
    max_seq_len: int = typer.Option(256, "--max-seq-len", min=64, max=512),
    max_minutes: float | None = typer.Option(
        None, "--max-minutes", min=0.1, help="Stop training after this many minutes."
    ),
    progress: bool | None = typer.Option(
        None, "--progress/--no-progress", help="Progress bar on stderr (default: on a terminal)."
    ),
    device: str = typer.Option(
        "cpu", "--device", help="Torch device to train on: cpu or cuda[:N] (bfloat16 on a GPU)."
    ),
    distractors: int = typer.Option(
        0,
        "--distractors",
        min=0,
        max=8,
        help="Read each question with N distractor paragraphs of its article, one softmax "
        "across them (shared normalization); --batch-size then counts questions.",
    ),
    no_answer_share: float = typer.Option(
        0.15,
        "--no-answer-share",
        min=0.0,
        max=0.9,
        help="With --distractors: share of questions read without their paragraph.",
    ),
) -> None:
    """Fine-tune an extractive QA reader on SQuAD-format files."""
    from training.reader import train_reader

    for path in squad:
        if not path.is_file():
            raise UsageError(f"SQuAD file not found: {path}")
    figures = train_reader(
        out,
        squad,
        base=base,
        epochs=epochs,
        steps=steps,
        max_questions=max_questions,
        seed=seed,
        lr=lr,
        batch_size=batch_size,
        max_seq_len=max_seq_len,
        max_seconds=max_minutes * 60 if max_minutes else None,
        progress=show_progress(progress),
        device=device,
        distractors=distractors,
        no_answer_share=no_answer_share,
    )
    held = figures["heldout"]
    result = {
        "out": figures["out"],
        "examples": figures["examples"],
        "steps": figures["steps"],
        "seconds": figures["seconds"],
        "heldout": {"exact_match": held["exact_match"], "f1": held["f1"]},
    }
    if json_mode():
        emit(result)
        return
    emit(
        result,
        f"trained reader -> {figures['out']}\n"
        f"  {figures['examples']} questions ({figures['features']} windows), "
        f"{figures['steps']} steps (~{figures['epochs']} epochs), {figures['seconds']} s\n"
        f"  held-out ({held['questions']} questions): "
        f"EM {held['exact_match']:.3f}  F1 {held['f1']:.3f}",
    )


@app.command("eval")
def evaluate(
    squad: Path = typer.Option(..., "--squad", help="SQuAD-format file to evaluate on."),
    model: str | None = typer.Option(
        None, "--model", help="Reader spec (default: models/reader-minilm)."
    ),
    max_questions: int = typer.Option(500, "--max-questions", min=1),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Exact match and token F1 of the reader with each question's gold paragraph."""
    from training.reader import evaluate_reader

    scores = evaluate_reader(model, squad, max_questions, seed)
    emit(
        scores,
        f"{scores['spec']} on {scores['file']}: {scores['questions']} questions, "
        f"EM {scores['exact_match']:.3f}  F1 {scores['f1']:.3f}  "
        f"({scores['questions_per_second']} questions/s)",
    )


@app.command("ask")
def ask(
    question: str = typer.Argument(..., help="The question."),
    passage: list[str] = typer.Option(..., "--passage", "-p", help="A passage (repeatable)."),
    model: str | None = typer.Option(
        None, "--model", help="Reader spec (default: models/reader-minilm)."
    ),
    top_n: int = typer.Option(3, "--top-n", min=1),
) -> None:
    """Extract the best answer spans to QUESTION from the given passages."""
    from smallmodels.reader import load_reader

    result = load_reader(model).read_detailed(question, passage, top_n=top_n)
    obj = {
        "question": question,
        "no_answer": round(result.no_answer, 4),
        "spans": [
            {
                "passage": s.passage_index,
                "start": s.start,
                "end": s.end,
                "text": s.text,
                "score": round(s.score, 4),
            }
            for s in result.spans
        ],
    }
    lines = [f"{s.score:.3f}  [{s.passage_index}] {s.text}" for s in result.spans]
    lines.append(f"no answer: {result.no_answer:.3f}")
    emit(obj, "\n".join(lines))

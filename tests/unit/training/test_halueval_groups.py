"""training.halueval: HaluEval dialogue and summarization rows as checker training groups, and
``tandem checker train`` reading them (a short real run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.errors import UsageError

DOCUMENT = (
    "The city council of Arlen voted on Tuesday to build a new bridge over the river. "
    "The bridge will cost 12 million dollars and open in 2027. "
    "Mayor Ines Varga said the old ferry will keep running until then."
)
RIGHT = "Arlen's council approved a new river bridge. It will cost 12 million dollars."
HALLUCINATED = (
    "Arlen's council approved a new river bridge. "
    "Protesters from neighbouring Brevia stormed the chamber demanding compensation."
)


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _dialogue_row(i: int) -> dict[str, str]:
    return {
        "knowledge": f"Film {i} is directed by Ada Lind. Film {i} stars Omar Kay.",
        "dialogue_history": f"[Human]: Do you know Film {i}? [Assistant]: Yes. "
        f"[Human]: Who directed Film {i}? ",
        "right_response": f"Ada Lind directed Film {i}.",
        "hallucinated_response": f"Film {i} was directed by Steven Spielberg in 1975.",
    }


def test_dialogue_rows_answer_the_last_human_turn() -> None:
    from training.halueval import dialogue_groups

    (group,) = dialogue_groups([_dialogue_row(3)])
    assert group.question == "Who directed Film 3?"
    assert group.answers == ["Ada Lind directed Film 3.", _dialogue_row(3)["hallucinated_response"]]
    assert group.kinds == ["right", "hallucinated_response"]
    assert group.passage.startswith("Film 3 is directed")


def test_summary_groups_pick_the_hallucinated_sentence() -> None:
    from training.halueval import SUMMARY_QUESTION, summary_groups

    row = {"document": DOCUMENT, "right_summary": RIGHT, "hallucinated_summary": HALLUCINATED}
    (group,) = summary_groups([row])
    assert group.question == SUMMARY_QUESTION
    # The shared first sentence is not a negative; the invented one is, against its closest
    # right sentence.
    assert group.answers[1].startswith("Protesters from neighbouring Brevia")
    assert group.answers[0] in RIGHT
    same = {"document": DOCUMENT, "right_summary": RIGHT, "hallucinated_summary": RIGHT}
    assert summary_groups([same]) == []


def test_halueval_files_are_told_apart_and_bad_ones_refused(tmp_path: Path) -> None:
    from training.halueval import load_file

    dialogue = _write(tmp_path / "d.jsonl", [_dialogue_row(i) for i in range(3)])
    assert load_file(dialogue, slice(None))[0] == "dialogue"
    assert len(load_file(dialogue, slice(0, 2))[1]) == 2
    with pytest.raises(UsageError, match="not found"):
        load_file(tmp_path / "absent.jsonl", slice(None))
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"document": "x"}\nnot json\n')
    with pytest.raises(UsageError, match=r"broken.jsonl:2 is not JSON"):
        load_file(broken, slice(None))
    with pytest.raises(UsageError, match="not a HaluEval"):
        load_file(_write(tmp_path / "other.jsonl", [{"text": "x"}]), slice(None))
    missing = _write(tmp_path / "m.jsonl", [{**_dialogue_row(0), "right_response": 3}])
    with pytest.raises(UsageError, match="row 1 is not a HaluEval dialogue row"):
        load_file(missing, slice(None))


def test_checker_train_reads_dialogue_and_summary_files(tmp_path: Path) -> None:
    from app.cli.checker import app

    dialogue = _write(tmp_path / "d.jsonl", [_dialogue_row(i) for i in range(6)])
    rows = [{"document": DOCUMENT, "right_summary": RIGHT, "hallucinated_summary": HALLUCINATED}]
    summaries = _write(tmp_path / "s.jsonl", rows * 3)
    out = tmp_path / "checker"
    result = CliRunner().invoke(
        app,
        ["train", str(out), "--halueval", str(dialogue),
         "--halueval", str(summaries), "--halueval-rows", "5", "--steps", "2",
         "--batch-size", "4", "--threads", "1", "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "checker_training.json").read_text())
    assert summary["halueval_dialogue_groups"] == 5
    assert summary["halueval_summarization_groups"] == 3
    assert summary["answers_by_kind"]["hallucinated_response"] == 5
    assert summary["steps"] == 2
    assert (out / "README.md").read_text().count("5 HaluEval dialogue") == 1

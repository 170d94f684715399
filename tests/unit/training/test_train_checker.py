"""training.checker: the training data (HaluEval rows, SQuAD groups, sentence groups) and the CLI's
error path. The data is in tests/unit/toy_models.py; a real, short training run is the session
fixture ``trained_checker`` of tests/unit/conftest.py, which tests/unit/smallmodels/test_checker.py
uses."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.unit.toy_models import CITIES, city_knowledge


def test_squad_groups_have_hard_wrong_answers(data_files: tuple[Path, Path]) -> None:
    from training.checker import squad_groups

    groups = squad_groups([data_files[1]], random.Random(0))
    assert len(groups) == 18
    year = next(g for g in groups if g.question == "When was Arlen founded?")
    assert year.answers[0] == "1742" and year.kinds[0] == "right"
    assert "other_question" in year.kinds and "swapped" in year.kinds
    other = year.answers[year.kinds.index("other_question")]
    assert other in {"salt trade", "Brevia"}
    swapped = year.answers[year.kinds.index("swapped")]
    assert swapped != "1742" and swapped.isdigit()


def test_sentence_groups_swap_the_answer_inside_its_sentence(
    data_files: tuple[Path, Path],
) -> None:
    from training.checker import Group, sentence_group

    passage = city_knowledge(*CITIES[0])
    group = Group(
        "When was Arlen founded?",
        passage,
        ["1742", "salt trade", "1750", "not anywhere"],
        ["right", "other_question", "swapped", "hallucinated"],
        "squad",
    )
    made = sentence_group(group)
    assert made is not None
    assert made.answers == [
        "It was founded in 1742 by merchants.",
        "It was founded in salt trade by merchants.",
        "It was founded in 1750 by merchants.",
    ]
    assert made.kinds == ["right_sentence", "other_question_sentence", "swapped_sentence"]
    absent = Group("q", passage, ["Zorblax", "1742"], ["right", "same_type"])
    assert sentence_group(absent) is None


def test_bad_halueval_file_is_one_clear_error(tmp_path: Path) -> None:
    from training.checker import CheckerDataError, load_halueval

    with pytest.raises(CheckerDataError, match="not found"):
        load_halueval(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"knowledge": "k", "question": "q"}\n')
    with pytest.raises(CheckerDataError, match="right_answer"):
        load_halueval(bad)
    bad.write_text("not json\n")
    with pytest.raises(CheckerDataError, match=":1 is not JSON"):
        load_halueval(bad)


def test_cli_train_bad_file_exits_2_with_one_line(tmp_path: Path) -> None:
    from app.cli.checker import app

    runner = CliRunner()
    result = runner.invoke(app, ["train", str(tmp_path / "out"), "--halueval", "/nope.jsonl"])
    assert result.exit_code == 2
    assert "HaluEval file not found" in result.output
    assert "Traceback" not in result.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text("[1, 2]")
    result = runner.invoke(app, ["train", str(tmp_path / "out"), "--halueval", str(bad)])
    assert result.exit_code == 2
    assert "row 1 is not a JSON object" in result.output


def test_train_device_is_checked_before_any_work(
    data_files: tuple[Path, Path], tmp_path: Path
) -> None:
    import torch

    from training.checker import CheckerDataError, train_checker

    halu, squad = data_files
    with pytest.raises(CheckerDataError, match="device must be cpu or cuda"):
        train_checker(tmp_path / "a", halu, [squad], steps=1, device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(CheckerDataError, match="no CUDA device"):
            train_checker(tmp_path / "b", halu, [squad], steps=1, device="cuda")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    runner = CliRunner()
    from app.cli.checker import app

    result = runner.invoke(
        app, ["train", str(tmp_path / "c"), "--halueval", str(halu), "--device", "tpu"]
    )
    assert result.exit_code == 2, result.output
    assert "device must be cpu or cuda" in result.output

"""training.checker: the training data (HaluEval rows, SQuAD groups, sentence groups) and the CLI's
error path. A real, short training run is the fixture of tests/unit/smallmodels/test_checker.py."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

CITIES = [
    ("Arlen", "Brevia", 1742, "salt"),
    ("Dunmore", "Cestia", 1815, "wool"),
    ("Fenwick", "Galdor", 1901, "copper"),
    ("Harrow", "Istria", 1688, "timber"),
    ("Jorvik", "Kemland", 1350, "amber"),
    ("Lindell", "Morvia", 1777, "glass"),
    ("Norcross", "Ostland", 1820, "tea"),
    ("Pellham", "Quarro", 1599, "silk"),
    ("Rosslyn", "Sarnia", 1933, "steel"),
    ("Tamsin", "Ulvard", 1466, "wine"),
    ("Varden", "Wexmoor", 1888, "coal"),
    ("Yarrow", "Zeland", 1710, "grain"),
]


def _knowledge(city: str, country: str, year: int, good: str) -> str:
    return (
        f"{city} is a town in {country}. It was founded in {year} by merchants. "
        f"The town is known for its {good} trade."
    )


def _halueval_rows() -> list[dict[str, str]]:
    rows = []
    for city, country, year, good in CITIES:
        rows.append(
            {
                "knowledge": _knowledge(city, country, year, good),
                "question": f"When was {city} founded?",
                "right_answer": f"{city} was founded in {year}.",
                "hallucinated_answer": f"{city} was built by Zorblax aliens during a comet storm.",
            }
        )
    return rows


def _squad() -> dict[str, object]:
    paragraphs = []
    for city, country, year, good in CITIES[:6]:
        context = _knowledge(city, country, year, good)
        paragraphs.append(
            {
                "context": context,
                "qas": [
                    {
                        "id": f"{city}-year",
                        "question": f"When was {city} founded?",
                        "answers": [{"text": str(year), "answer_start": context.index(str(year))}],
                    },
                    {
                        "id": f"{city}-good",
                        "question": f"What is {city} known for?",
                        "answers": [{"text": f"{good} trade", "answer_start": context.index(good)}],
                    },
                    {
                        "id": f"{city}-country",
                        "question": f"Where is {city}?",
                        "answers": [{"text": country, "answer_start": context.index(country)}],
                    },
                ],
            }
        )
    return {"version": "1.1", "data": [{"title": "Towns", "paragraphs": paragraphs}]}


@pytest.fixture(scope="module")
def data_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("checker-data")
    halu = root / "halueval.jsonl"
    halu.write_text("\n".join(json.dumps(r) for r in _halueval_rows()) + "\n")
    squad = root / "squad.json"
    squad.write_text(json.dumps(_squad()))
    return halu, squad


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

    passage = _knowledge(*CITIES[0])
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
    assert "not a HaluEval QA row" in result.output

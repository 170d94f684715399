"""`make demo`'s configuration answers the project's own questions right, and abstains on
questions the demo corpus does not answer.

The demo index is built from examples/corpus exactly as `make demo` builds it, and every
question of examples/questions.jsonl (and the README's and the Makefile's examples) is asked in
small mode through `tandem ask --questions`, with the default models of a fresh checkout
(whatever TANDEM_READER / TANDEM_CHECKER say in this environment, else the released models).
An answer is right when the gold answer is contained in it (normalised) or its token F1
reaches 0.8.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from app.cli import main
from core.text import normalize_answer, token_f1

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
#: The README's and the Makefile's example questions, with their answers.
README_QUESTIONS = [
    ("readme-apollo", "When did Apollo 11 land on the Moon?", "20 July 1969"),
    ("readme-penicillin", "Who discovered penicillin?", "Alexander Fleming"),
    ("readme-bees", "How do honeybees tell each other where flowers are?", "waggle dance"),
]
#: Questions the demo corpus does not answer: another topic, gibberish, out of the corpus.
UNANSWERABLE = [
    ("out-capital", "What is the capital of Australia?"),
    ("out-gibberish", "florp zindle quaxo wibbet trunaly?"),
    ("out-football", "Who won the 2018 FIFA World Cup final?"),
    ("out-stock", "What was the closing price of Apple stock yesterday?"),
]


def right(answer: str, gold: str) -> bool:
    pred = normalize_answer(answer)
    return normalize_answer(gold) in pred or token_f1(answer, gold) >= 0.8


@pytest.fixture(scope="module")
def demo_answers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every question answered by `make demo`'s configuration, by id."""
    tmp = tmp_path_factory.mktemp("demo")
    data = tmp / "data"
    questions = tmp / "questions.jsonl"
    rows = [json.loads(line) for line in (EXAMPLES / "questions.jsonl").read_text().splitlines()]
    rows += [{"id": i, "question": q, "answer": a} for i, q, a in README_QUESTIONS]
    rows += [{"id": i, "question": q} for i, q in UNANSWERABLE]
    questions.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        try:
            main(["--data-dir", str(data), "index", "build", "demo", str(EXAMPLES / "corpus")])
        except SystemExit as exc:
            assert not exc.code
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        try:
            main(
                ["--json", "--data-dir", str(data), "ask", "demo", "--questions", str(questions),
                 "--mode", "small"]
            )  # fmt: skip
        except SystemExit as exc:
            assert not exc.code
    answers = {}
    for line in out.getvalue().splitlines():
        if line.strip():
            row = json.loads(line)
            answers[row["id"]] = row
    gold = {r["id"]: r.get("answer") for r in rows}
    aliases = {r["id"]: r.get("aliases", []) for r in rows}
    for key, row in answers.items():
        row["gold"] = gold[key]
        row["aliases"] = aliases[key]
    return answers


def _span(row: dict[str, Any]) -> str:
    extract = row.get("extract") or {}
    return str(extract.get("span") or row["answer"])


#: Without a reader (TANDEM_READER=none), small mode quotes the sentence closest to the
#: question; it misses these many (a sentence about the question, not the one with the answer).
SENTENCE_MISSES = 4
#: What the released int8 reader and checker (2026-11-30) still get wrong on the demo corpus,
#: measured and tracked here: the launch date for the landing date (both dates are in the
#: passage), another scientist of the penicillin story (Florey, at a confidence under 0.5:
#: shown as low confidence), the species name without its genus, and the
#: assistant's name for the words spoken to him. Any other miss is a regression; a fix that
#: gets one of these right passes.
READER_MISSES = frozenset({"q1", "readme-apollo", "q7", "readme-penicillin", "q9", "q14"})


def is_right(row: dict[str, Any]) -> bool:
    return bool(row["extract"]["found"]) and any(
        right(_span(row), g) for g in [row["gold"], *row["aliases"]]
    )


@pytest.mark.slow
def test_the_demo_answers_its_own_questions(demo_answers: dict[str, dict[str, Any]]) -> None:
    wrong = {
        k: (_span(r), r["gold"]) for k, r in demo_answers.items() if r["gold"] and not is_right(r)
    }
    methods = {r["extract"]["method"] for r in demo_answers.values() if r["gold"]}
    if methods == {"reader"}:  # the released (or configured) reader
        assert set(wrong) <= READER_MISSES, f"wrong or missing answers: {wrong}"
    else:
        assert len(wrong) <= SENTENCE_MISSES, f"wrong or missing answers: {wrong}"
    for row in demo_answers.values():
        if row["gold"]:
            assert row["served_by"] == "small" and len(row["citations"]) == 1
            # The answer quotes its cited passage (rejoined: line breaks and markup aside).
            quoted = normalize_answer(_span(row))
            assert quoted in normalize_answer(row["citations"][0]["text"].replace("-\n", ""))


@pytest.mark.slow
def test_the_demo_abstains_on_what_it_does_not_hold(
    demo_answers: dict[str, dict[str, Any]],
) -> None:
    for key, _ in UNANSWERABLE:
        row = demo_answers[key]
        if key == "out-capital" and row["extract"]["found"]:
            # Tracked (issue 14): the Great Barrier Reef passage is "in Australia"; the reader
            # answers it, but at a confidence the playground shows as low.
            assert row["confidence"] < 0.5, row
            continue
        assert row["extract"]["found"] is False, (key, row["answer"])
        assert row["citations"] == [] and row["grounded"]["method"] == "none"
        assert row["extract"]["why"]


@pytest.mark.slow
def test_the_labels_say_who_checked(demo_answers: dict[str, dict[str, Any]]) -> None:
    for row in demo_answers.values():
        grounded = row["grounded"]
        if not row["extract"]["found"]:
            continue
        assert grounded["method"] in {"checker", "reader", "unchecked"}
        assert grounded["method"] != "extractive" and grounded.get("reason")
        if grounded["method"] == "unchecked":
            assert grounded["score"] is None
        else:
            assert grounded["checker"] and 0.0 <= grounded["score"] <= 1.0

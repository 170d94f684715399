"""core.text: the one sentence splitter, the SQuAD answer metrics, the citation-marker grammar."""

from __future__ import annotations

import itertools

import pytest

from core.text import (
    MARKER_RE,
    MAX_RANGE,
    PARTIAL_MARKER_RE,
    answer_tokens,
    cited_passages,
    exact_match,
    f1_score,
    marker_numbers,
    normalize_answer,
    sentence_bounds,
    split_sentences,
    squad_scores,
    strip_markers,
    token_f1,
)

# -- sentences ---------------------------------------------------------------------------------


def test_split_sentences_keeps_markers_with_their_sentence() -> None:
    text = (
        "Paris is the capital of France [1]. It has 2.1 million people.[2] "
        "Dr. Smith agrees. [1][3] J. K. Rowling lived in the U.S. Army base for a while.\n"
        "- a list item [2, 3]"
    )
    assert split_sentences(text) == [
        "Paris is the capital of France [1].",
        "It has 2.1 million people.[2]",
        "Dr. Smith agrees. [1][3]",
        "J. K. Rowling lived in the U.S. Army base for a while.",
        "- a list item [2, 3]",
    ]
    assert split_sentences("") == []
    assert split_sentences("no final stop") == ["no final stop"]
    assert split_sentences("It is done. [1-3] Next.", "join") == ["It is done. [1-3]", "Next."]


def test_abbreviations_initials_and_decimals_do_not_end_a_sentence() -> None:
    assert split_sentences("The value is 3.14 today. It is e.g. Pi.") == [
        "The value is 3.14 today.",
        "It is e.g. Pi.",
    ]
    assert split_sentences("Prof. Ada Byron met Mr. Brown. (See Fig. 3.) It rained.") == [
        "Prof. Ada Byron met Mr. Brown.",
        "(See Fig. 3.)",
        "It rained.",
    ]
    assert split_sentences("W. E. B. Du Bois wrote it. The U.K. Parliament did not.") == [
        "W. E. B. Du Bois wrote it.",
        "The U.K. Parliament did not.",
    ]
    # a sentence starts with a capital letter, a digit or an opening quote or bracket
    assert split_sentences("lower. case next") == ["lower. case next"]
    assert split_sentences('He said "Stop." Then he left! Why? 3 cats ran. "Go," she said.') == [
        'He said "Stop."',
        "Then he left!",
        "Why?",
        "3 cats ran.",
        '"Go," she said.',
    ]


def test_cjk_full_stops_end_a_sentence_without_a_space() -> None:
    assert split_sentences("东京是日本的首都。大阪很大！真的吗？是的") == [
        "东京是日本的首都。",
        "大阪很大！",
        "真的吗？",
        "是的",
    ]
    assert split_sentences("彼は「はい。」と言った。次です。") == [
        "彼は「はい。」",
        "と言った。",
        "次です。",
    ]


TEXT = "Line one has no stop\nLine two. Second sentence.\n\nno stop in this paragraph\n\nLast one."


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            "break",  # every line is a unit: list items, the claims of an answer
            [
                "Line one has no stop",
                "Line two.",
                "Second sentence.",
                "no stop in this paragraph",
                "Last one.",
            ],
        ),
        (
            "paragraph",  # only a blank line ends a unit: hard-wrapped text
            [
                "Line one has no stop\nLine two.",
                "Second sentence.",
                "no stop in this paragraph",
                "Last one.",
            ],
        ),
        (
            "join",  # line breaks are spaces
            [
                "Line one has no stop\nLine two.",
                "Second sentence.\n\nno stop in this paragraph\n\nLast one.",
            ],
        ),
    ],
)
def test_the_three_line_modes(lines: str, expected: list[str]) -> None:
    assert split_sentences(TEXT, lines) == expected  # type: ignore[arg-type]
    # offsets index the original text: each sentence is exactly what was written there
    bounds = sentence_bounds(TEXT, lines)  # type: ignore[arg-type]
    assert [TEXT[s:e] for s, e in bounds] == expected
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(bounds))


def test_bounds_trim_whitespace_and_default_to_line_breaks() -> None:
    text = "  Dr. Smith arrived in the U.S. in 1990.   He left in 1999!\nEnd  "
    bounds = sentence_bounds(text)
    assert [text[a:b] for a, b in bounds] == [
        "Dr. Smith arrived in the U.S. in 1990.",
        "He left in 1999!",
        "End",
    ]
    assert bounds[0][0] == 2 and bounds[-1][1] == len(text) - 2
    assert sentence_bounds(text) == sentence_bounds(text, "break")
    assert sentence_bounds("   \n\n  ") == []


# -- SQuAD answer metrics ----------------------------------------------------------------------


def test_normalize_and_metrics() -> None:
    assert normalize_answer("  The  Quill-River! ") == "quillriver"
    assert normalize_answer("an apple a day") == "apple day"
    assert answer_tokens("The Cat, and a Dog!") == ["cat", "and", "dog"]
    assert exact_match("the Tessel Prize", ["Tessel prize"]) == 1.0
    assert exact_match("Tessel", ["Tessel prize"]) == 0.0
    assert exact_match("anything", []) == 0.0
    assert f1_score("Tessel", ["Tessel prize"]) == pytest.approx(2 / 3)
    assert f1_score("nothing", ["Tessel prize", "x"]) == 0.0
    assert f1_score("x", ["Tessel prize", "x"]) == 1.0
    assert f1_score("x", []) == 0.0


def test_token_f1_counts_shared_tokens_once_each() -> None:
    assert token_f1("the cat sat", "a cat sat down") == pytest.approx(0.8)
    assert token_f1("cat cat", "cat") == pytest.approx(2 / 3)
    assert token_f1("", "") == 1.0  # both empty after normalising: a match
    assert token_f1("the", "x") == 0.0


def test_squad_scores_are_means_over_questions() -> None:
    scores = squad_scores(["Paris", "x"], [["paris"], ["y", "x z"]])
    assert scores["questions"] == 2
    assert scores["exact_match"] == pytest.approx(0.5)
    assert scores["f1"] == pytest.approx((1 + 2 / 3) / 2)
    assert squad_scores([], []) == {"exact_match": 0.0, "f1": 0.0, "questions": 0}
    with pytest.raises(ValueError, match="differ in length"):
        squad_scores(["a"], [])


# -- citation markers --------------------------------------------------------------------------


def test_marker_bodies_expand_lists_and_ranges() -> None:
    assert marker_numbers("1") == [1]
    assert marker_numbers("2, 3") == [2, 3]
    assert marker_numbers("1-3") == [1, 2, 3]
    assert marker_numbers("4–5; 1") == [4, 5, 1]
    assert marker_numbers("1-100000") == [1]  # not a citation list: only its start counts
    assert marker_numbers(f"1-{MAX_RANGE}") == list(range(1, MAX_RANGE + 1))
    assert marker_numbers(f"1-{MAX_RANGE + 1}") == [1]
    assert marker_numbers("3-1") == [3]  # backwards: its first number
    assert marker_numbers("a, 2, 2") == [2]


def test_markers_are_parsed_and_stripped() -> None:
    assert cited_passages("a [1] b [2, 3] c [4-5] again [1]") == [0, 1, 2, 3, 4]
    assert cited_passages("[0] [2] [1-2] [x]") == [1, 0]  # zero-based; [0] names nothing
    assert strip_markers("Paris [1] is big [2,3].") == "Paris is big."
    assert strip_markers("Paris  [1]\n is big [2][3].") == "Paris is big."


def test_marker_regexes() -> None:
    assert [m.groups() for m in MARKER_RE.finditer("a [1] b[2, 3] [x] [4-5]")] == [
        (" ", "1"),
        ("", "2, 3"),
        (" ", "4-5"),
    ]
    assert PARTIAL_MARKER_RE.fullmatch("[1, 2")
    assert PARTIAL_MARKER_RE.fullmatch("[")
    assert not PARTIAL_MARKER_RE.fullmatch("[a")


def test_run_together_initials_do_not_end_a_sentence():
    assert split_sentences("He read J.R.R. Tolkien at school. It was 1990.") == [
        "He read J.R.R. Tolkien at school.",
        "It was 1990.",
    ]

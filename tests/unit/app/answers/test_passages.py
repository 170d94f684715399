"""Rejoined passages: no line fragments, no headings; the kind of answer a question wants."""

from __future__ import annotations

import pytest

from app.answers.passages import answer_kind, has_kind, overlap, rejoin

PDF = (
    "Vaccines: A Short History of Immunisation\n"
    "A vaccine trains the immune system to recognise a germ. When the\n"
    "real germ arrives later, the body responds.\n"
    "Jenner and smallpox\n"
    "On 14 May 1796 the English doctor Edward Jenner inoculated James Phipps. When Jenner later\n"
    "exposed the boy to smallpox, he did not fall ill. The immu-\n"
    "nisation worked.\n"
)


def test_hard_line_breaks_and_hyphenation_are_rejoined() -> None:
    r = rejoin(PDF)
    assert r.body() == [
        "A vaccine trains the immune system to recognise a germ. When the real germ arrives "
        "later, the body responds.",
        "On 14 May 1796 the English doctor Edward Jenner inoculated James Phipps. When Jenner "
        "later exposed the boy to smallpox, he did not fall ill. The immunisation worked.",
    ]
    assert [u.text for u in r.units if u.heading] == [
        "Vaccines: A Short History of Immunisation",
        "Jenner and smallpox",
    ]
    # The reader reads everything (headings are context); heading ranges are no candidates.
    assert [r.text[s:e] for s, e in r.heading_ranges()] == [
        "Vaccines: A Short History of Immunisation",
        "Jenner and smallpox",
    ]


@pytest.mark.parametrize(
    "line",
    [
        "NICE(1)                User Commands               NICE(1)",
        "## The waggle dance",
        "Contents ........ 3",
        "2.1 Installing the package      14",
        "DESCRIPTION",
        "Page 3 of 12",
    ],
)
def test_headers_headings_and_contents_lines_are_headings(line: str) -> None:
    r = rejoin(f"{line}\nThe body sentence says something useful here.\n")
    assert [u.heading for u in r.units] == [True, False]


def test_markdown_and_list_items() -> None:
    r = rejoin(
        "# Bicycles\n\n- **1888 – the pneumatic tyre.** The vet **John Boyd Dunlop** made a "
        "tyre.\n- A [link](http://x) and `code`.\n\x7f\nA paragraph after PDF debris.\n"
    )
    assert r.body() == [
        "1888 – the pneumatic tyre. The vet John Boyd Dunlop made a tyre.",
        "A link and code.",
        "A paragraph after PDF debris.",
    ]


def test_a_short_wrapped_line_is_no_heading() -> None:
    # "cow." ends a sentence; "Sarah Nelmes and" continues the sentence before it.
    r = rejoin(
        "The word vaccine comes from the Latin vacca, meaning\ncow.\nIt was named by\n"
        "Sarah Nelmes and\nothers."
    )
    assert all(not u.heading for u in r.units)
    assert r.body() == [
        "The word vaccine comes from the Latin vacca, meaning cow. It was named by Sarah "
        "Nelmes and others."
    ]


def test_answer_kinds() -> None:
    assert answer_kind("When did Apollo 11 land on the Moon?") == "date"
    assert answer_kind("In what year was the treaty signed?") == "date"
    assert answer_kind("How many moons does Mars have?") == "number"
    assert answer_kind("Who discovered penicillin?") == "person"
    assert answer_kind("What is the smallest penguin?") is None
    assert has_kind("20 July 1969", "date") and has_kind("the 1960s", "date")
    assert not has_kind("The Apollo Moon Landings", "date")
    assert has_kind("44 times every second", "number") and has_kind("twelve", "number")
    assert not has_kind("the waggle dance", "number")
    assert has_kind("Alexander Fleming", "person") and not has_kind("the mould", "person")
    assert not has_kind("in 1928", "person")
    assert has_kind("anything", None)


def test_overlap_counts_content_words() -> None:
    assert overlap("When did Apollo 11 land on the Moon?", "Apollo 11 landed on the Moon") == 1.0
    assert overlap("What is the capital of Australia?", "Honeybees dance.") == 0.0
    assert overlap("what is it?", "anything") == 0.0

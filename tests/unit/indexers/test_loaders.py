from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import UsageError
from indexers.curate import document_problem, duplicate_mask
from indexers.loaders import load_paths


def test_every_format_loads_with_stable_ids_and_metadata(corpus: Path) -> None:
    report = load_paths([corpus])
    assert report.failed == []
    by_id = {d.doc_id: d for d in report.documents}
    assert set(by_id) == {
        "bees.txt",
        "space/moon.md",
        "history/press.html",
        "photosynthesis.pdf",
        "volcano.docx",
        "briefs.jsonl#L1",
        "briefs.jsonl#L2",
    }
    assert "waggle dance" in by_id["bees.txt"].text
    assert "20 July 1969" in by_id["space/moon.md"].text
    html = by_id["history/press.html"]
    assert "Gutenberg" in html.text and "Contact us" not in html.text  # nav stripped
    assert html.title == "The printing press"
    assert "chloroplasts" in by_id["photosynthesis.pdf"].text
    assert "Vesuvius" in by_id["volcano.docx"].text
    tea = by_id["briefs.jsonl#L1"]
    assert tea.source == "briefs.jsonl"
    assert tea.metadata == {"topic": "food", "year": 1610}
    assert tea.title == "Tea"
    assert all(d.mtime and len(d.content_hash) == 32 for d in report.documents)


def test_corrupt_pdf_is_reported_not_fatal(corpus: Path) -> None:
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf\n%%EOF")
    report = load_paths([corpus])
    assert [s for s, _ in report.failed] == ["broken.pdf"]
    assert len(report.documents) == 7


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="path not found"):
        load_paths([tmp_path / "nope"])


def test_jsonl_text_field_is_configurable(tmp_path: Path) -> None:
    f = tmp_path / "rows.jsonl"
    f.write_text('{"body": "Some body text here.", "lang": "en"}\n')
    report = load_paths([f], text_field="body")
    assert report.documents[0].text == "Some body text here."
    assert report.documents[0].metadata == {"lang": "en"}
    assert load_paths([f]).failed  # default field "text" is missing


def test_boilerplate_and_empty_documents_are_flagged() -> None:
    assert document_problem("   ") == "empty"
    assert document_problem("Home | Contact us | Privacy policy | Subscribe") == "boilerplate"
    assert (
        document_problem(
            "Accept cookies. Privacy policy. Terms of use. Subscribe to our newsletter. Sign in. "
            "Log in. Contact us. Follow us. Copyright. All rights reserved. Home. Menu."
        )
        == "boilerplate"
    )
    assert (
        document_problem(
            "The Nile is the longest river in Africa and flows north "
            "through eleven countries into the Mediterranean Sea."
        )
        is None
    )


def test_exact_and_near_duplicates_are_dropped() -> None:
    base = (
        "The Great Barrier Reef is the largest coral reef system in the world, made of "
        "nearly three thousand individual reefs off the coast of Queensland in Australia. "
        "It can be seen from outer space and is home to thousands of species of fish, "
        "molluscs, turtles and corals, and it was made a World Heritage Site in 1981."
    )
    near = base.replace("Queensland", "Queensland state")
    other = "Chess openings such as the Sicilian Defence answer 1.e4 with 1...c5 for Black."
    keep, exact, near_n = duplicate_mask([base, base.upper(), near, other])
    assert keep.tolist() == [True, False, False, True]
    assert (exact, near_n) == (1, 1)

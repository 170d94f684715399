"""Loaders, decoding and structure: every example of issue 13 that needs no model."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from indexers.curate import document_problem
from indexers.decode import Undecodable, clean_text, decode_bytes
from indexers.loaders import flatten, html_to_markdown, load_one, ocr_available, read_pdf
from indexers.structure import markdown_sections, plain_sections, unwrap
from stores.bm25 import LEGACY_ANALYZER, BM25Index


def _pdf(pages: list[list[str]]) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4)
    for lines in pages:
        y = 800
        for line in lines:
            c.drawString(72, y, line)
            y -= 14
        c.showPage()
    c.save()
    return buf.getvalue()


def _one(tmp_path: Path, name: str, raw: bytes) -> tuple[list, list]:
    p = tmp_path / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(raw)
    loaded = load_one(p, tmp_path)
    return loaded.documents, loaded.problems


CAFE = "Le café de la gare ouvre à sept heures."


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        (CAFE, "cp1252"),
        ("Überall grüne Bäume; die Straße ist ruhig. Ça va très bien, où êtes-vous?", "cp1252"),
        ("Привет, как дела? Это тест кодировки.", "cp1251"),
        ("Zażółć gęślą jaźń, to jest test.", "cp1250"),
    ],
)
def test_legacy_encodings_decode_exactly(text: str, encoding: str) -> None:
    assert decode_bytes(text.encode(encoding))[0] == text


@pytest.mark.parametrize("codec", ["utf-8-sig", "utf-16", "utf-16-be", "utf-32"])
def test_byte_order_marks_decide_and_vanish(tmp_path: Path, codec: str) -> None:
    raw = f"Title line\n\n{CAFE}".encode(codec)
    if codec == "utf-16-be":
        raw = b"\xfe\xff" + raw
    docs, problems = _one(tmp_path, "note.txt", raw)
    assert not problems
    assert docs[0].title == "Title line" and CAFE in docs[0].text
    assert "\ufeff" not in docs[0].text + docs[0].title


def test_cp1252_text_file_keeps_its_accents(tmp_path: Path) -> None:
    docs, problems = _one(tmp_path, "gare.txt", CAFE.encode("cp1252"))
    assert not problems and docs[0].text == CAFE and "\ufffd" not in docs[0].text


def test_nfc_and_invisible_characters() -> None:
    decomposed = "cafe\u0301 co\u200bop\u00adera\u200dtion \u200c"
    assert clean_text(decomposed) == "café coopera\u200dtion \u200c"


def test_undecodable_bytes_are_reported(tmp_path: Path) -> None:
    with pytest.raises(Undecodable):
        decode_bytes(bytes(range(128, 256)) * 8)
    _, problems = _one(tmp_path, "x.txt", bytes(range(128, 256)) * 8)
    assert problems[0].kind == "failed" and "undecodable" in problems[0].reason


def test_jsonl_bad_lines_skip_alone_and_metadata_flattens(tmp_path: Path) -> None:
    rows = [
        {"text": "Solar panels on the north roof.", "meta": {"site": "north"}, "tags": ["solar"]},
        {"text": "Wind turbine maintenance is monthly.", "tags": ["wind", "ops"]},
        {"title": "no text here"},
        {"text": "Battery storage holds two days."},
    ]
    raw = b"\xef\xbb\xbf" + "\n".join(json.dumps(r) for r in rows).encode() + b"\n{oops\n"
    docs, problems = _one(tmp_path, "rows.jsonl", raw)
    assert [d.doc_id for d in docs] == ["rows.jsonl#L1", "rows.jsonl#L2", "rows.jsonl#L4"]
    assert docs[0].metadata == {"meta.site": "north", "tags": ["solar"]}
    assert [(p.source, p.kind) for p in problems] == [
        ("rows.jsonl#L3", "failed"),
        ("rows.jsonl#L5", "failed"),
    ]
    assert "no string field 'text'" in problems[0].reason
    assert flatten({"a": [{"b": 1}, {"b": 2}], "n": None}) == {"a.b": [1, 2]}


HTML = """<html><head><title>Library hours</title><style>.x{color:red}</style>
<script>var tracking = 1;</script></head><body>
<nav><a href="/">Home</a> <a href="/about">About us</a></nav>
<div id="cookie-banner">We use cookies. Accept all cookies?</div>
<main><h1>Opening hours</h1>
<div>The reading room closes at eight.</div>
<span>Children's corner opens at nine.</span>
<dl><dt>Archive</dt><dd>The archive is open on Tuesdays only.</dd></dl>
<table><tr><th>Basement stacks need a pass.</th><td>Ask at the desk</td></tr></table>
<h5>Group visits must be booked ahead.</h5>
<section>Lockers cost one euro.</section></main>
<footer>Copyright 2024 All rights reserved</footer></body></html>"""


def test_html_keeps_visible_main_text_whatever_the_tags(tmp_path: Path) -> None:
    text, title = html_to_markdown(HTML)
    assert title == "Library hours"
    for sentence in (
        "The reading room closes at eight.",
        "Children's corner opens at nine.",
        "The archive is open on Tuesdays only.",
        "Basement stacks need a pass.",
        "Group visits must be booked ahead.",
        "Lockers cost one euro.",
    ):
        assert sentence in text
    for junk in ("tracking", "color:red", "cookies", "About us", "Copyright"):
        assert junk not in text
    docs, _ = _one(tmp_path, "hours.html", HTML.encode("utf-16"))
    assert docs[0].title == "Library hours"
    assert "Opening hours" in {s.title for s in docs[0].sections}


def test_pdf_plain_reasons(tmp_path: Path) -> None:
    import pypdf

    good = _pdf([["Keep (don't delete) input files during compression or decompres-", "sion."]])
    pages, _, _ = read_pdf(good)
    assert "decompres-" in pages[0]
    docs, problems = _one(tmp_path, "gzip.pdf", good)
    assert not problems and "compression or decompression." in docs[0].text
    assert docs[0].pages == 1

    writer = pypdf.PdfWriter()
    writer.append(pypdf.PdfReader(io.BytesIO(good)))
    writer.encrypt("secret")
    buf = io.BytesIO()
    writer.write(buf)
    cases = {
        "locked.pdf": (buf.getvalue(), "encrypted: a password is required"),
        "cut.pdf": (good[: len(good) // 2], "damaged or truncated PDF"),
        "empty.pdf": (b"", "empty file"),
    }
    for name, (raw, reason) in cases.items():
        _, problems = _one(tmp_path, name, raw)
        assert problems[0].kind == "failed" and problems[0].reason.startswith(reason), name
        assert "RetryError" not in problems[0].reason


def _image_only_pdf() -> bytes:
    from PIL import Image, ImageDraw, ImageFont
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    img = Image.new("RGB", (900, 120), "white")
    font = ImageFont.load_default(size=48)
    ImageDraw.Draw(img).text((20, 30), "Boarding closes early", fill="black", font=font)
    buf = io.BytesIO()
    c = canvas.Canvas(buf)
    c.drawImage(ImageReader(img), 40, 600, width=450, height=60)
    c.save()
    return buf.getvalue()


def test_pdf_without_text_layer_is_named_as_needing_ocr() -> None:
    with pytest.raises(Exception, match="no text layer: needs OCR") as info:
        read_pdf(_image_only_pdf(), ocr=False)
    assert getattr(info.value, "kind", "") == "dropped"


@pytest.mark.skipif(not ocr_available(), reason="OCR extra (rapidocr-onnxruntime) not installed")
def test_pdf_ocr_reads_an_image_only_pdf() -> None:
    pages, _, used = read_pdf(_image_only_pdf())
    assert used and "boarding" in pages[0].lower()


def test_files_without_extension_are_sniffed(tmp_path: Path) -> None:
    docs, problems = _one(tmp_path, "README", b"Tandem\n\nRun make demo to try it.\n")
    assert not problems and "make demo" in docs[0].text
    _, problems = _one(tmp_path, "logo.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 20)
    assert problems[0].kind == "skipped" and problems[0].reason.startswith("unsupported")


def test_rst_csv_json(tmp_path: Path) -> None:
    rst = b"Guide\n=====\n\nInstall\n-------\n\nRun the\ninstaller twice.\n"
    docs, _ = _one(tmp_path, "guide.rst", rst)
    assert docs[0].sections[0].title == "Guide > Install"
    assert docs[0].sections[0].text == "Run the installer twice."
    docs, _ = _one(tmp_path, "staff.csv", b"name,room\nAda,12\nGrace,7\n")
    assert [d.text for d in docs] == ["name: Ada\nroom: 12", "name: Grace\nroom: 7"]
    docs, _ = _one(tmp_path, "faq.json", json.dumps([{"text": "Q1 answer.", "k": 1}]).encode())
    assert docs[0].text == "Q1 answer." and docs[0].metadata == {"k": 1}


def test_unwrap_and_headings() -> None:
    man = (
        "NAME\n       gzip - compress files\n\nOPTIONS\n       -k --keep\n"
        "              Keep (don't delete) input files during compression or decompres\u2010\n"
        "              sion.\n"
    )
    sections = plain_sections(man)
    assert [s.title for s in sections] == ["NAME", "OPTIONS"]
    assert "during compression or decompression." in sections[1].text
    readme = "Install\n\nThe tool runs on Linux and\nmacOS without any\nchanges.\n"
    s = plain_sections(readme)
    assert (
        s[0].title == "Install"
        and s[0].text == "The tool runs on Linux and macOS without any changes."
    )
    md = markdown_sections(
        "# Wifi\n\nThe password is\non the fridge.\n\n## Guests\n\n- one\n- two\n"
    )
    assert [(x.title, x.text) for x in md] == [
        ("Wifi", "The password is on the fridge."),
        ("Wifi > Guests", "- one\n- two"),
    ]
    assert unwrap("龙井茶产\n自杭州。") == "龙井茶产自杭州。"


def test_boilerplate_never_drops_short_records() -> None:
    assert document_problem("Accept cookies. Sign in. Menu. Home.") == "boilerplate"
    assert document_problem("Room 12: Ada", record=True) is None
    assert document_problem("Contact us: 555 0100") is None
    assert document_problem("Opening hours: closed on Sundays") is None


def test_bm25_finds_cjk_and_accent_folded_terms(tmp_path: Path) -> None:
    texts = ["龙井茶产自杭州西湖。", "普洱茶来自云南。", CAFE, "東京タワーは東京にあります。"]
    index = BM25Index.build(texts)
    queries = ["龙井茶", "云南", "cafe", "café", "東京タワー"]
    assert [int(r[0][0]) for r in index.search(queries, 2)] == [0, 1, 2, 2, 3]
    index.save(tmp_path)
    assert BM25Index.load(tmp_path).params()["analyzer"] == "unicode-cjk-bigram"
    (tmp_path / "bm25" / "analyzer.txt").unlink()  # an index built before analyzers
    legacy = BM25Index.build(texts, analyzer=LEGACY_ANALYZER)
    legacy.save(tmp_path / "old")
    (tmp_path / "old" / "bm25" / "analyzer.txt").unlink()
    old = BM25Index.load(tmp_path / "old")
    assert old.analyzer == LEGACY_ANALYZER and int(old.search(["gare"], 1)[0][0][0]) == 2

"""Fixtures for the unit tests: small corpora written by the tests themselves."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TOPICS = {
    "bees.txt": (
        "Honeybees communicate the location of flowers with the waggle dance. The angle of the "
        "dance shows the direction relative to the sun, and its duration shows the distance. "
        "Karl von Frisch decoded the dance and shared the Nobel Prize in 1973."
    ),
    "space/moon.md": (
        "# The Moon landing\n\nApollo 11 landed on the Moon on 20 July 1969. Neil Armstrong and "
        "Buzz Aldrin walked on the surface while Michael Collins orbited above in Columbia. The "
        "lunar module was called Eagle and landed in the Sea of Tranquility."
    ),
    "history/press.html": (
        "<html><head><title>The printing press</title></head><body><nav>Home | About | "
        "Contact us</nav><main><h1>The printing press</h1><p>Johannes Gutenberg developed a "
        "printing press with movable metal type around 1440 in Mainz. His Bible, printed around "
        "1455, was the first major book printed this way in Europe.</p></main><footer>Copyright "
        "2024. All rights reserved. Privacy policy.</footer></body></html>"
    ),
}
JSONL = [
    {
        "text": "Tea was first drunk in China; legend credits the emperor Shen Nong in 2737 BC. "
        "Dutch traders brought it to Europe in the early 17th century.",
        "title": "Tea",
        "topic": "food",
        "year": 1610,
    },
    {
        "text": "Penicillin was discovered by Alexander Fleming in 1928 at St Mary's Hospital in "
        "London, when mould killed bacteria in a forgotten culture dish.",
        "title": "Penicillin",
        "topic": "science",
        "year": 1928,
    },
]


def write_pdf(path: Path, text: str) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=A4)
    y = 800
    words = text.split()
    line: list[str] = []
    for w in words:
        line.append(w)
        if len(" ".join(line)) > 80:
            c.drawString(40, y, " ".join(line))
            y -= 16
            line = []
    if line:
        c.drawString(40, y, " ".join(line))
    c.save()


def write_docx(path: Path, text: str) -> None:
    import docx

    d = docx.Document()
    d.add_heading("Volcanoes", level=1)
    d.add_paragraph(text)
    d.save(str(path))


PDF_TEXT = (
    "Photosynthesis turns light, water and carbon dioxide into glucose and oxygen. It takes "
    "place in the chloroplasts of plant cells, which contain the green pigment chlorophyll."
)
DOCX_TEXT = (
    "Mount Vesuvius erupted in AD 79 and buried the Roman towns of Pompeii and Herculaneum under "
    "ash. Pliny the Younger described the eruption in two letters to the historian Tacitus."
)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A folder with one document of every supported format."""
    root = tmp_path / "corpus"
    for rel, text in TOPICS.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    write_pdf(root / "photosynthesis.pdf", PDF_TEXT)
    write_docx(root / "volcano.docx", DOCX_TEXT)
    (root / "briefs.jsonl").write_text(
        "\n".join(json.dumps(r) for r in JSONL) + "\n", encoding="utf-8"
    )
    return root


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"

"""Fixtures for the unit tests: small corpora written by the tests themselves, and the toy
reader, checker and reranker, each trained once per session on the data of
:mod:`tests.unit.toy_models` (shared by tests/unit/smallmodels and tests/unit/training).

* ``squad_file`` / ``trained_reader``: the reader's SQuAD file; (folder, training figures).
* ``data_files`` / ``trained_checker``: the checker's (HaluEval, SQuAD) files; its folder.
* ``squad_model``: the reranker trained on :func:`~tests.unit.toy_models.write_town_squad`;
  (folder, training figures).

Tests must not change these folders (copy one first).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.unit.toy_models import (
    CITIES,
    READER_PARAGRAPHS,
    checker_squad,
    halueval_rows,
    reader_squad,
    write_town_squad,
)

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


# -- the toy models, trained once per session ---------------------------------------------------
@pytest.fixture(scope="session")
def squad_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("squad") / "tiny.json"
    path.write_text(json.dumps(reader_squad(READER_PARAGRAPHS)), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def trained_reader(
    tmp_path_factory: pytest.TempPathFactory, squad_file: Path
) -> tuple[Path, dict[str, Any]]:
    from training.reader import train_reader

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


@pytest.fixture(scope="session")
def data_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("checker-data")
    halu = root / "halueval.jsonl"
    halu.write_text("\n".join(json.dumps(r) for r in halueval_rows()) + "\n")
    squad = root / "squad.json"
    squad.write_text(json.dumps(checker_squad()))
    return halu, squad


@pytest.fixture(scope="session")
def trained_checker(
    data_files: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    from training.checker import train_checker

    halu, squad = data_files
    out = tmp_path_factory.mktemp("checker-model") / "checker"
    summary = train_checker(
        out,
        halu,
        [squad],
        halueval_rows=None,
        steps=24,
        batch_size=12,
        learning_rate=3e-4,
        seed=0,
        threads=1,
    )
    assert summary["steps"] == 24
    assert summary["halueval_groups"] >= len(CITIES)
    assert summary["squad_groups"] >= 18
    assert summary["answers_by_kind"]["right_sentence"] > 0
    return out


@pytest.fixture(scope="session")
def squad_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    from training.reranker import train_reranker

    root = tmp_path_factory.mktemp("reranker-squad")
    squad = write_town_squad(root / "tiny.json")
    figures = train_reranker(
        root / "model",
        squad_files=[squad],
        steps=8,
        batch_groups=4,
        negatives=3,
        max_length=64,
        heldout=8,
        top_n=8,
        lr=3e-4,
        train_layers=None,
        progress=False,
        log=lambda _m: None,
    )
    return root / "model", figures

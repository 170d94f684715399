"""``tandem bench speed`` and ``tandem bench suite`` argument checks, through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import main

pytest.importorskip("onnxruntime")

PARAGRAPHS = [
    "Honeybees communicate the location of flowers with the waggle dance.",
    "Apollo 11 landed on the Moon on 20 July 1969.",
    "Johannes Gutenberg developed a printing press with movable metal type around 1440.",
    "Tea was first drunk in China and reached Europe with Dutch traders.",
]


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().out


@pytest.mark.slow
def test_speed_reports_every_backend_against_raw_torch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    squad = tmp_path / "tiny.json"
    data = [
        {"title": "t", "paragraphs": [{"context": p, "qas": [{"id": str(i), "question": "q?"}]}]}
        for i, p in enumerate(PARAGRAPHS)
    ]
    squad.write_text(json.dumps({"data": data}))
    code, out = _run(
        capsys, "--json", "bench", "speed", "--squad", str(squad), "--texts", "8", "--rounds", "1"
    )
    assert code == 0
    enc = json.loads(out)["encoder"]
    assert enc["texts"] == 4
    assert set(enc["texts_per_s"]) == {"raw torch", "torch", "onnx", "onnx-int8"}
    assert set(enc["speedup_vs_raw_torch"]) == {"torch", "onnx", "onnx-int8"}
    assert enc["cosine_vs_torch"]["onnx"]["min"] > 0.9999
    assert enc["cosine_vs_torch"]["onnx-int8"]["mean"] > 0.98


def test_suite_needs_a_set(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _ = _run(capsys, "bench", "suite", "--page", str(tmp_path / "B.md"))
    assert code != 0 and not (tmp_path / "B.md").exists()
    code, _ = _run(capsys, "bench", "suite", "--squad", str(tmp_path / "missing.json"))
    assert code != 0

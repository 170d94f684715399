"""``tandem bench``: found through its entry point; ``speed`` and ``suite``, ``faithfulness`` and
``swapped`` argument checks, through the real CLI."""

from __future__ import annotations

import json
from importlib.metadata import entry_points
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
    return _run_err(capsys, *args)[:2]


def _run_err(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_bench_registers_through_its_entry_point() -> None:
    import typer

    import bench.cli
    from app.cli import cli

    (ep,) = [ep for ep in entry_points(group="tandem.cli") if ep.name == "bench"]
    assert ep.load() is bench.cli.register
    bench_group = typer.main.get_command(cli).commands["bench"]  # type: ignore[attr-defined]
    names = list(bench_group.commands)
    assert len(names) == len(set(names))
    assert {
        *("retrieval", "answers", "serve", "faithfulness", "swapped"),
        *("suite", "scale", "speed", "llamaindex"),
        *("cascade", "speculative", "ingest", "load", "ray", "tracing"),
    } <= set(names)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["faithfulness", "--halueval", "/nonexistent.jsonl"], "HaluEval file not found"),
        (["swapped", "--squad", "/nonexistent.json"], "SQuAD file not found"),
        (["retrieval", "--squad", "/nonexistent.json"], "file not found"),
        (["scale", "--device", "tpu"], "--device: cpu, cuda or auto"),
    ],
)
def test_bad_bench_input_gives_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = _run_err(capsys, "bench", *args)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


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

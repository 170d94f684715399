"""training.reader and training.squad: SQuAD files, features, a short training run, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smallmodels.reader import Reader, load_reader
from training.reader import evaluate_reader, make_features
from training.squad import SquadDataError, load_squad, normalize_answer, split_heldout

# --- SQuAD files and features ----------------------------------------------------------------


def test_load_squad_and_heldout_split(squad_file: Path, tmp_path: Path) -> None:
    questions = load_squad(squad_file)
    assert len(questions) == 16
    q = questions[5]
    assert q.context[q.answer_starts[0] :].startswith(q.answers[0])
    train, held = split_heldout(questions, 5, seed=1)
    assert len(held) == 8  # two whole paragraphs
    assert {x.paragraph for x in train}.isdisjoint({x.paragraph for x in held})
    bad = tmp_path / "bad.json"
    bad.write_text('{"data": [{"paragraphs": [{"qas": []}]}]}')
    with pytest.raises(SquadDataError, match="context"):
        load_squad(bad)
    with pytest.raises(SquadDataError, match="not found"):
        load_squad(tmp_path / "missing.json")


def test_make_features_labels_point_at_the_answer(squad_file: Path) -> None:
    from transformers import AutoTokenizer

    from smallmodels.spec import resolve

    tokenizer = AutoTokenizer.from_pretrained(resolve(None).path)
    questions = load_squad(squad_file)
    features = make_features(tokenizer, questions, max_seq_len=32, doc_stride=8)
    assert len(features) > len(questions)  # short windows overflow
    answered = [f for f in features if f.start > 0]
    assert answered and any(f.start == 0 for f in features)
    golds = {normalize_answer(q.answers[0]).replace(" ", "") for q in questions}
    for f in answered:
        text = str(tokenizer.decode(f.input_ids[f.start : f.end + 1]))
        assert normalize_answer(text).replace(" ", "") in golds


# --- a short training run --------------------------------------------------------------------


@pytest.mark.slow
def test_train_writes_a_loadable_folder(trained_reader: tuple[Path, dict]) -> None:
    out, figures = trained_reader
    assert figures["steps"] == 60
    assert figures["examples"] == 16
    assert (out / "config.json").is_file() and (out / "tokenizer.json").is_file()
    card = (out / "README.md").read_text()
    assert "60" in card and "all_minilm" in card
    reader = load_reader(str(out))
    assert load_reader(str(out)) is reader
    assert isinstance(reader, Reader)


@pytest.mark.slow
def test_reader_learned_the_fixture(trained_reader: tuple[Path, dict], squad_file: Path) -> None:
    scores = evaluate_reader(str(trained_reader[0]), squad_file, max_questions=None)
    assert scores["questions"] == 16
    assert scores["f1"] >= 0.5  # memorised training data; an untrained head scores ~0.05


# --- CLI ------------------------------------------------------------------------------------


def test_cli_train_errors_are_one_line(tmp_path: Path) -> None:
    from app.cli.reader import app

    runner = CliRunner()
    result = runner.invoke(app, ["train", str(tmp_path / "out"), "--squad", "nope.json"])
    assert result.exit_code == 2
    assert "SQuAD file not found" in result.output and "Traceback" not in result.output
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2")
    result = runner.invoke(app, ["train", str(tmp_path / "out"), "--squad", str(bad)])
    assert result.exit_code == 2
    assert "cannot read" in result.output and "Traceback" not in result.output


def test_train_device_is_checked_before_any_work(squad_file: Path, tmp_path: Path) -> None:
    import torch

    from app.cli.reader import app
    from training.reader import train_reader

    with pytest.raises(SquadDataError, match="device must be cpu or cuda"):
        train_reader(tmp_path / "a", [squad_file], steps=1, device="mps")
    if not torch.cuda.is_available():
        with pytest.raises(SquadDataError, match="no CUDA device"):
            train_reader(tmp_path / "b", [squad_file], steps=1, device="cuda:0")
    result = CliRunner().invoke(
        app, ["train", str(tmp_path / "c"), "--squad", str(squad_file), "--device", "tpu"]
    )
    assert result.exit_code == 2, result.output
    assert "device must be cpu or cuda" in result.output
    assert not any((tmp_path / n).exists() for n in ("a", "b", "c"))


@pytest.mark.slow
def test_cli_train_json(tmp_path: Path, squad_file: Path) -> None:
    from app.cli.reader import app
    from app.output import STATE

    STATE.json = True
    try:
        result = CliRunner().invoke(
            app, ["train", str(tmp_path / "r"), "--squad", str(squad_file), "--steps", "2"]
        )
    finally:
        STATE.json = False
    assert result.exit_code == 0, result.output
    obj = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(obj) == {"out", "examples", "steps", "seconds", "heldout"}
    assert obj["steps"] == 2 and set(obj["heldout"]) == {"exact_match", "f1"}

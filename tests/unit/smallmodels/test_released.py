"""The models released with Tandem (smallmodels/released): present, within the size budget,
checked against their manifest, resolved by name and by default, and served with real answers
in a process where PyTorch cannot be imported. The export itself is tested in
tests/unit/training/test_release.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import ModelNotFound
from smallmodels import released as rel
from smallmodels.released import (
    FOLDERS,
    MODEL_FILE,
    RELEASED_ROOT,
    default_folder,
    read_release,
    release_alias,
    verify,
)
from smallmodels.spec import resolve

ROOT = Path(__file__).resolve().parents[3]
#: The repository carries at most this many bytes of released weights.
WEIGHT_BUDGET = 100 * 1000 * 1000
#: Until a release is exported (`make release-models`) there is nothing to test here; the
#: export and the torch-free serving path are tested on tiny models in
#: tests/unit/training/test_release.py. Once any released folder exists, all three must.
NO_RELEASE = not any((RELEASED_ROOT / name).exists() for name in FOLDERS.values())
needs_release = pytest.mark.skipif(
    NO_RELEASE, reason="no released models in smallmodels/released yet (make release-models)"
)


@needs_release
def test_the_three_models_are_released_within_budget() -> None:
    total = 0
    for kind, name in FOLDERS.items():
        folder = RELEASED_ROOT / name
        assert (folder / MODEL_FILE).is_file(), f"{folder} is missing: run `make release-models`"
        meta = read_release(folder)
        assert meta["kind"] == kind and meta["name"] == name
        assert "Gather" in meta["quantization"]["op_types"]  # the embeddings are int8 too
        verify(folder)
        card = (folder / "README.md").read_text(encoding="utf-8")
        assert "CC BY-SA 4.0" in card
        assert not list(folder.glob("*.safetensors")) and not list(folder.glob("*.bin"))
        total += sum(p.stat().st_size for p in folder.glob("*.onnx"))
    assert total <= WEIGHT_BUDGET
    checker_card = (RELEASED_ROOT / FOLDERS["checker"] / "README.md").read_text(encoding="utf-8")
    assert "HaluEval" in checker_card and "MIT" in checker_card


@needs_release
def test_released_names_resolve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for kind, name in FOLDERS.items():
        for spec in (f"released:{kind}", f"tandem-{kind}", f"released:{name}"):
            resolved = resolve(spec)
            assert resolved.source == "released" and Path(resolved.path) == RELEASED_ROOT / name
    assert resolve("released:reranker@top_n=5").options == {"top_n": "5"}
    assert release_alias("models/reader-minilm") is None
    with pytest.raises(ModelNotFound, match="released:reader"):
        resolve("released:nothing")
    # Defaults: models/<name> (a `make models` result) wins when it exists, else the release.
    monkeypatch.setattr(rel, "LOCAL_ROOT", tmp_path)
    assert default_folder("checker") == str(RELEASED_ROOT / "checker-minilm")
    (tmp_path / "checker-minilm").mkdir()
    assert default_folder("checker") == str(tmp_path / "checker-minilm")


@needs_release
def test_released_models_serve_real_answers_without_pytorch() -> None:
    """Reader, checker and reranker, loaded by their released names where ``import torch``
    fails: the reader finds the date, the checker prefers the supported claim, the reranker
    puts the relevant passage first."""
    script = r"""
import json, sys
sys.modules["torch"] = None  # import torch raises ImportError from here on
from smallmodels.checker import load_checker
from smallmodels.reader import load_reader
from smallmodels.reranker import load_reranker

apollo = ("Apollo 11 was the American spaceflight that first landed humans on the Moon. "
          "Commander Neil Armstrong and pilot Buzz Aldrin landed the lunar module Eagle on "
          "20 July 1969, and Armstrong stepped onto the surface six hours later.")
bees = ("Honeybees tell each other where flowers are with the waggle dance: the angle of the "
        "run shows the direction and its length the distance.")
q = "When did Apollo 11 land on the Moon?"
reader = load_reader("released:reader")
result = reader.read_detailed(q, [bees, apollo], top_n=3)
checker = load_checker("released:checker@reader=released:reader")
good = checker.check(q, "20 July 1969", [apollo]).score
bad = checker.check(q, "In 1492.", [apollo]).score
off = checker.check(q, "Neil Armstrong", [apollo]).score
reranker = load_reranker("released:reranker")
order = reranker.score(q, [bees, apollo]).tolist()
heavy = [m for m in ("torch", "transformers", "sentence_transformers") if sys.modules.get(m)]
print(json.dumps({"span": result.spans[0].text, "passage": result.spans[0].passage_index,
                  "no_answer": result.no_answer, "good": good, "bad": bad, "off": off,
                  "order": order, "heavy": heavy, "reader": type(reader).__name__}))
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["heavy"] == [] and out["reader"] == "OnnxReader"
    assert "20 July 1969" in out["span"] and out["passage"] == 1
    assert out["no_answer"] < 0.5
    assert out["good"] > 0.5 > out["bad"]
    assert out["good"] > out["off"]  # another entity of the passage is not this answer
    assert out["order"][1] > out["order"][0]


def test_names_and_defaults_without_a_release(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A released name whose folder is missing is a clear error; the default folder is
    models/<name> when it is there, else the release, else models/<name> (to be trained)."""
    monkeypatch.setattr(rel, "RELEASED_ROOT", tmp_path / "released")
    monkeypatch.setattr(rel, "LOCAL_ROOT", tmp_path / "models")
    with pytest.raises(ModelNotFound, match="make release-models"):
        resolve("released:reader")
    with pytest.raises(ModelNotFound, match="needs a model name"):
        resolve("released:")
    assert default_folder("reader") == str(tmp_path / "models" / "reader-minilm")
    (tmp_path / "released" / "reader-minilm").mkdir(parents=True)
    (tmp_path / "released" / "reader-minilm" / rel.RELEASE_FILE).write_text("{}")
    assert default_folder("reader") == str(tmp_path / "released" / "reader-minilm")
    (tmp_path / "models" / "reader-minilm").mkdir(parents=True)
    assert default_folder("reader") == str(tmp_path / "models" / "reader-minilm")

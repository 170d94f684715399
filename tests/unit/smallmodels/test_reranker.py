"""The cross-encoder reranker: passage focusing, loading, scoring, backends, the score CLI.

The model is trained once per session on a tiny SQuAD fixture: ``squad_model`` in
tests/unit/conftest.py, data in tests/unit/toy_models.py (the training itself is tested in
tests/unit/training/test_train_reranker.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from core.errors import UsageError
from smallmodels.reranker import (
    CrossEncoderReranker,
    Reranker,
    focus_passage,
    load_reranker,
    passage_word_budget,
)
from tests.unit.toy_models import TOWNS, town_paragraph


# -- pure functions ------------------------------------------------------------------------------
def test_focus_passage_keeps_the_window_with_the_query_words() -> None:
    filler = " ".join(f"filler{i}" for i in range(200))
    text = f"{filler} the founder of Avalon was Alice Moreau {filler}"
    focused = focus_passage("Who founded Avalon, and who was its founder?", text, 40)
    assert len(focused.split()) == 40
    assert "Avalon" in focused and "Moreau" in focused
    short = "a short passage"
    assert focus_passage("anything", short, 40) == short
    assert passage_word_budget("Who founded Avalon?", 64) < passage_word_budget("x", 128)


# -- the trained reranker ------------------------------------------------------------------------
@pytest.mark.slow
def test_trained_reranker_orders_relevant_passages_first(
    squad_model: tuple[Path, dict[str, Any]],
) -> None:
    out, _ = squad_model
    reranker = load_reranker(str(out))
    assert isinstance(reranker, Reranker)
    assert load_reranker(str(out)) is reranker  # cached per process
    passages = [town_paragraph(i) for i in range(6)]
    wins = 0
    for i in range(6):
        scores = reranker.score(f"Who founded {TOWNS[i]}?", passages)
        assert scores.shape == (6,) and scores.dtype == np.float32
        wins += int(np.argmax(scores) == i)
    assert wins >= 4, wins
    unrelated = "Espresso forces hot water through finely ground coffee at nine bars."
    s = reranker.score("Who founded Avalon?", [town_paragraph(0), unrelated])
    assert s[0] > s[1]
    assert reranker.score("anything", []).shape == (0,)


@pytest.mark.slow
def test_spec_options_override_the_folder_config(
    squad_model: tuple[Path, dict[str, Any]],
) -> None:
    out, _ = squad_model
    fp32 = CrossEncoderReranker(f"{out}@backend=torch,top_n=3,fusion=0.25")
    assert (fp32.backend, fp32.top_n, fp32.fusion_weight, fp32.max_length) == (
        "torch",
        3,
        0.25,
        64,
    )
    int8 = CrossEncoderReranker(f"{out}@backend=torch-int8")
    texts = [town_paragraph(i) for i in range(4)]
    a, b = fp32.score("Who founded Brindle?", texts), int8.score("Who founded Brindle?", texts)
    assert int(np.argmax(a)) == int(np.argmax(b)) == 1
    assert int8.describe()["pairs_per_s"] is not None
    with pytest.raises(UsageError):
        CrossEncoderReranker(f"{out}@backend=onnx-fp16")
    with pytest.raises(UsageError):
        load_reranker("")


@pytest.mark.slow
def test_onnx_backends_score_like_torch(
    squad_model: tuple[Path, dict[str, Any]], tmp_path: Path, model_runtime: Callable[..., None]
) -> None:
    pytest.importorskip("onnxruntime")
    model_runtime(onnx_cache=tmp_path / "onnx")
    out, _ = squad_model
    texts = [town_paragraph(i) for i in range(4)]
    torch_scores = CrossEncoderReranker(f"{out}@backend=torch").score("Who founded Brindle?", texts)
    fp32 = CrossEncoderReranker(f"{out}@backend=onnx")
    assert fp32.model is None and fp32.backend == "onnx"  # no PyTorch model kept in memory
    np.testing.assert_allclose(fp32.score("Who founded Brindle?", texts), torch_scores, atol=1e-3)
    int8 = CrossEncoderReranker(f"{out}@backend=onnx-int8")
    scores = int8.score("Who founded Brindle?", texts)
    assert scores.shape == (4,) and scores.dtype == np.float32
    assert int(np.argmax(scores)) == int(np.argmax(torch_scores)) == 1
    assert int8.describe()["pairs_scored"] == 4 and int8.describe()["backend"] == "onnx-int8"
    assert int8.score("anything", []).shape == (0,)


@pytest.mark.slow
def test_cli_score_prints_passages_best_first(squad_model: tuple[Path, dict[str, Any]]) -> None:
    from app.cli import cli

    out, _ = squad_model
    args = ["--json", "reranker", "score", "Who founded Corvale?", "--model", str(out)]
    for i in range(4):
        args += ["-p", town_paragraph(i)]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output.strip().splitlines()[-1])["scores"]
    assert rows[0]["passage"] == 2 and len(rows) == 4
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)

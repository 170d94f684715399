"""training.reranker: training from SQuAD and from a corpus alone, its helpers and the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from core.errors import UsageError
from smallmodels.reranker import CONFIG_FILE, CrossEncoderReranker
from training.reranker import ndcg10, pseudo_query, train_reranker


# -- helpers -------------------------------------------------------------------------------------
def test_pseudo_query_is_a_cropped_sentence_and_ndcg() -> None:
    import random

    sentence = " ".join(f"word{i}" for i in range(40))
    q = pseudo_query(sentence, random.Random(0), max_words=12)
    assert 3 <= len(q.split()) <= 12 and set(q.split()) <= set(sentence.split())
    assert ndcg10(["a", "b"], "a") == 1.0
    assert ndcg10(["a", "b", "c"], "c") == pytest.approx(0.5)
    assert ndcg10([f"x{i}" for i in range(10)] + ["c"], "c") == 0.0


def test_fresh_model_trains_only_the_top_layers() -> None:
    from training.reranker import fresh_model

    model, _ = fresh_model(None, train_layers=2)
    trainable = {
        n.split(".")[3] for n, p in model.named_parameters() if p.requires_grad and ".layer." in n
    }
    assert trainable == {"4", "5"}
    assert not model.get_input_embeddings().weight.requires_grad
    assert all(p.requires_grad for p in model.classifier.parameters())


def test_train_wants_exactly_one_source(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        train_reranker(tmp_path / "m", progress=False)
    with pytest.raises(UsageError):
        train_reranker(tmp_path / "m", squad_files=["x.json"], corpus_index="i", data_dir=tmp_path)


# -- training from SQuAD -------------------------------------------------------------------------
@pytest.mark.slow
def test_train_from_squad_writes_a_loadable_cross_encoder(
    squad_model: tuple[Path, dict[str, Any]],
) -> None:
    out, figures = squad_model
    assert figures["steps"] == 8 and figures["data"]["source"] == "squad"
    assert figures["data"]["train_queries"] > 20 and figures["heldout"]["queries"] >= 3
    assert figures["first_loss"] is not None and np.isfinite(figures["last_loss"])
    for name in ("config.json", "model.safetensors", "README.md", CONFIG_FILE):
        assert (out / name).is_file(), name
    card = (out / "README.md").read_text()
    assert "Steps: 8" in card and "tiny.json" in card and "Held-out" in card
    config = json.loads((out / CONFIG_FILE).read_text())
    assert config["max_length"] == 64 and config["top_n"] == 8
    assert config["backend"] in {"torch", "torch-int8", "onnx-int8"} and config["fusion"] >= 0
    # A few steps on look-alike paragraphs already tell the asked-for town from the others.
    held = figures["heldout"]
    assert held["rerank_ndcg@10"] > 0.6, held


# -- training from a corpus alone ----------------------------------------------------------------
@pytest.mark.slow
def test_train_from_corpus_pseudo_queries(fixture_index: Any, tmp_path: Path) -> None:
    figures = train_reranker(
        tmp_path / "corpus-model",
        corpus_index=fixture_index.name,
        data_dir=fixture_index.data_dir,
        steps=3,
        batch_groups=2,
        negatives=2,
        max_length=64,
        heldout=2,
        top_n=5,
        progress=False,
        log=lambda _m: None,
    )
    assert figures["data"]["source"] == "corpus" and figures["steps"] == 3
    assert figures["data"]["train_queries"] >= 2 and figures["heldout"]["queries"] >= 1
    assert "pseudo-queries" in (tmp_path / "corpus-model" / "README.md").read_text()
    scores = CrossEncoderReranker(str(tmp_path / "corpus-model")).score("lava", ["a", "b c"])
    assert scores.shape == (2,) and np.isfinite(scores).all()


# -- CLI -----------------------------------------------------------------------------------------
def test_cli_train_rejects_bad_input(tmp_path: Path) -> None:
    from app.cli import cli

    runner = CliRunner()
    res = runner.invoke(cli, ["reranker", "train", str(tmp_path / "m")])
    assert res.exit_code == 2 and "exactly one" in res.output
    res = runner.invoke(
        cli, ["reranker", "train", str(tmp_path / "m"), "--squad", str(tmp_path / "missing.json")]
    )
    assert res.exit_code == 2 and "not found" in res.output
    res = runner.invoke(
        cli,
        ["--data-dir", str(tmp_path), "reranker", "train", str(tmp_path / "m"), "--corpus", "nope"],
    )
    assert res.exit_code == 2 and "nope" in res.output

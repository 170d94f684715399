"""FAISS past its thresholds: HNSW and IVF-PQ recall against exact search, reload, filters."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.scale import exact_top_k, recall_at_k, synthetic_vectors
from core.errors import UsageError
from stores.faiss_store import (
    DEFAULT_HNSW_THRESHOLD,
    DEFAULT_IVFPQ_THRESHOLD,
    FaissStore,
    default_nlist,
    default_pq_m,
    gpu_count,
)

N = 6000
DIM = 384
Data = tuple[np.ndarray, np.ndarray, np.ndarray]


@pytest.fixture(scope="module")
def data() -> Data:
    vectors = synthetic_vectors(N, DIM, seed=3)
    queries = synthetic_vectors(100, DIM, seed=3, stream=2)
    return vectors, queries, exact_top_k(vectors, queries, 10)


def _build(folder: Path, vectors: np.ndarray, hnsw: int, ivfpq: int, **kw: object) -> FaissStore:
    store = FaissStore(
        folder, DIM, create=True, hnsw_threshold=hnsw, ivfpq_threshold=ivfpq, device="cpu", **kw
    )
    store.build(vectors)
    store.save()
    return store


def test_kind_follows_the_two_thresholds(tmp_path: Path) -> None:
    store = FaissStore(tmp_path, DIM, create=True, hnsw_threshold=10, ivfpq_threshold=100)
    assert [store.kind_for(n) for n in (10, 11, 100, 101)] == ["flat", "hnsw", "hnsw", "ivfpq"]


def test_thresholds_and_device_default_without_arguments(tmp_path: Path) -> None:
    store = FaissStore(tmp_path, DIM, create=True)
    assert (store.hnsw_threshold, store.ivfpq_threshold) == (
        DEFAULT_HNSW_THRESHOLD,
        DEFAULT_IVFPQ_THRESHOLD,
    )
    assert store.device == "auto"
    with pytest.raises(UsageError):
        FaissStore(tmp_path, DIM, create=True, device="tpu")


def test_defaults_for_ivfpq_shapes() -> None:
    assert default_nlist(1_000_000) == 2048 and default_nlist(10) == 64
    assert default_pq_m(384) == 48 and 768 % default_pq_m(768) == 0 and default_pq_m(10) in (1, 2)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, data: Data) -> dict[str, Path]:
    """One index of each kind over the same vectors, written to disk."""
    vectors = data[0]
    out = {}
    for kind, hnsw, ivfpq in (("flat", N, N), ("hnsw", 100, N), ("ivfpq", 100, 1000)):
        folder = tmp_path_factory.mktemp(kind)
        store = _build(folder, vectors, hnsw, ivfpq)
        assert store.kind == kind and store.count == N
        out[kind] = folder
    return out


@pytest.mark.parametrize("kind", ["hnsw", "ivfpq"])
def test_recall_at_10_against_exact_search_after_reload(
    built: dict[str, Path], data: Data, kind: str
) -> None:
    _, queries, exact = data
    store = FaissStore(built[kind], DIM)  # no options: kind and search parameters from disk
    assert store.kind == kind
    saved = json.loads((built[kind] / "vectors.json").read_text())
    assert store.params() == saved and saved["kind"] == kind
    _, rows = store.search(queries, 10)
    assert recall_at_k(rows, exact) >= 0.98


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivfpq"])
def test_filters_and_deep_k(built: dict[str, Path], data: Data, kind: str) -> None:
    _, queries, _ = data
    store = FaissStore(built[kind], DIM)
    _, filtered = store.search(queries[:5], 10, allowed=np.arange(0, N, 3))
    assert (filtered >= 0).all() and (filtered % 3 == 0).all()
    _, deep = store.search(queries[:1], 200)  # beyond efSearch and the refine depth
    assert len(set(deep[0].tolist()) - {-1}) == 200


def test_ivfpq_is_smaller_than_flat_and_exact_flat(built: dict[str, Path], data: Data) -> None:
    flat = (built["flat"] / "vectors.faiss").stat().st_size
    ivfpq = (built["ivfpq"] / "vectors.faiss").stat().st_size
    assert ivfpq < flat / 2
    _, queries, exact = data
    _, rows = FaissStore(built["flat"], DIM).search(queries, 10)
    assert recall_at_k(rows, exact) == 1.0


def test_cuda_without_a_gpu_is_a_usage_error(tmp_path: Path) -> None:
    if gpu_count() > 0:
        pytest.skip("a GPU is present")
    with pytest.raises(UsageError, match="cuda"):
        FaissStore(tmp_path, DIM, create=True, device="cuda")
    assert FaissStore(tmp_path, DIM, create=True, device="auto").on_gpu is False


@pytest.mark.gpu
@pytest.mark.skipif(gpu_count() == 0, reason="needs faiss-gpu and a CUDA GPU")
def test_gpu_build_and_search_match_the_cpu(tmp_path: Path, data: Data) -> None:
    vectors, queries, exact = data
    for kind, hnsw, ivfpq in (("flat", N, N), ("ivfpq", 0, 0)):
        folder = tmp_path / kind
        folder.mkdir()
        store = FaissStore(
            folder, DIM, create=True, hnsw_threshold=hnsw, ivfpq_threshold=ivfpq, device="cuda"
        )
        store.build(vectors)
        assert store.params()["device"] == "cuda"
        _, rows = store.search(queries, 10)
        assert recall_at_k(rows, exact) >= (1.0 if kind == "flat" else 0.98)
        store.save()
        cpu = FaissStore(folder, DIM, device="cpu")  # written in the CPU format
        _, cpu_rows = cpu.search(queries, 10)
        assert recall_at_k(cpu_rows, exact) >= (1.0 if kind == "flat" else 0.98)

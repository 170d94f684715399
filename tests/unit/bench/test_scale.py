"""bench.scale helpers: synthetic vectors, exact search, recall, one measured point."""

from __future__ import annotations

import numpy as np

from bench.scale import exact_top_k, measure_point, recall_at_k, synthetic_vectors


def test_synthetic_vectors_are_unit_deterministic_and_anisotropic() -> None:
    a = synthetic_vectors(500, 64, seed=1)
    assert a.shape == (500, 64) and a.dtype == np.float32
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(a, synthetic_vectors(500, 64, seed=1))
    assert not np.array_equal(a, synthetic_vectors(500, 64, seed=1, stream=2))
    spectrum = np.linalg.svd(a, compute_uv=False)
    assert spectrum[0] > 3 * spectrum[-1]  # not isotropic noise


def test_exact_top_k_in_blocks_matches_a_full_sort() -> None:
    x = synthetic_vectors(1000, 32, seed=2)
    q = synthetic_vectors(20, 32, seed=2, stream=2)
    full = np.argsort(-(q @ x.T), axis=1)[:, :10]
    assert np.array_equal(exact_top_k(x, q, 10, block=128), full)
    assert recall_at_k(full, full) == 1.0
    assert recall_at_k(full[:, ::-1], full) == 1.0  # order inside the top 10 does not count
    shifted = np.roll(full, 5, axis=1)
    shifted[:, :5] = -1
    assert recall_at_k(shifted, full) == 0.5


def test_one_point_reports_what_the_table_needs() -> None:
    r = measure_point(3000, "hnsw", queries=30, threads=1)
    assert r["kind"] == "hnsw" and r["params"]["kind"] == "hnsw" and r["n"] == 3000
    assert r["recall@10"] >= 0.98 and r["search_ms"]["p95"] >= r["search_ms"]["p50"] > 0
    assert r["index_mb"] > 0 and r["rss_mb"] > 0 and r["build_s"] > 0

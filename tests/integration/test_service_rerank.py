"""Reranking through the service: configured, failing to load, and the real cross-encoder."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

import app.state

SEARCH = "/v1/indexes/fixture/search"


class OverlapReranker:
    """A real (if simple) reranker: scores by shared words with the query.

    Stands in for ``smallmodels.reranker`` to exercise the service's plumbing; the test at the
    end of this file runs the real model when that module is present.
    """

    name = "word-overlap"
    top_n = 5

    def __init__(self) -> None:
        self.calls: list[int] = []

    def score(self, query: str, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(len(texts))
        words = set(query.lower().split())
        return np.array([len(words & set(t.lower().split())) for t in texts], dtype=np.float32)


@pytest.fixture
def overlap(monkeypatch: pytest.MonkeyPatch) -> OverlapReranker:
    reranker = OverlapReranker()
    monkeypatch.setattr(app.state, "load_reranker", lambda spec: reranker)
    return reranker


async def test_configured_reranker_reranks_candidates(
    service: Any, service_settings: Any, overlap: OverlapReranker
):
    settings = service_settings(reranker="overlap")
    async with service(settings) as client:
        ready = (await client.get("/health/ready")).json()
        assert ready["components"]["models"] == "ok"
        assert "reranker word-overlap" in ready["details"]["models"]
        overlap.calls.clear()
        query = {"query": "the knight jumps over pieces", "top_k": 2}
        ranked = (await client.post(SEARCH, json={**query, "rerank": True})).json()
        assert "rerank" in ranked["timings_ms"]
        assert overlap.calls == [5]  # the reranker's top_n candidates scored
        assert ranked["hits"][0]["metadata"]["id"] == "chess"
        scores = [h["score"] for h in ranked["hits"]]
        assert scores == sorted(scores, reverse=True) and scores[0] > 0  # reranker's z-scores
        # rerank omitted: on by default when a reranker is configured (and cached apart).
        default = (await client.post(SEARCH, json=query)).json()
        assert default["cached"] is True and default["hits"] == ranked["hits"]
        plain = (await client.post(SEARCH, json={**query, "rerank": False})).json()
        assert plain["cached"] is False and "rerank" not in plain["timings_ms"]
        assert len(overlap.calls) == 1


async def test_rerank_top_n_setting_overrides_the_reranker_own(
    service: Any, service_settings: Any, overlap: OverlapReranker
):
    async with service(service_settings(reranker="overlap", rerank_top_n=3)) as client:
        overlap.calls.clear()
        r = await client.post(SEARCH, json={"query": "knight pieces", "top_k": 2, "rerank": True})
        assert r.status_code == 200, r.text
        assert overlap.calls == [3]


async def test_reranker_that_fails_to_load(
    service: Any, service_settings: Any, monkeypatch: pytest.MonkeyPatch
):
    def broken(spec: str) -> Any:
        raise OSError(f"no weights for {spec}")

    monkeypatch.setattr(app.state, "load_reranker", broken)
    async with service(service_settings(reranker="missing-reranker")) as client:
        ready = await client.get("/health/ready")
        assert ready.status_code == 200 and ready.json()["status"] == "degraded"
        assert ready.json()["components"]["models"] == "down"
        assert "no weights" in ready.json()["details"]["models"]
        r = await client.post(SEARCH, json={"query": "knight", "rerank": True})
        assert r.status_code == 503 and r.json()["error"]["code"] == "unavailable"
        r = await client.post(SEARCH, json={"query": "knight"})
        assert r.status_code == 200 and "rerank" not in r.json()["timings_ms"]


REAL_SPEC = os.environ.get("TANDEM_TEST_RERANKER")


@pytest.fixture(scope="module")
def real_reranker(fixture_index: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A real cross-encoder: ``TANDEM_TEST_RERANKER``, else one trained here for a few steps
    from the fixture corpus alone (``tandem reranker train --corpus``'s code path)."""
    if REAL_SPEC:
        return REAL_SPEC
    from training.reranker import train_reranker

    out = tmp_path_factory.mktemp("reranker") / "fixture-reranker"
    train_reranker(
        out,
        corpus_index=fixture_index.name,
        data_dir=fixture_index.data_dir,
        steps=3,
        batch_groups=4,
        max_length=64,
        heldout=2,
        top_n=5,
        threads=1,
        progress=False,
        log=lambda _m: None,
    )
    return str(out)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "onnx-int8"])
async def test_real_reranker(
    service: Any, service_settings: Any, real_reranker: str, backend: str
) -> None:
    if backend.startswith("onnx"):
        pytest.importorskip("onnxruntime")
    from retrievers.rerank import rerank_order
    from smallmodels.reranker import CrossEncoderReranker

    spec = f"{real_reranker}@backend={backend}"
    model = CrossEncoderReranker(spec)
    query = "How do bakers make sourdough rise?"
    async with service(service_settings(reranker=spec)) as client:
        ready = (await client.get("/health/ready")).json()
        assert ready["components"]["models"] == "ok", ready
        plain = await client.post(SEARCH, json={"query": query, "top_k": 50, "rerank": False})
        assert plain.status_code == 200 and "rerank" not in plain.json()["timings_ms"]
        first_stage = plain.json()["hits"]
        r = await client.post(SEARCH, json={"query": query, "top_k": 3, "rerank": True})
        assert r.status_code == 200, r.text
        out = r.json()
        assert "rerank" in out["timings_ms"]
        scores = [h["score"] for h in out["hits"]]
        assert scores == sorted(scores, reverse=True)
    # The service's order is the model's own: its scores of the first stage's candidates, fused
    # with their ranks, computed here outside the service.
    expected = rerank_order(model, query, [h["text"] for h in first_stage])
    assert [h["chunk_id"] for h in out["hits"]] == [
        first_stage[i]["chunk_id"] for i, _ in expected[:3]
    ]
    assert scores == pytest.approx([score for _, score in expected[:3]], abs=1e-3)

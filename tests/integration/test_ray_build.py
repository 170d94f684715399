"""The Ray Data build is congruent with the local build (issue 18): same chunk ids, texts and
metadata, the same vectors within float tolerance, the same top-10 for a set of queries; it
reuses stored vectors, and a cancelled build publishes nothing. One local Ray instance with 2
CPUs serves the whole module (its start-up costs seconds), and is shut down after it."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.errors import MissingDependency
from indexers.builder import BuildCancelled, BuildOptions, run_build
from retrievers.retriever import Retriever
from stores.chunkstore import ChunkStore
from stores.layout import IndexLayout
from stores.snapshot import load_embeddings

ray = pytest.importorskip("ray", reason="the ray extra: pip install 'tandem[ray]'")

from indexers.ray_build import RayOptions, run_ray_build  # noqa: E402

CORPUS = Path(__file__).resolve().parents[2] / "examples" / "corpus"
QUERIES = [
    "How do honeybees tell each other where flowers are?",
    "When did Apollo 11 land on the Moon?",
    "how does a bicycle stay upright",
    "Who discovered penicillin?",
    "lighthouse keepers",
    "bread dough fermentation",
]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as mp:
        yield mp


@pytest.fixture(scope="module")
def ray_session(monkeypatch_module: pytest.MonkeyPatch) -> Iterator[None]:
    # Ray starts its workers niced (15): beside busy processes they would starve, and the test
    # with them; the local instance of a test runs them at normal priority.
    monkeypatch_module.setenv("RAY_worker_niceness", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return Path(shutil.copytree(CORPUS, tmp_path / "corpus"))


def _version(data_dir: Path, name: str) -> tuple[list[Any], np.ndarray, dict[str, Any]]:
    layout = IndexLayout(data_dir, name)
    folder = layout.version_dir(layout.require_current())
    store = ChunkStore(folder / "chunks.sqlite", readonly=True)
    try:
        chunks = store.all_chunks()
        held = store.held()
    finally:
        store.close()
    return [chunks, held], np.asarray(load_embeddings(folder)), layout.manifest()


def _assert_congruent(data_dir: Path, local: str, distributed: str) -> None:
    (chunks_a, held_a), vec_a, man_a = _version(data_dir, local)
    (chunks_b, held_b), vec_b, man_b = _version(data_dir, distributed)
    assert [(c.chunk_id, c.doc_id, c.text, c.metadata) for c in chunks_a] == [
        (c.chunk_id, c.doc_id, c.text, c.metadata) for c in chunks_b
    ]
    assert held_a == held_b
    assert vec_a.shape == vec_b.shape
    np.testing.assert_allclose(vec_a, vec_b, atol=1e-4)
    for key in ("counts", "chunking", "store", "bm25", "merged_files", "embedder"):
        assert man_a[key] == man_b[key], key
    assert man_b["engine"]["name"] == "ray"
    a, b = Retriever(data_dir, local), Retriever(data_dir, distributed)
    for q in QUERIES:
        hits_a = [h.chunk_id for h in a.search(q, top_k=10).hits]
        assert hits_a
        assert hits_a == [h.chunk_id for h in b.search(q, top_k=10).hits], q


def test_ray_build_is_congruent_with_the_local_build(
    ray_session: None, corpus: Path, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    local = run_build(data_dir, "local", [corpus])
    dist = run_ray_build(data_dir, "ray", [corpus], ray_options=RayOptions(workers=2))
    assert dist.duplicates > 0 and dist.chunks == local.chunks > 100
    assert {k: v for k, v in dist.as_dict().items() if k not in ("index", "seconds")} == {
        k: v for k, v in local.as_dict().items() if k not in ("index", "seconds")
    }
    _assert_congruent(data_dir, "local", "ray")

    # incremental: one file changed, one added, one gone; unchanged chunks keep their vectors
    (corpus / "science" / "extra.md").write_text(
        "# Tides\n\nThe Moon's gravity raises two tidal bulges on the oceans of the Earth.\n"
    )
    first = sorted(corpus.rglob("*.md"))[0]
    first.write_text(first.read_text() + "\n\nA sentence added in the second version.\n")
    sorted(corpus.rglob("*.txt"))[-1].unlink()
    local2 = run_build(data_dir, "local", [corpus])
    dist2 = run_ray_build(data_dir, "ray", [corpus], ray_options=RayOptions(workers=1))
    assert (dist2.embedded, dist2.reused, dist2.removed) == (
        local2.embedded,
        local2.reused,
        local2.removed,
    )
    assert 0 < dist2.embedded < 10 and dist2.reused > 100
    _assert_congruent(data_dir, "local", "ray")


def test_cancelled_ray_build_publishes_nothing(
    ray_session: None, corpus: Path, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    embedding: dict[str, bool] = {}

    def progress(p: dict[str, Any]) -> None:  # cancel once vectors are coming in
        if p.get("chunks_done"):
            embedding["started"] = True

    opts = BuildOptions(on_progress=progress, cancelled=lambda: bool(embedding))
    with pytest.raises(BuildCancelled):
        run_ray_build(data_dir, "c", [corpus], options=opts)
    layout = IndexLayout(data_dir, "c")
    assert layout.current_version() is None
    assert embedding and not list(layout.root.glob(".build-*"))


def test_missing_ray_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, corpus: Path, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(MissingDependency, match=r"tandem\[ray\]"):
        run_ray_build(tmp_path / "data", "m", [corpus])

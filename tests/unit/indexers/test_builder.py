from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from core.errors import UsageError
from indexers.builder import BuildOptions, run_build
from indexers.errors import SourceNotFound
from retrievers.retriever import Retriever
from smallmodels.embedder import load_embedder
from smallmodels.spec import resolve
from stores.errors import EmbedderMismatch, IndexNotFound
from stores.layout import IndexLayout
from stores.snapshot import IndexSnapshot, load_embeddings


def test_build_writes_a_complete_version(corpus: Path, data_dir: Path) -> None:
    res = run_build(data_dir, "t", [corpus])
    assert (res.version, res.documents, res.failed, res.reused) == (1, 7, 0, 0)
    assert res.embedded == res.chunks >= 7
    layout = IndexLayout(data_dir, "t")
    m = layout.manifest()
    assert m["version"] == 1 and m["counts"]["chunks"] == res.chunks
    assert m["embedder"]["fingerprint"] == load_embedder().fingerprint
    assert m["store"]["kind"] == "flat"
    assert {"faiss-cpu", "bm25s", "sentence-transformers"} <= set(m["libraries"])
    folder = layout.version_dir(1)
    assert {"manifest.json", "chunks.sqlite", "vectors.faiss", "embeddings.npy", "bm25"} <= {
        p.name for p in folder.iterdir()
    }
    vecs = load_embeddings(folder)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)


def test_chunks_stay_within_the_model_limit(tmp_path: Path, data_dir: Path) -> None:
    emb = load_embedder()
    sentences = [
        f"Sentence number {i} talks about the river delta and its many birds." for i in range(300)
    ]
    (tmp_path / "long.txt").write_text(" ".join(sentences))
    res = run_build(
        data_dir, "long", [tmp_path / "long.txt"], options=BuildOptions(chunk_tokens=64)
    )
    assert res.chunks > 10
    snap = IndexSnapshot.open(IndexLayout(data_dir, "long"))
    counts = emb.count_tokens([c.text for c in snap.chunks.all_chunks()])
    assert max(counts) <= 64
    # Chunks end on sentence boundaries.
    assert all(c.text.rstrip().endswith(".") for c in snap.chunks.all_chunks())
    snap.close()


def test_rebuild_reuses_vectors_and_reembeds_only_changes(corpus: Path, data_dir: Path) -> None:
    first = run_build(data_dir, "t", [corpus])
    again = run_build(data_dir, "t", [corpus])
    assert (again.version, again.embedded, again.reused) == (2, 0, first.chunks)
    (corpus / "bees.txt").write_text(
        "Bumblebees are larger and hairier than honeybees and can "
        "fly in colder weather, buzzing to shake pollen loose."
    )
    third = run_build(data_dir, "t", [corpus])
    assert third.embedded == 1 and third.reused == first.chunks - 1
    hits = Retriever(data_dir, "t").search("bumblebees cold weather", top_k=1).hits
    assert hits[0].doc_id == "bees.txt" and "Bumblebees" in hits[0].text
    # Only two versions are kept.
    assert IndexLayout(data_dir, "t").versions() == [2, 3]


def _all_sources(data_dir: Path, name: str) -> tuple[set[str], set[str], set[str]]:
    snap = IndexSnapshot.open(IndexLayout(data_dir, name))
    chunks = {c.doc_id for c in snap.chunks.all_chunks()}
    n = snap.vectors.count
    assert n == snap.chunks.count() == snap.bm25.n_docs
    docs = {d.doc_id for d in snap.chunks.documents()}
    bm25_rows = snap.bm25.search(["Gutenberg printing press"], 50)[0][0]
    bm25_docs = {c.doc_id for c in snap.chunks.get(bm25_rows)}
    snap.close()
    return chunks, docs, bm25_docs


def test_deleted_files_disappear_from_every_store(corpus: Path, data_dir: Path) -> None:
    run_build(data_dir, "t", [corpus])
    (corpus / "history" / "press.html").unlink()
    res = run_build(data_dir, "t", [corpus])
    assert res.removed == 1 and res.embedded == 0
    chunks, docs, bm25_docs = _all_sources(data_dir, "t")
    assert "history/press.html" not in chunks | docs | bm25_docs
    hits = Retriever(data_dir, "t").search("Gutenberg movable type", top_k=10, mode="dense").hits
    assert all(h.doc_id != "history/press.html" for h in hits)


def test_add_and_remove(corpus: Path, data_dir: Path, tmp_path: Path) -> None:
    run_build(data_dir, "t", [corpus / "bees.txt"])
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "nile.txt").write_text(
        "The Nile flows north through eleven countries into the "
        "Mediterranean Sea and is about 6,650 kilometres long."
    )
    added = run_build(data_dir, "t", [extra], "add")
    assert (added.documents, added.embedded, added.removed) == (2, 1, 0)
    removed = run_build(data_dir, "t", ["bees.txt"], "remove")
    assert (removed.documents, removed.removed, removed.embedded) == (1, 1, 0)
    chunks, _, _ = _all_sources(data_dir, "t")
    assert chunks == {"nile.txt"}
    with pytest.raises(SourceNotFound, match="no document"):  # 404 / exit 1, as in the API
        run_build(data_dir, "t", ["nope.txt"], "remove")


def test_unknown_index_and_embedder_mismatch(corpus: Path, data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(IndexNotFound):
        Retriever(data_dir, "missing")
    with pytest.raises(IndexNotFound):
        run_build(data_dir, "missing", [corpus], "add")
    run_build(data_dir, "t", [corpus / "bees.txt"])
    other = tmp_path / "other-minilm"
    shutil.copytree(resolve(None).path, other)
    with pytest.raises(EmbedderMismatch, match="built with"):
        run_build(data_dir, "t", [corpus], options=BuildOptions(model=str(other)))
    with pytest.raises(EmbedderMismatch):
        Retriever(data_dir, "t", embedder=load_embedder(str(other)))


def test_corrupt_pdf_counts_as_failed_and_build_goes_on(corpus: Path, data_dir: Path) -> None:
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4 garbage")
    res = run_build(data_dir, "t", [corpus])
    assert res.failed == 1 and res.documents == 7
    assert IndexLayout(data_dir, "t").manifest()["failed_files"][0]["source"] == "broken.pdf"


def test_store_options_come_from_the_build_options(corpus: Path, data_dir: Path) -> None:
    """The FAISS thresholds and device are arguments (the app fills them from its settings)."""
    opts = BuildOptions(hnsw_threshold=3, ivfpq_threshold=10_000, faiss_device="cpu")
    run_build(data_dir, "hnsw", [corpus], options=opts)
    store = IndexLayout(data_dir, "hnsw").manifest()["store"]
    assert (store["kind"], store["hnsw_threshold"], store["device"]) == ("hnsw", 3, "cpu")
    with pytest.raises(UsageError, match="FAISS device"):
        run_build(data_dir, "bad", [corpus], options=BuildOptions(faiss_device="tpu"))
    retriever = Retriever(data_dir, "hnsw", store_options={"device": "cpu", "url": None})
    assert retriever.snapshot.vectors.params()["device"] == "cpu"

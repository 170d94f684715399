"""A published index version opened for reading: manifest, chunks, vectors and BM25."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stores.base import VectorStore, open_store
from stores.bm25 import BM25Index
from stores.chunkstore import ChunkStore
from stores.layout import IndexLayout

EMBEDDINGS = "embeddings.npy"
#: The store options a published version takes when it is opened, per backend; the others (a
#: FAISS device for a Qdrant index, a Qdrant URL for a FAISS one) are ignored, so that one set
#: of options from the application serves every index.
OPEN_OPTIONS: dict[str, frozenset[str]] = {
    "faiss": frozenset({"device"}),
    "qdrant": frozenset({"url", "api_key", "hnsw_ef"}),
}


def load_embeddings(folder: Path, mmap: bool = True) -> np.ndarray:
    return np.load(folder / EMBEDDINGS, mmap_mode="r" if mmap else None)


@dataclass
class IndexSnapshot:
    name: str
    version: int
    folder: Path
    manifest: dict[str, Any]
    chunks: ChunkStore
    vectors: VectorStore
    bm25: BM25Index

    @classmethod
    def open(
        cls, layout: IndexLayout, version: int | None = None, **store_options: Any
    ) -> IndexSnapshot:
        version = layout.require_current() if version is None else version
        folder = layout.version_dir(version)
        manifest = layout.manifest(version)
        backend = manifest["store"]["backend"]
        wanted = OPEN_OPTIONS.get(backend, frozenset())
        options = {k: v for k, v in store_options.items() if k in wanted and v is not None}
        if backend == "qdrant" and manifest["store"].get("mode") == "server":
            options["collection"] = manifest["store"]["collection"]
        vectors = open_store(backend, folder, manifest["embedder"]["dimension"], **options)
        return cls(
            name=layout.name,
            version=version,
            folder=folder,
            manifest=manifest,
            chunks=ChunkStore(folder / "chunks.sqlite", readonly=True),
            vectors=vectors,
            bm25=BM25Index.load(folder),
        )

    @property
    def size(self) -> int:
        return int(self.manifest["counts"]["chunks"])

    def close(self) -> None:
        self.chunks.close()
        self.vectors.close()

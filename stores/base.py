"""The vector store protocol: one interface, a backend picked by name."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class VectorStore(Protocol):
    """Vectors of one index version; ids are chunk-store rows (0..n-1)."""

    backend: str

    def build(self, vectors: np.ndarray) -> None:
        """Index ``vectors`` (row i gets id i)."""

    def save(self) -> None:
        """Persist into the version folder given at construction."""

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` inner-product hits per query: ``(scores, rows)``, rows -1 when missing.

        ``allowed`` restricts the search to those rows (metadata filters).
        """

    def params(self) -> dict[str, Any]:
        """Parameters for the manifest."""

    def close(self) -> None: ...

    @property
    def count(self) -> int: ...


def open_store(
    backend: str, folder: Path, dimension: int, *, create: bool = False, **options: Any
) -> VectorStore:
    """The store called ``backend`` over ``folder`` (a version directory)."""
    if backend == "faiss":
        from stores.faiss_store import FaissStore

        return FaissStore(folder, dimension, create=create, **options)
    if backend == "qdrant":
        from stores.qdrant_store import QdrantStore

        return QdrantStore(folder, dimension, create=create, **options)
    from core.errors import UsageError

    raise UsageError(f"unknown store {backend!r}: choose faiss or qdrant")

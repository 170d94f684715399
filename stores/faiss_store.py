"""FAISS, the embedded default: exact inner product when small, HNSW beyond a threshold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faiss
import numpy as np

FILE = "vectors.faiss"
#: Up to this many vectors an exact (flat) index is used; beyond it HNSW.
DEFAULT_HNSW_THRESHOLD = 100_000


class FaissStore:
    backend = "faiss"

    def __init__(
        self,
        folder: Path,
        dimension: int,
        *,
        create: bool = False,
        hnsw_threshold: int = DEFAULT_HNSW_THRESHOLD,
        hnsw_m: int = 32,
        ef_construction: int = 200,
        ef_search: int = 128,
    ) -> None:
        self.folder = Path(folder)
        self.dimension = dimension
        self.hnsw_threshold = hnsw_threshold
        self.hnsw_m = hnsw_m
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self.kind = "flat"
        self.index: Any = None
        if not create:
            self.index = faiss.read_index(str(self.folder / FILE))
            if isinstance(self.index, faiss.IndexHNSW):
                self.kind = "hnsw"
                self.index.hnsw.efSearch = self.ef_search

    def build(self, vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if len(vectors) > self.hnsw_threshold:
            self.kind = "hnsw"
            index = faiss.IndexHNSWFlat(self.dimension, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.ef_construction
            index.hnsw.efSearch = self.ef_search
        else:
            self.kind = "flat"
            index = faiss.IndexFlatIP(self.dimension)
        if len(vectors):
            index.add(vectors)
        self.index = index

    def save(self) -> None:
        faiss.write_index(self.index, str(self.folder / FILE))

    @property
    def count(self) -> int:
        return int(self.index.ntotal) if self.index is not None else 0

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim == 1:
            queries = queries[None, :]
        k = max(1, min(k, self.count)) if self.count else 1
        if self.count == 0 or (allowed is not None and len(allowed) == 0):
            empty = np.full((len(queries), k), -1, dtype=np.int64)
            return np.zeros((len(queries), k), dtype=np.float32), empty
        params = None
        if allowed is not None:
            selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
            if self.kind == "hnsw":
                params = faiss.SearchParametersHNSW(sel=selector, efSearch=max(self.ef_search, k))
            else:
                params = faiss.SearchParameters(sel=selector)
        elif self.kind == "hnsw" and k > self.ef_search:
            params = faiss.SearchParametersHNSW(efSearch=k)
        scores, rows = self.index.search(queries, k, params=params)
        return scores, rows

    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = {"backend": "faiss", "kind": self.kind, "metric": "inner_product"}
        if self.kind == "hnsw":
            out |= {
                "M": self.hnsw_m,
                "efConstruction": self.ef_construction,
                "efSearch": self.ef_search,
            }
        out["hnsw_threshold"] = self.hnsw_threshold
        return out

    def close(self) -> None:
        self.index = None

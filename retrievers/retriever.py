"""One retrieval pipeline: dense, BM25 and hybrid search, filters, reranking, timings.

The same object serves the CLI, the benchmarks and the HTTP service. ``refresh()`` swaps in a
newly published index version without interrupting searches in flight.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from core.errors import UsageError
from retrievers.errors import RerankerUnavailable, UnknownFilterField
from retrievers.fusion import RRF_K, convex, rrf
from smallmodels.embedder import SentenceTransformerEmbedder, load_embedder
from stores.chunkstore import normalise_filters
from stores.errors import EmbedderMismatch
from stores.layout import IndexLayout
from stores.snapshot import IndexSnapshot

MODES = ("hybrid", "dense", "bm25")
DEFAULT_CANDIDATES = 50
FUSIONS = ("convex", "rrf")
#: Hybrid fusion by default: a convex combination of min-max normalised BM25 and dense scores,
#: with the dense side weighted 0.4. Plain reciprocal rank fusion (k = 60) is available as
#: ``fusion="rrf"``; with a small dense model it falls below BM25 alone on question sets that
#: share words with their passages (see BENCHMARKS.md), score fusion does not.
DEFAULT_FUSION = "convex"
DEFAULT_DENSE_WEIGHT = 0.4
DEFAULT_WEIGHTS = (1.0, 1.0)


class Reranker(Protocol):
    name: str

    def score(self, query: str, texts: Sequence[str]) -> np.ndarray: ...


@dataclass
class Hit:
    rank: int
    score: float
    text: str
    source: str
    doc_id: str
    chunk_id: str
    metadata: dict[str, Any]
    row: int = field(default=-1, repr=False)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("row")
        return out


@dataclass
class SearchResult:
    index: str
    version: int
    hits: list[Hit]
    timings_ms: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "version": self.version,
            "hits": [h.as_dict() for h in self.hits],
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
        }


class Retriever:
    """Searches the current version of one index."""

    def __init__(
        self,
        data_dir: str | Path,
        name: str,
        *,
        embedder: SentenceTransformerEmbedder | None = None,
        reranker: Reranker | None = None,
        fusion: str = DEFAULT_FUSION,
        dense_weight: float = DEFAULT_DENSE_WEIGHT,
        rrf_k: int = RRF_K,
        weights: tuple[float, float] = DEFAULT_WEIGHTS,
        candidates: int = DEFAULT_CANDIDATES,
        store_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.layout = IndexLayout(data_dir, name)
        self.name = name
        self.reranker = reranker
        if fusion not in FUSIONS:
            raise UsageError(f"unknown fusion {fusion!r}: choose convex or rrf")
        if not 0.0 <= dense_weight <= 1.0:
            raise UsageError("dense_weight must be between 0 and 1")
        self.fusion = fusion
        self.dense_weight = dense_weight
        self.rrf_k = rrf_k
        self.weights = weights
        self.candidates = candidates
        self.store_options = dict(store_options or {})
        self._lock = threading.Lock()
        self.snapshot = IndexSnapshot.open(self.layout, **self.store_options)
        self.embedder = embedder or load_embedder(self.snapshot.manifest["embedder"]["spec"])
        self._check_embedder(self.snapshot)

    # -- versions --------------------------------------------------------------------------
    @property
    def version(self) -> int:
        return self.snapshot.version

    def _check_embedder(self, snap: IndexSnapshot) -> None:
        expected = snap.manifest["embedder"]["fingerprint"]
        if expected != self.embedder.fingerprint:
            raise EmbedderMismatch(
                f"index {self.name!r} was built with {snap.manifest['embedder']['spec']!r} "
                f"({expected}); the query embedder is {self.embedder.fingerprint}"
            )

    def refresh(self) -> bool:
        """Open a newly published version if there is one; True when it switched."""
        current = self.layout.current_version()
        if current is None or current == self.snapshot.version:
            return False
        with self._lock:
            if current == self.snapshot.version:
                return False
            snap = IndexSnapshot.open(self.layout, current, **self.store_options)
            if snap.manifest["embedder"]["fingerprint"] != self.embedder.fingerprint:
                self.embedder = load_embedder(snap.manifest["embedder"]["spec"])
            old, self.snapshot = self.snapshot, snap
        # Searches in flight keep a reference to the old snapshot; SQLite/FAISS objects are
        # released when the last reference goes. Close the chunk store lazily.
        _close_later(old)
        return True

    def close(self) -> None:
        self.snapshot.close()

    # -- search ----------------------------------------------------------------------------
    def embed_queries(self, queries: Sequence[str]) -> np.ndarray:
        return self.embedder.encode(list(queries), batch_size=64)

    def search(
        self,
        query: str,
        top_k: int = 10,
        mode: str = "hybrid",
        filters: Mapping[str, Any] | None = None,
        rerank: bool | None = None,
        query_vector: np.ndarray | None = None,
        candidates: int | None = None,
    ) -> SearchResult:
        return self.search_many(
            [query],
            top_k,
            mode,
            filters,
            rerank,
            None if query_vector is None else query_vector[None, :],
            candidates,
        )[0]

    def search_many(
        self,
        queries: Sequence[str],
        top_k: int = 10,
        mode: str = "hybrid",
        filters: Mapping[str, Any] | None = None,
        rerank: bool | None = None,
        query_vectors: np.ndarray | None = None,
        candidates: int | None = None,
    ) -> list[SearchResult]:
        """Search several queries at once (one model call for all of their embeddings)."""
        if mode not in MODES:
            raise UsageError(f"unknown mode {mode!r}: choose hybrid, dense or bm25")
        if top_k < 1:
            raise UsageError("top_k must be at least 1")
        use_rerank = bool(rerank) if rerank is not None else self.reranker is not None
        if rerank and self.reranker is None:
            raise RerankerUnavailable("reranking was requested but no reranker is configured")
        snap = self.snapshot
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        allowed = None
        pushed: dict[str, list[str]] | None = None
        if filters:
            norm = normalise_filters(filters)
            check_filter_fields(snap, norm)
            pushed = norm if _store_filters(snap, norm) else None
            if pushed is None or mode != "dense":  # BM25 (and stores without filters) need rows
                allowed = snap.chunks.rows_matching(norm)
            timings["filter"] = (time.perf_counter() - t0) * 1000
        depth = max(candidates or self.candidates, top_k)

        dense: list[tuple[np.ndarray, np.ndarray]] = []
        if mode in ("dense", "hybrid"):
            t = time.perf_counter()
            vecs = query_vectors if query_vectors is not None else self.embed_queries(queries)
            timings["embed"] = (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            if pushed is not None:  # the store applies the filters itself (Qdrant)
                store: Any = snap.vectors
                scores, rows = store.search(vecs, depth, None, filters=pushed)
            else:
                scores, rows = snap.vectors.search(vecs, depth, allowed)
            dense = [(r, s) for r, s in zip(rows, scores, strict=True)]
            timings["dense"] = (time.perf_counter() - t) * 1000
        sparse: list[tuple[np.ndarray, np.ndarray]] = []
        if mode in ("bm25", "hybrid"):
            t = time.perf_counter()
            sparse = snap.bm25.search(list(queries), depth, allowed)
            timings["bm25"] = (time.perf_counter() - t) * 1000

        t = time.perf_counter()
        ranked: list[list[tuple[int, float]]] = []
        for qi in range(len(queries)):
            if mode == "dense":
                rows, scores = dense[qi]
                ranked.append(
                    [(int(r), float(s)) for r, s in zip(rows, scores, strict=True) if r >= 0]
                )
            elif mode == "bm25":
                rows, scores = sparse[qi]
                ranked.append([(int(r), float(s)) for r, s in zip(rows, scores, strict=True)])
            else:
                ranked.append(self._fuse(sparse[qi], dense[qi]))
        if mode == "hybrid":
            timings["fusion"] = (time.perf_counter() - t) * 1000

        results = []
        per_query = {k: v / len(queries) for k, v in timings.items()}
        for qi, query in enumerate(queries):
            qt = dict(per_query)
            cand = ranked[qi][:depth]
            if use_rerank and self.reranker is not None and cand:
                t = time.perf_counter()
                cand = self._rerank(snap, query, cand)
                qt["rerank"] = (time.perf_counter() - t) * 1000
            cand = cand[:top_k]
            t = time.perf_counter()
            records = prefer_newest(snap.chunks.get([r for r, _ in cand]))
            hits = [
                Hit(
                    rank=i + 1,
                    score=round(score, 6),
                    text=c.text,
                    source=c.source,
                    doc_id=c.doc_id,
                    chunk_id=c.chunk_id,
                    metadata=c.metadata,
                    row=c.row,
                )
                for i, (c, (_, score)) in enumerate(zip(records, cand, strict=True))
            ]
            qt["fetch"] = (time.perf_counter() - t) * 1000
            qt["total"] = sum(qt.values())
            results.append(SearchResult(self.name, snap.version, hits, qt))
        return results

    def _fuse(
        self, sparse: tuple[np.ndarray, np.ndarray], dense: tuple[np.ndarray, np.ndarray]
    ) -> list[tuple[int, float]]:
        if self.fusion == "rrf":
            return rrf([sparse[0], dense[0]], self.rrf_k, self.weights)
        w = self.dense_weight
        return convex([sparse, dense], [1.0 - w, w])

    def _rerank(
        self, snap: IndexSnapshot, query: str, cand: list[tuple[int, float]]
    ) -> list[tuple[int, float]]:
        """Cross-encoder scores of the top N fused with the first-stage rank (retrievers.rerank)."""
        from retrievers.rerank import rerank_order

        assert self.reranker is not None
        records = snap.chunks.get([r for r, _ in cand])
        order = rerank_order(self.reranker, query, [c.text for c in records])
        return [(records[i].row, score) for i, score in order]


def check_filter_fields(snap: IndexSnapshot, filters: Mapping[str, Sequence[str]]) -> None:
    """:class:`UnknownFilterField` when a filter names a field no chunk of the index has."""
    keys = snap.chunks.metadata_keys()
    missing = sorted(k for k in filters if k not in keys)
    if missing:
        known = ", ".join(sorted(keys - {"content_hash"})[:20])
        raise UnknownFilterField(
            f"no document in index {snap.name!r} has the field "
            f"{', '.join(repr(m) for m in missing)} (fields: {known})"
        )


def prefer_newest(records: list[Any]) -> list[Any]:
    """Versions of one passage (chunks sharing ``metadata["version_group"]``, set by the
    builder's curation) in newest-first order at the ranks the group holds."""
    groups: dict[str, list[int]] = {}
    for i, c in enumerate(records):
        g = c.metadata.get("version_group")
        if g:
            groups.setdefault(g, []).append(i)
    out = list(records)
    for positions in groups.values():
        if len(positions) > 1:
            members = sorted(
                (records[i] for i in positions),
                key=lambda c: str(c.metadata.get("modified") or ""),
                reverse=True,
            )
            for pos, c in zip(positions, members, strict=True):
                out[pos] = c
    return out


def _store_filters(snap: IndexSnapshot, filters: Mapping[str, Sequence[str]]) -> bool:
    """True when the vector store can apply ``filters`` itself (Qdrant's payload filters)."""
    supports = getattr(snap.vectors, "supports_filters", None)
    return bool(callable(supports) and supports(filters))


def _close_later(snapshot: IndexSnapshot) -> None:
    def close() -> None:
        time.sleep(30)
        snapshot.close()

    threading.Thread(target=close, daemon=True).start()

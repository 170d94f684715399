"""Offline index builds: load, curate, chunk, embed, write a version, publish it atomically.

``build`` mirrors the given paths into a new version, ``add`` adds or replaces documents and
keeps the others, ``remove`` drops documents by source. Chunks whose text is unchanged reuse
their stored vectors; only new or changed text is embedded.

Builds are pipelined: a reader thread loads files while the calling thread chunks them, and a
:class:`indexers.encode.BackgroundEncoder` embeds new chunk texts as soon as a slice of them
exists, so reading, chunking, curation and encoding overlap. The result is the same as doing
them one after the other (near-duplicates dropped by curation may have been encoded for
nothing; their vectors are not used).
"""

from __future__ import annotations

import copy
import logging
import queue
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import UsageError
from indexers.chunker import DEFAULT_OVERLAP_TOKENS, Chunker
from indexers.curate import CurationReport, document_problem, duplicate_mask
from indexers.documents import SourceDocument, text_hash
from indexers.encode import BackgroundEncoder
from indexers.loaders import iter_files, load_file
from indexers.versions import library_versions
from smallmodels.embedder import SentenceTransformerEmbedder, load_embedder
from stores.base import open_store
from stores.bm25 import BM25Index
from stores.chunkstore import ChunkRecord, ChunkStore, DocumentRecord
from stores.errors import EmbedderMismatch, IndexNotFound
from stores.layout import IndexLayout
from stores.snapshot import EMBEDDINGS, load_embeddings

log = logging.getLogger(__name__)

ProgressFn = Callable[[dict[str, Any]], None]


class BuildCancelled(Exception):
    """Raised inside a build when its ``cancelled`` callback says so."""


@dataclass
class BuildOptions:
    store: str | None = None
    """``faiss`` or ``qdrant``; default: the index's current store, else ``faiss``."""
    model: str | None = None
    """Embedder spec; default: the index's own embedder, else the packaged MiniLM."""
    chunk_tokens: int | None = None
    overlap_tokens: int = DEFAULT_OVERLAP_TOKENS
    text_field: str = "text"
    dedup: bool = True
    batch_size: int = 64
    qdrant_url: str | None = None
    """Qdrant server of a ``qdrant`` index; None: local mode (inside the version folder)."""
    qdrant_api_key: str | None = None
    qdrant_shards: int | None = None
    """Shards of a new server-mode Qdrant collection; None: the server's default."""
    qdrant_replicas: int | None = None
    """Replication factor of a new server-mode Qdrant collection; None: the server's default."""
    hnsw_threshold: int | None = None
    """FAISS: vectors up to which the index is exact (flat); None: the store's default."""
    ivfpq_threshold: int | None = None
    """FAISS: vectors beyond which IVF-PQ replaces HNSW; None: the store's default."""
    faiss_device: str | None = None
    """FAISS: ``auto``, ``cpu`` or ``cuda``; None: ``auto``."""
    show_progress: bool = False
    on_progress: ProgressFn | None = None
    cancelled: Callable[[], bool] | None = None
    device: str = "cpu"


@dataclass
class BuildResult:
    index: str
    version: int
    documents: int
    chunks: int
    embedded: int
    reused: int
    removed: int
    duplicates: int
    failed: int
    seconds: float
    failed_files: list[tuple[str, str]] = field(default_factory=list)
    curation: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "version": self.version,
            "documents": self.documents,
            "chunks": self.chunks,
            "embedded": self.embedded,
            "reused": self.reused,
            "removed": self.removed,
            "duplicates": self.duplicates,
            "failed": self.failed,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class _Previous:
    manifest: dict[str, Any]
    documents: dict[str, DocumentRecord]
    chunks_by_doc: dict[str, list[ChunkRecord]]
    vectors_by_hash: dict[str, np.ndarray]


def _load_previous(layout: IndexLayout) -> _Previous | None:
    version = layout.current_version()
    if version is None:
        return None
    folder = layout.version_dir(version)
    store = ChunkStore(folder / "chunks.sqlite", readonly=True)
    try:
        chunks = store.all_chunks()
        docs = {d.doc_id: d for d in store.documents()}
    finally:
        store.close()
    vectors = load_embeddings(folder)
    by_doc: dict[str, list[ChunkRecord]] = {}
    by_hash: dict[str, np.ndarray] = {}
    for c in chunks:
        by_doc.setdefault(c.doc_id, []).append(c)
        by_hash.setdefault(c.text_hash, vectors[c.row])
    return _Previous(layout.manifest(version), docs, by_doc, by_hash)


def resolve_embedder(
    layout: IndexLayout, model: str | None, device: str = "cpu"
) -> SentenceTransformerEmbedder:
    """The embedder for ``layout``: the given spec, checked against the index's own."""
    manifest = layout.manifest() if layout.exists() else None
    spec = model or (manifest["embedder"]["spec"] if manifest else None)
    embedder = load_embedder(spec, device=device)
    if manifest and manifest["embedder"]["fingerprint"] != embedder.fingerprint:
        raise EmbedderMismatch(
            f"index {layout.name!r} was built with embedder {manifest['embedder']['spec']!r} "
            f"({manifest['embedder']['fingerprint']}), not {embedder.spec!r} "
            f"({embedder.fingerprint}); use the same model or build a new index"
        )
    return embedder


def _matches(doc: DocumentRecord, names: Sequence[str]) -> bool:
    for name in names:
        n = name.strip("/")
        if doc.doc_id == n or doc.source == n or doc.source.startswith(n + "/"):
            return True
    return False


def run_build(
    data_dir: str | Path,
    name: str,
    paths: Sequence[str | Path],
    action: str = "build",
    options: BuildOptions | None = None,
) -> BuildResult:
    """Build, add to or remove from index ``name``; publishes a new version."""
    opts = options or BuildOptions()
    if action not in ("build", "add", "remove"):
        raise UsageError(f"unknown action {action!r}: build, add or remove")
    layout = IndexLayout(data_dir, name)
    if action != "build" and not layout.exists():
        raise IndexNotFound(f"index {name!r} not found in {layout.data_dir}")
    if not paths:
        raise UsageError("give at least one path" if action != "remove" else "give a source")
    started = time.perf_counter()
    timings: dict[str, float] = {}
    with layout.lock():
        embedder = resolve_embedder(layout, opts.model, opts.device)
        previous = _load_previous(layout)
        prev_store = previous.manifest["store"]["backend"] if previous else None
        store_name = opts.store or prev_store or "faiss"

        # The chunker gets its own tokenizer: the background encoder tokenizes with the
        # embedder's at the same time, and a fast tokenizer is not safe across threads.
        chunk_tokenizer = copy.deepcopy(embedder.tokenizer)
        chunker = Chunker(
            lambda s: chunk_tokenizer.encode(s, add_special_tokens=False),
            embedder.max_seq_length,
            opts.chunk_tokens
            or (
                previous.manifest["chunking"]["chunk_tokens"]
                if previous and opts.chunk_tokens is None
                else None
            ),
            opts.overlap_tokens,
        )
        same_chunking = bool(
            previous
            and previous.manifest["chunking"]["chunk_tokens"] == chunker.chunk_tokens
            and previous.manifest["chunking"]["overlap_tokens"] == chunker.overlap_tokens
        )

        # -- read, chunk and (in the background) embed the new document set ------------------
        failed: list[tuple[str, str]] = []
        removed_names: list[str] = []
        curation = CurationReport()
        loaded_docs: list[DocumentRecord] = []
        loaded_chunks: list[list[ChunkRecord]] = []
        new_ids: set[str] = set()
        encoder: BackgroundEncoder | None = None
        if action == "remove":
            removed_names = [str(p) for p in paths]
        else:
            _check_paths(paths)
            encoder = _start_encoder(embedder, opts)
        try:
            t0 = time.perf_counter()
            if encoder is not None:
                reader = _Reader(paths, opts.text_field)
                chunk_s = 0.0
                for doc in reader:
                    if opts.cancelled and opts.cancelled():
                        raise BuildCancelled(f"build of {name!r} cancelled")
                    t1 = time.perf_counter()
                    new_ids.add(doc.doc_id)
                    problem = document_problem(doc.text)
                    if problem:
                        setattr(curation, problem, getattr(curation, problem) + 1)
                        curation.dropped_documents.append(doc.doc_id)
                        chunk_s += time.perf_counter() - t1
                        continue
                    rec = DocumentRecord(
                        doc.doc_id, doc.source, doc.title, doc.mtime, doc.content_hash, doc.metadata
                    )
                    old = previous.documents.get(doc.doc_id) if previous else None
                    if (
                        previous
                        and old
                        and same_chunking
                        and old.content_hash == rec.content_hash
                        and old.metadata == rec.metadata
                        and old.title == rec.title
                    ):
                        chunks = previous.chunks_by_doc.get(doc.doc_id, [])
                    else:
                        chunks = _chunk_document(chunker, doc)
                    for c in chunks:
                        if not (previous and c.text_hash in previous.vectors_by_hash):
                            encoder.submit(c.text_hash, c.text)
                    loaded_docs.append(rec)
                    loaded_chunks.append(chunks)
                    chunk_s += time.perf_counter() - t1
                encoder.end_input()
                failed = reader.failed
                timings["load_s"] = reader.busy_s
                timings["chunk_s"] = chunk_s
                timings["read_chunk_wall_s"] = time.perf_counter() - t0
            _notify(
                opts,
                documents=len(new_ids),
                chunks_total=encoder.submitted if encoder else 0,
                chunks_done=encoder.encoded if encoder else 0,
            )

            # -- the new document set: kept previous documents first, then the loaded ones -----
            docs: list[DocumentRecord] = []
            doc_chunks: list[list[ChunkRecord]] = []
            if previous and action in ("add", "remove"):
                for doc_id, rec in previous.documents.items():
                    if doc_id in new_ids or (action == "remove" and _matches(rec, removed_names)):
                        continue
                    docs.append(rec)
                    doc_chunks.append(previous.chunks_by_doc.get(doc_id, []))
            if action == "remove":
                matched = [
                    n
                    for n in removed_names
                    if previous and any(_matches(r, [n]) for r in previous.documents.values())
                ]
                if not matched:
                    raise UsageError(
                        f"no document in index {name!r} matches {', '.join(removed_names)}"
                    )
            docs.extend(loaded_docs)
            doc_chunks.extend(loaded_chunks)

            # -- curation over chunks ---------------------------------------------------------
            t0 = time.perf_counter()
            flat = [c for cs in doc_chunks for c in cs]
            owners = [i for i, cs in enumerate(doc_chunks) for _ in cs]
            if opts.dedup and flat:
                keep, exact, near = duplicate_mask([c.text for c in flat])
                curation.exact_duplicates, curation.near_duplicates = exact, near
            else:
                keep = np.ones(len(flat), dtype=bool)
            kept = [c for c, k in zip(flat, keep, strict=True) if k]
            counts: dict[int, int] = {}
            for o, k in zip(owners, keep, strict=True):
                counts[o] = counts.get(o, 0) + int(k)
            final_docs = []
            for i, d in enumerate(docs):
                d.chunk_count = counts.get(i, 0)
                if d.chunk_count:
                    final_docs.append(d)
            timings["curate_s"] = time.perf_counter() - t0

            # -- vectors: reuse what did not change, embed the rest -------------------------------
            # The staging folder exists from here on: a build killed now leaves only it behind,
            # never a published version; the next build clears it.
            version = layout.next_version()
            staging = layout.staging_dir(version)
            try:
                return _embed_write_publish(
                    layout,
                    opts,
                    embedder,
                    previous,
                    store_name,
                    chunker,
                    curation,
                    final_docs,
                    kept,
                    failed,
                    action,
                    version,
                    staging,
                    started,
                    timings,
                    encoder,
                )
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
        finally:
            if encoder is not None:
                encoder.close()


def _embed_write_publish(
    layout: IndexLayout,
    opts: BuildOptions,
    embedder: SentenceTransformerEmbedder,
    previous: _Previous | None,
    store_name: str,
    chunker: Chunker,
    curation: CurationReport,
    final_docs: list[DocumentRecord],
    kept: list[ChunkRecord],
    failed: list[tuple[str, str]],
    action: str,
    version: int,
    staging: Path,
    started: float,
    timings: dict[str, float],
    encoder: BackgroundEncoder | None = None,
) -> BuildResult:
    name = layout.name
    dim = embedder.dimension
    vectors = np.zeros((len(kept), dim), dtype=np.float32)
    todo: list[int] = []
    for i, c in enumerate(kept):
        vec = previous.vectors_by_hash.get(c.text_hash) if previous else None
        if vec is not None:
            vectors[i] = vec
        else:
            todo.append(i)
    reused = len(kept) - len(todo)
    _notify(opts, documents=len(final_docs), chunks_total=len(todo), chunks_done=0)

    # -- what needs no vectors is written while the encoder finishes ----------------------
    t0 = time.perf_counter()
    store = ChunkStore(staging / "chunks.sqlite")
    store.write(final_docs, kept)
    store.close()
    BM25Index.build([c.text for c in kept]).save(staging)
    write_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    if todo:
        if encoder is None:  # every new text was submitted while chunking
            raise RuntimeError("new chunks to embed but no encoder")
        if opts.cancelled and opts.cancelled():
            raise BuildCancelled(f"build of {name!r} cancelled")
        keys = [kept[i].text_hash for i in todo]
        _notify(
            opts,
            documents=len(final_docs),
            chunks_total=len(todo),
            chunks_done=sum(encoder.has(k) for k in keys),
        )
        try:
            vectors[todo] = encoder.vectors(keys)
        except RuntimeError:
            if opts.cancelled and opts.cancelled():
                raise BuildCancelled(f"build of {name!r} cancelled") from None
            raise
    timings["embed_wait_s"] = time.perf_counter() - t0
    timings["embed_s"] = encoder.busy_s if encoder is not None else 0.0
    if opts.cancelled and opts.cancelled():
        raise BuildCancelled(f"build of {name!r} cancelled")

    # -- vectors: write them, build the vector store and publish ---------------------------
    t0 = time.perf_counter()
    np.save(staging / EMBEDDINGS, vectors)
    store_opts: dict[str, Any] = {}
    if store_name == "faiss" and opts.hnsw_threshold is not None:
        store_opts["hnsw_threshold"] = opts.hnsw_threshold
    if store_name == "faiss" and opts.ivfpq_threshold is not None:
        store_opts["ivfpq_threshold"] = opts.ivfpq_threshold
    if store_name == "faiss" and opts.faiss_device is not None:
        store_opts["device"] = opts.faiss_device
    if store_name == "qdrant":
        store_opts["url"] = opts.qdrant_url
        store_opts["api_key"] = opts.qdrant_api_key
        store_opts["shard_number"] = opts.qdrant_shards
        store_opts["replication_factor"] = opts.qdrant_replicas
        if opts.qdrant_url:
            store_opts["collection"] = f"tandem-{name}-v{version}"
        store_opts["payloads"] = [
            {"row": i, "doc_id": c.doc_id, "source": c.source, **_payload(c.metadata)}
            for i, c in enumerate(kept)
        ]
    vstore = open_store(store_name, staging, dim, create=True, **store_opts)
    vstore.build(vectors)
    vstore.save()
    store_params = vstore.params()
    vstore.close()
    timings["write_s"] = write_s + time.perf_counter() - t0
    if opts.cancelled and opts.cancelled():
        raise BuildCancelled(f"build of {name!r} cancelled")

    prev_ids = set(previous.documents) if previous else set()
    removed = len(prev_ids - {d.doc_id for d in final_docs})
    seconds = time.perf_counter() - started
    result = BuildResult(
        index=name,
        version=version,
        documents=len(final_docs),
        chunks=len(kept),
        embedded=len(todo),
        reused=reused,
        removed=removed,
        duplicates=curation.duplicates,
        failed=len(failed),
        seconds=seconds,
        failed_files=failed,
        curation=curation.as_dict(),
        timings=timings,
    )
    manifest = {
        "name": name,
        "version": version,
        "action": action,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "embedder": {
            "spec": embedder.spec,
            "name": embedder.name,
            "fingerprint": embedder.fingerprint,
            "dimension": dim,
            "max_seq_length": embedder.max_seq_length,
        },
        "store": store_params,
        "bm25": BM25Index().params(),
        "chunking": {
            "chunk_tokens": chunker.chunk_tokens,
            "overlap_tokens": chunker.overlap_tokens,
            "splitter": "llama-index SentenceSplitter + model tokenizer",
        },
        "counts": {
            "documents": len(final_docs),
            "chunks": len(kept),
            "embedded": len(todo),
            "reused": reused,
            "removed": removed,
            "duplicates": curation.duplicates,
            "failed": len(failed),
            **curation.as_dict(),
        },
        "failed_files": [{"source": s, "reason": r} for s, r in failed],
        "libraries": library_versions(),
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "seconds": round(seconds, 3),
    }
    layout.publish(staging, version, manifest)
    if store_name == "qdrant" and opts.qdrant_url:
        from stores.qdrant_store import switch_alias

        switch_alias(opts.qdrant_url, opts.qdrant_api_key, name, version)
    _notify(opts, documents=len(final_docs), chunks_total=len(todo), chunks_done=len(todo))
    log.info("published %s v%d: %s", name, version, result.as_dict())
    return result


def _check_paths(paths: Sequence[str | Path]) -> None:
    """Missing paths are a :class:`UsageError` before anything is read."""
    for p in paths:
        if not Path(p).exists():
            raise UsageError(f"path not found: {p}")


class _Reader:
    """Documents of ``paths`` read by a background thread, in file order (``load_paths`` as a
    stream): files that fail to parse are skipped and listed in ``failed``."""

    def __init__(self, paths: Sequence[str | Path], text_field: str, prefetch: int = 64) -> None:
        self.failed: list[tuple[str, str]] = []
        self.busy_s = 0.0
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=prefetch)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._read, args=([Path(p) for p in paths], text_field), daemon=True
        )
        self._thread.start()

    def _read(self, paths: list[Path], text_field: str) -> None:
        try:
            for p in paths:
                for file, root in iter_files(p):
                    if self._stop.is_set():
                        return
                    t = time.perf_counter()
                    try:
                        docs = load_file(file, root, text_field)
                    except Exception as exc:  # noqa: BLE001 - any parser failure skips the file
                        reason = re.sub(r"\s+", " ", str(exc))[:200] or type(exc).__name__
                        source = file.relative_to(root).as_posix()
                        log.warning("skipped %s: %s", source, reason)
                        self.failed.append((source, reason))
                        docs = []
                    self.busy_s += time.perf_counter() - t
                    for doc in docs:
                        self._put(doc)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            self._put(exc)
        finally:
            self._put(None)

    def _put(self, item: Any) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def __iter__(self) -> Iterator[SourceDocument]:
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self._stop.set()
            self._thread.join(timeout=10)


def _start_encoder(embedder: SentenceTransformerEmbedder, opts: BuildOptions) -> BackgroundEncoder:
    """The build's background encoder, reporting progress as it goes."""
    bar = None
    if opts.show_progress:
        from tqdm import tqdm

        bar = tqdm(total=0, unit="chunk", desc="embedding", leave=False)

    def progress(done: int, submitted: int) -> None:
        if bar is not None:
            bar.total = submitted
            bar.n = done
            bar.refresh()
            if done >= submitted:
                bar.close()
        _notify(opts, chunks_total=submitted, chunks_done=done)

    return BackgroundEncoder(
        embedder, opts.batch_size, cancelled=opts.cancelled, on_progress=progress
    )


def _payload(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in meta.items() if isinstance(v, str | int | float | bool)}


def _chunk_document(chunker: Chunker, doc: SourceDocument) -> list[ChunkRecord]:
    meta = {"title": doc.title, **doc.metadata}
    if doc.mtime is not None:
        meta["modified"] = datetime.fromtimestamp(doc.mtime, UTC).isoformat(timespec="seconds")
    meta["content_hash"] = doc.content_hash
    return [
        ChunkRecord(
            chunk_id=f"{doc.doc_id}::{i}",
            doc_id=doc.doc_id,
            source=doc.source,
            position=i,
            text=text,
            text_hash=text_hash(text),
            metadata=meta,
        )
        for i, text in enumerate(chunker.split(doc.text))
    ]


def _notify(opts: BuildOptions, **progress: Any) -> None:
    if opts.on_progress is not None:
        opts.on_progress(progress)

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
from indexers.curate import CurationReport, document_problem, duplicate_groups
from indexers.documents import Problem, SourceDocument, text_hash
from indexers.encode import SLICE, BackgroundEncoder
from indexers.errors import EmptyBuild, SourceNotFound, StrictBuildFailed
from indexers.loaders import check_paths, iter_files, load_one, root_for
from indexers.structure import Section
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
    strict: bool = False
    """Fail the build (publish nothing) when any file failed or was skipped."""
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
    problems: list[Problem] = field(default_factory=list)
    pages: int = 0
    """PDF pages read in this build."""

    def files(self, kind: str) -> list[dict[str, Any]]:
        return [p.as_dict() for p in self.problems if p.kind == kind]

    def report(self) -> dict[str, Any]:
        """Counts and lists of every file failed, skipped, dropped, merged or kept."""
        out: dict[str, Any] = {"pages": self.pages}
        for kind in ("skipped", "dropped", "merged", "kept"):
            out[kind] = sum(1 for p in self.problems if p.kind == kind)
        for kind in ("failed", "skipped", "dropped", "merged", "kept"):
            out[f"{kind}_files"] = self.files(kind)
        return out

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
            **self.report(),
        }


@dataclass
class _Previous:
    manifest: dict[str, Any]
    documents: dict[str, DocumentRecord]
    chunks_by_doc: dict[str, list[ChunkRecord]]
    vectors_by_hash: dict[str, np.ndarray]
    held: set[str] = field(default_factory=set)
    """Documents held (identical to a searched copy) in the previous version."""

    @property
    def roots(self) -> list[str]:
        return list(self.manifest.get("roots") or [])


def _load_previous(layout: IndexLayout) -> _Previous | None:
    version = layout.current_version()
    if version is None:
        return None
    folder = layout.version_dir(version)
    store = ChunkStore(folder / "chunks.sqlite", readonly=True)
    try:
        chunks = store.all_chunks()
        docs = {d.doc_id: d for d in store.documents()}
        held_docs, held_chunks = store.held()
    finally:
        store.close()
    vectors = load_embeddings(folder)
    by_doc: dict[str, list[ChunkRecord]] = {}
    by_hash: dict[str, np.ndarray] = {}
    for c in chunks:
        by_doc.setdefault(c.doc_id, []).append(c)
        by_hash.setdefault(c.text_hash, vectors[c.row])
    held = set()
    for d in held_docs:
        if d.doc_id not in docs:
            docs[d.doc_id] = d
            held.add(d.doc_id)
    for c in held_chunks:
        by_doc.setdefault(c.doc_id, []).append(c)
    for cs in by_doc.values():
        cs.sort(key=lambda c: c.position)
    return _Previous(layout.manifest(version), docs, by_doc, by_hash, held)


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


def check_build(
    data_dir: str | Path, name: str, paths: Sequence[str | Path], action: str
) -> IndexLayout:
    """The index's layout, once the action and the paths are known to make sense."""
    if action not in ("build", "add", "remove"):
        raise UsageError(f"unknown action {action!r}: build, add or remove")
    layout = IndexLayout(data_dir, name)
    if action != "build" and not layout.exists():
        raise IndexNotFound(f"index {name!r} not found in {layout.data_dir}")
    if not paths:
        raise UsageError("give at least one path" if action != "remove" else "give a source")
    return layout


@dataclass
class BuildPlan:
    """What a build knows before it reads a file; both engines (local, Ray) start from it.

    Made by :func:`plan_build` while the index lock is held."""

    layout: IndexLayout
    opts: BuildOptions
    action: str
    paths: list[str | Path]
    embedder: SentenceTransformerEmbedder
    previous: _Previous | None
    store_name: str
    chunker: Chunker
    same_chunking: bool
    roots: list[str]
    removed_names: list[str]
    started: float
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.layout.name

    @property
    def prev_roots(self) -> list[str]:
        return self.previous.roots if self.previous else []

    @property
    def read_roots(self) -> list[str]:
        """The remembered roots files are named against (``add`` only)."""
        return self.prev_roots if self.action == "add" else []

    def reusable(self, rec: DocumentRecord) -> list[ChunkRecord] | None:
        """The previous version's chunks of a document that did not change, else None."""
        previous = self.previous
        old = previous.documents.get(rec.doc_id) if previous else None
        if (
            previous
            and old
            and self.same_chunking
            and old.content_hash == rec.content_hash
            and old.metadata == rec.metadata
            and old.title == rec.title
            and old.mtime == rec.mtime
        ):
            return [_fresh(c) for c in previous.chunks_by_doc.get(rec.doc_id, [])]
        return None

    def has_vector(self, text_hash: str) -> bool:
        """Whether the previous version holds a vector for this chunk text."""
        return bool(self.previous and text_hash in self.previous.vectors_by_hash)

    def check_cancelled(self) -> None:
        if self.opts.cancelled and self.opts.cancelled():
            raise BuildCancelled(f"build of {self.name!r} cancelled")


def plan_build(
    layout: IndexLayout,
    paths: Sequence[str | Path],
    action: str,
    opts: BuildOptions,
    started: float,
    chunk_tokenizer: Any = None,
) -> BuildPlan:
    """The embedder, the previous version, the store and the chunker of a build.

    ``chunk_tokenizer``: the chunker's tokenizer; None: a copy of the embedder's (the
    background encoder tokenizes with the embedder's at the same time, and a fast tokenizer
    is not safe across threads)."""
    embedder = resolve_embedder(layout, opts.model, opts.device)
    previous = _load_previous(layout)
    prev_store = previous.manifest["store"]["backend"] if previous else None
    store_name = opts.store or prev_store or "faiss"
    tokenizer = chunk_tokenizer or copy.deepcopy(embedder.tokenizer)
    chunker = Chunker(
        lambda s: tokenizer.encode(s, add_special_tokens=False),
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
    prev_roots = previous.roots if previous else []
    roots: list[str] = [] if action == "build" else list(prev_roots)
    removed_names: list[str] = []
    if action == "remove":
        removed_names = [str(p) for p in paths]
    else:
        for p in check_paths(paths):
            root = str(iter_root(p, prev_roots if action == "add" else []))
            if root not in roots:
                roots.append(root)
    return BuildPlan(
        layout=layout,
        opts=opts,
        action=action,
        paths=list(paths),
        embedder=embedder,
        previous=previous,
        store_name=store_name,
        chunker=chunker,
        same_chunking=same_chunking,
        roots=roots,
        removed_names=removed_names,
        started=started,
    )


@dataclass
class Loaded:
    """What the read of a build gave, in file order: the documents worth indexing with their
    chunks, and everything else (problems, curation counts)."""

    documents: list[DocumentRecord] = field(default_factory=list)
    chunks: list[list[ChunkRecord]] = field(default_factory=list)
    new_ids: set[str] = field(default_factory=set)
    """Every document id read now, dropped ones included."""
    read_sources: set[str] = field(default_factory=set)
    """Files read now (not failed): their previous documents are replaced."""
    problems: list[Problem] = field(default_factory=list)
    curation: CurationReport = field(default_factory=CurationReport)
    pages: int = 0

    def drop(self, doc_id: str, problem: str) -> None:
        """Document ``doc_id`` has nothing worth indexing (``empty`` or ``boilerplate``)."""
        setattr(self.curation, problem, getattr(self.curation, problem) + 1)
        self.curation.dropped_documents.append(doc_id)
        self.problems.append(Problem(doc_id, "dropped", problem))


def document_record(doc: SourceDocument) -> DocumentRecord:
    return DocumentRecord(
        doc.doc_id, doc.source, doc.title, doc.mtime, doc.content_hash, doc.metadata
    )


def document_set(
    plan: BuildPlan, loaded: Loaded
) -> tuple[list[DocumentRecord], list[list[ChunkRecord]]]:
    """The new version's documents and their chunks: the previous documents that stay
    (first), then the loaded ones. Adds ``kept`` problems to ``loaded.problems``."""
    previous, action, problems = plan.previous, plan.action, loaded.problems
    docs: list[DocumentRecord] = []
    doc_chunks: list[list[ChunkRecord]] = []
    failed_now = {p.source: p.reason for p in problems if p.kind == "failed"}
    if previous:
        for doc_id, rec in previous.documents.items():
            if doc_id in loaded.new_ids:
                continue
            reason = failed_now.get(doc_id) or failed_now.get(rec.source)
            if reason is not None and doc_id not in previous.held:
                problems.append(
                    Problem(
                        doc_id,
                        "kept",
                        f"kept from version {previous.manifest['version']}: {reason}",
                    )
                )
            elif (
                action == "build"
                or (action == "remove" and _matches(rec, plan.removed_names))
                or (
                    action == "add"
                    and (
                        rec.source in loaded.read_sources or _gone(rec, plan.prev_roots, plan.paths)
                    )
                )
            ):
                continue
            docs.append(rec)
            doc_chunks.append([_fresh(c) for c in previous.chunks_by_doc.get(doc_id, [])])
    if action == "remove":
        matched = [
            n
            for n in plan.removed_names
            if previous and any(_matches(r, [n]) for r in previous.documents.values())
        ]
        if not matched:
            raise SourceNotFound(
                f"no document in index {plan.name!r} matches {', '.join(plan.removed_names)}"
            )
    docs.extend(loaded.documents)
    doc_chunks.extend(loaded.chunks)
    return docs, doc_chunks


@dataclass
class Curated:
    """The chunks of the new version after curation: searched (``kept``) and held."""

    documents: list[DocumentRecord]
    kept: list[ChunkRecord]
    held_documents: list[DocumentRecord]
    held: list[ChunkRecord]


def curate(
    plan: BuildPlan,
    docs: Sequence[DocumentRecord],
    doc_chunks: Sequence[list[ChunkRecord]],
    loaded: Loaded,
    groups: tuple[list[int], list[int]] | None = None,
) -> Curated:
    """:func:`curate_chunks` (``groups``: exact and near groups found elsewhere), then the
    checks that keep an empty or (``--strict``) incomplete build from publishing."""
    final_docs, kept, held_docs, held = curate_chunks(
        docs, doc_chunks, loaded.curation, loaded.problems, plan.opts.dedup, groups
    )
    _check_publishable(plan.name, final_docs, loaded.problems, plan.opts.strict)
    return Curated(final_docs, kept, held_docs, held)


def run_build(
    data_dir: str | Path,
    name: str,
    paths: Sequence[str | Path],
    action: str = "build",
    options: BuildOptions | None = None,
) -> BuildResult:
    """Build, add to or remove from index ``name``; publishes a new version."""
    opts = options or BuildOptions()
    layout = check_build(data_dir, name, paths, action)
    started = time.perf_counter()
    with layout.lock():
        plan = plan_build(layout, paths, action, opts, started)
        timings = plan.timings
        encoder = _start_encoder(plan.embedder, opts)
        try:
            # -- read, chunk and (in the background) embed the new document set --------------
            loaded = Loaded()
            t0 = time.perf_counter()
            if action != "remove":
                reader = _Reader(paths, opts.text_field, plan.read_roots)
                chunk_s = 0.0
                for doc in reader:
                    plan.check_cancelled()
                    t1 = time.perf_counter()
                    loaded.new_ids.add(doc.doc_id)
                    problem = document_problem(doc.text, doc.record)
                    if problem:
                        loaded.drop(doc.doc_id, problem)
                        chunk_s += time.perf_counter() - t1
                        continue
                    rec = document_record(doc)
                    chunks = plan.reusable(rec)
                    if chunks is None:
                        chunks = chunk_document(plan.chunker, doc)
                    for c in chunks:
                        if not plan.has_vector(c.text_hash):
                            encoder.submit(c.text_hash, c.text)
                    loaded.documents.append(rec)
                    loaded.chunks.append(chunks)
                    chunk_s += time.perf_counter() - t1
                loaded.problems.extend(reader.problems)
                loaded.read_sources = reader.read_sources
                loaded.pages = reader.pages
                timings["load_s"] = reader.busy_s
                timings["chunk_s"] = chunk_s
                timings["read_chunk_wall_s"] = time.perf_counter() - t0
            _notify(
                opts,
                documents=len(loaded.new_ids),
                chunks_total=encoder.submitted,
                chunks_done=encoder.encoded,
            )

            # -- the new document set, curated ------------------------------------------------
            docs, doc_chunks = document_set(plan, loaded)
            t0 = time.perf_counter()
            final_docs, kept, held_docs, held = curate_chunks(
                docs, doc_chunks, loaded.curation, loaded.problems, opts.dedup
            )
            for c in held:  # a held chunk revived later needs its vector
                if not plan.has_vector(c.text_hash):
                    encoder.submit(c.text_hash, c.text)
            encoder.end_input()
            timings["curate_s"] = time.perf_counter() - t0
            _check_publishable(name, final_docs, loaded.problems, opts.strict)
            curated = Curated(final_docs, kept, held_docs, held)
            return write_version(plan, curated, loaded, _EncoderVectors(encoder))
        finally:
            encoder.close()


@dataclass
class Draft:
    """A version being written into its staging folder: what a :class:`VectorWriter` sees."""

    plan: BuildPlan
    curated: Curated
    version: int
    staging: Path
    vectors: np.ndarray
    """One row per searched chunk; reused rows filled, the ``todo`` rows to fill."""
    todo: list[int]
    store_options: dict[str, Any]


class VectorWriter:
    """How a build gets its vectors and writes its stores: the local engine's way.

    :meth:`start` runs before the chunk store is written (start embedding), :meth:`finish`
    fills ``draft.vectors[draft.todo]``; :meth:`bm25` and :meth:`vector_store` write the
    sparse and the dense index of the staging folder. The Ray engine overrides them."""

    vectors_on_disk = False
    """True: ``draft.vectors`` is a memory map of the staging folder's embeddings file."""

    def start(self, draft: Draft) -> None:
        return None

    def finish(self, draft: Draft) -> None:
        raise NotImplementedError

    def embed_seconds(self) -> float:
        return 0.0

    def bm25(self, draft: Draft) -> BM25Index:
        return BM25Index.build([c.text for c in draft.curated.kept])

    def vector_store(self, draft: Draft) -> dict[str, Any]:
        """Builds the dense index in the staging folder; returns its manifest parameters."""
        dim = draft.plan.embedder.dimension
        vstore = open_store(
            draft.plan.store_name, draft.staging, dim, create=True, **draft.store_options
        )
        try:
            vstore.build(draft.vectors)
            vstore.save()
            return vstore.params()
        finally:
            vstore.close()

    def manifest_extra(self) -> dict[str, Any]:
        """Keys the engine adds to the manifest (none for the local build)."""
        return {}

    def abort(self, draft: Draft | None) -> None:
        """The build failed or was cancelled after ``draft`` was started: undo what is
        outside the staging folder."""
        return None


class _EncoderVectors(VectorWriter):
    """Vectors from the build's :class:`BackgroundEncoder`."""

    def __init__(self, encoder: BackgroundEncoder) -> None:
        self.encoder = encoder

    def embed_seconds(self) -> float:
        return self.encoder.busy_s

    def finish(self, draft: Draft) -> None:
        opts, kept, todo = draft.plan.opts, draft.curated.kept, draft.todo
        draft.plan.check_cancelled()
        keys = [kept[i].text_hash for i in todo]
        _notify(
            opts,
            documents=len(draft.curated.documents),
            chunks_total=len(todo),
            chunks_done=sum(self.encoder.has(k) for k in keys),
        )
        try:
            draft.vectors[todo] = self.encoder.vectors(keys)
        except RuntimeError:
            draft.plan.check_cancelled()
            raise


def store_options(plan: BuildPlan, version: int, kept: Sequence[ChunkRecord]) -> dict[str, Any]:
    """Options of the new version's vector store (``open_store(..., create=True)``)."""
    opts, store_name, name = plan.opts, plan.store_name, plan.name
    out: dict[str, Any] = {}
    if store_name == "faiss" and opts.hnsw_threshold is not None:
        out["hnsw_threshold"] = opts.hnsw_threshold
    if store_name == "faiss" and opts.ivfpq_threshold is not None:
        out["ivfpq_threshold"] = opts.ivfpq_threshold
    if store_name == "faiss" and opts.faiss_device is not None:
        out["device"] = opts.faiss_device
    if store_name == "qdrant":
        out["url"] = opts.qdrant_url
        out["api_key"] = opts.qdrant_api_key
        out["shard_number"] = opts.qdrant_shards
        out["replication_factor"] = opts.qdrant_replicas
        if opts.qdrant_url:
            out["collection"] = f"tandem-{name}-v{version}"
        out["payloads"] = [chunk_payload(i, c) for i, c in enumerate(kept)]
    return out


def chunk_payload(row: int, c: ChunkRecord) -> dict[str, Any]:
    """The Qdrant payload of the searched chunk at ``row``."""
    return {"row": row, "doc_id": c.doc_id, "source": c.source, **_payload(c.metadata)}


def write_version(
    plan: BuildPlan, curated: Curated, loaded: Loaded, writer: VectorWriter
) -> BuildResult:
    """Everything after "chunks with vectors", shared by both engines: vectors (reused or
    from ``writer``), chunk store, BM25, the vector store, the manifest, and the atomic
    publish. A failure or a cancel leaves nothing published."""
    # The staging folder exists from here on: a build killed now leaves only it behind,
    # never a published version; the next build clears it.
    version = plan.layout.next_version()
    staging = plan.layout.staging_dir(version)
    draft: Draft | None = None
    try:
        draft = _draft(plan, curated, version, staging, writer)
        return _embed_write_publish(draft, loaded, writer)
    except BaseException:
        writer.abort(draft)
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _draft(
    plan: BuildPlan, curated: Curated, version: int, staging: Path, writer: VectorWriter
) -> Draft:
    kept = curated.kept
    dim = plan.embedder.dimension
    if writer.vectors_on_disk:
        vectors: np.ndarray = np.lib.format.open_memmap(
            staging / EMBEDDINGS, mode="w+", dtype=np.float32, shape=(len(kept), dim)
        )
    else:
        vectors = np.zeros((len(kept), dim), dtype=np.float32)
    todo: list[int] = []
    previous = plan.previous
    for i, c in enumerate(kept):
        vec = previous.vectors_by_hash.get(c.text_hash) if previous else None
        if vec is not None:
            vectors[i] = vec
        else:
            todo.append(i)
    return Draft(plan, curated, version, staging, vectors, todo, store_options(plan, version, kept))


def _embed_write_publish(draft: Draft, loaded: Loaded, writer: VectorWriter) -> BuildResult:
    plan, curated = draft.plan, draft.curated
    opts, timings, embedder, previous = plan.opts, plan.timings, plan.embedder, plan.previous
    name, version, staging, store_name = plan.name, draft.version, draft.staging, plan.store_name
    final_docs, kept, todo, vectors = curated.documents, curated.kept, draft.todo, draft.vectors
    problems, curation, pages, roots = loaded.problems, loaded.curation, loaded.pages, plan.roots
    failed = [(p.source, p.reason) for p in problems if p.kind == "failed"]
    dim = embedder.dimension
    reused = len(kept) - len(todo)
    _notify(opts, documents=len(final_docs), chunks_total=len(todo), chunks_done=0)
    writer.start(draft)

    # -- what needs no vectors is written while the encoder finishes ----------------------
    t0 = time.perf_counter()
    store = ChunkStore(staging / "chunks.sqlite")
    store.write(final_docs, kept)
    store.write_held(curated.held_documents, curated.held)
    store.close()
    bm25 = writer.bm25(draft)
    bm25.save(staging)
    write_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    if todo:
        writer.finish(draft)
    timings["embed_wait_s"] = time.perf_counter() - t0
    timings["embed_s"] = writer.embed_seconds()
    plan.check_cancelled()

    # -- vectors: write them, build the vector store and publish ---------------------------
    t0 = time.perf_counter()
    if isinstance(vectors, np.memmap):
        vectors.flush()
    else:
        np.save(staging / EMBEDDINGS, vectors)
    store_params = writer.vector_store(draft)
    timings["write_s"] = write_s + time.perf_counter() - t0
    plan.check_cancelled()

    prev_ids = set(previous.documents) if previous else set()
    removed = len(prev_ids - {d.doc_id for d in [*final_docs, *curated.held_documents]})
    seconds = time.perf_counter() - plan.started
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
        problems=problems,
        pages=pages,
    )
    chunker = plan.chunker
    manifest = {
        "name": name,
        "version": version,
        "action": plan.action,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "embedder": {
            "spec": embedder.spec,
            "name": embedder.name,
            "fingerprint": embedder.fingerprint,
            "dimension": dim,
            "max_seq_length": embedder.max_seq_length,
        },
        "store": store_params,
        "bm25": bm25.params(),
        "roots": roots or [],
        "chunking": {
            "chunk_tokens": chunker.chunk_tokens,
            "overlap_tokens": chunker.overlap_tokens,
            "splitter": "llama-index SentenceSplitter + model tokenizer",
            "max_chars": chunker.max_chars,
            "sections": "headings as chunk metadata (section)",
        },
        "counts": {
            "documents": len(final_docs),
            "chunks": len(kept),
            "embedded": len(todo),
            "reused": reused,
            "removed": removed,
            "duplicates": curation.duplicates,
            "failed": len(failed),
            **{k: v for k, v in result.report().items() if not k.endswith("_files")},
            **curation.as_dict(),
        },
        **{k: v for k, v in result.report().items() if k.endswith("_files")},
        "libraries": library_versions(),
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "seconds": round(seconds, 3),
    }
    manifest.update(writer.manifest_extra())
    plan.layout.publish(staging, version, manifest)
    if store_name == "qdrant" and opts.qdrant_url:
        from stores.qdrant_store import switch_alias

        switch_alias(opts.qdrant_url, opts.qdrant_api_key, name, version)
    _notify(opts, documents=len(final_docs), chunks_total=len(todo), chunks_done=len(todo))
    log.info("published %s v%d: %s", name, version, result.as_dict())
    return result


class _Reader:
    """Documents of ``paths`` read by a background thread, in file order (``load_paths`` as a
    stream): what cannot be indexed is listed in ``problems``."""

    def __init__(
        self,
        paths: Sequence[str | Path],
        text_field: str,
        roots: Sequence[str] = (),
        prefetch: int = 64,
    ) -> None:
        self.problems: list[Problem] = []
        self.read_sources: set[str] = set()
        """Files read now (not failed): their previous documents are replaced."""
        self.pages = 0
        self.busy_s = 0.0
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=prefetch)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._read, args=([Path(p) for p in paths], text_field, roots), daemon=True
        )
        self._thread.start()

    def _read(self, paths: list[Path], text_field: str, roots: Sequence[str]) -> None:
        try:
            for p in paths:
                for file, root in iter_files(p, roots):
                    if self._stop.is_set():
                        return
                    t = time.perf_counter()
                    loaded = load_one(file, root, text_field)
                    for problem in loaded.problems:
                        # reported once by the caller (CLI warning lines, --json, job result)
                        log.info("%s %s: %s", problem.kind, problem.source, problem.reason)
                    self.problems.extend(loaded.problems)
                    if not any(
                        pr.kind == "failed" and pr.source == loaded.source for pr in loaded.problems
                    ):
                        self.read_sources.add(loaded.source)
                    self.pages += loaded.pages
                    self.busy_s += time.perf_counter() - t
                    for doc in loaded.documents:
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

    # A cancellable build (a job) checks its cancel between model batches, not between slices
    # of SLICE texts (tens of seconds on a busy CPU): a cancel lands within one batch.
    slice_size = opts.batch_size if opts.cancelled is not None else SLICE
    return BackgroundEncoder(
        embedder,
        opts.batch_size,
        slice_size=slice_size,
        cancelled=opts.cancelled,
        on_progress=progress,
    )


def _payload(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in meta.items() if isinstance(v, str | int | float | bool)}


def chunk_document(chunker: Chunker, doc: SourceDocument) -> list[ChunkRecord]:
    """The chunks of one document, section by section; the section title (heading path) is
    chunk metadata (``section``), not chunk text."""
    meta = {"title": doc.title, **doc.metadata}
    if doc.mtime is not None:
        meta["modified"] = datetime.fromtimestamp(doc.mtime, UTC).isoformat(timespec="seconds")
    meta["content_hash"] = doc.content_hash
    parts = doc.sections or [Section("", doc.text)]
    out: list[ChunkRecord] = []
    for section in parts:
        smeta = {**meta, "section": section.title} if section.title else meta
        for text in chunker.split(section.text):
            i = len(out)
            out.append(
                ChunkRecord(
                    chunk_id=f"{doc.doc_id}::{i}",
                    doc_id=doc.doc_id,
                    source=doc.source,
                    position=i,
                    text=text,
                    text_hash=text_hash(text),
                    metadata=smeta,
                )
            )
    return out


_chunk_document = chunk_document


def chunk_batch(chunker: Chunker, docs: Sequence[SourceDocument]) -> list[list[ChunkRecord]]:
    """:func:`chunk_document` over a batch (for parallel engines)."""
    return [chunk_document(chunker, d) for d in docs]


def _fresh(c: ChunkRecord) -> ChunkRecord:
    """A copy of a previous version's chunk, its curation marks cleared."""
    meta = {k: v for k, v in c.metadata.items() if k not in ("version_group", "newer_version")}
    return ChunkRecord(c.chunk_id, c.doc_id, c.source, c.position, c.text, c.text_hash, meta)


def curate_chunks(
    docs: Sequence[DocumentRecord],
    doc_chunks: Sequence[list[ChunkRecord]],
    curation: CurationReport,
    problems: list[Problem],
    dedup: bool = True,
    found: tuple[list[int], list[int]] | None = None,
) -> tuple[list[DocumentRecord], list[ChunkRecord], list[DocumentRecord], list[ChunkRecord]]:
    """``(documents, searched chunks, held documents, held chunks)``; see :mod:`curate`.

    Identical chunks: the copy of the most recently modified document is searched, the others
    held and their documents reported as merged. Near-duplicates: all searched, grouped.
    ``found``: the ``(exact, near)`` of :func:`~indexers.curate.duplicate_groups` over the
    chunk texts when computed elsewhere (the Ray engine's distributed step)."""
    flat = [c for cs in doc_chunks for c in cs]
    owners = [i for i, cs in enumerate(doc_chunks) for _ in cs]
    keep = [True] * len(flat)
    if dedup and flat:
        exact, near = found or duplicate_groups([c.text for c in flat])
        groups: dict[int, list[int]] = {}
        for i, g in enumerate(exact):
            groups.setdefault(g, []).append(i)
        rep_of: dict[int, int] = {}
        for members in groups.values():
            best = max(members, key=lambda i: (docs[owners[i]].mtime or 0.0, -i))
            for i in members:
                rep_of[i] = best
                keep[i] = i == best
        curation.exact_duplicates = sum(1 for k in keep if not k)
        near_groups: dict[int, list[int]] = {}
        for i, g in enumerate(near):
            if keep[i]:
                near_groups.setdefault(g, []).append(i)
        curation.near_duplicates = 0
        for members in near_groups.values():
            if len({owners[i] for i in members}) > 1:
                curation.near_duplicates += len(members) - 1
                gid = flat[members[0]].text_hash
                newest = max(members, key=lambda i: docs[owners[i]].mtime or 0.0)
                for i in members:
                    meta = {**flat[i].metadata, "version_group": gid}
                    if i != newest:
                        meta["newer_version"] = docs[owners[newest]].source
                    flat[i].metadata = meta
        merged_into: dict[int, str] = {}
        for i, k in enumerate(keep):
            if not k:
                merged_into.setdefault(owners[i], docs[owners[rep_of[i]]].doc_id)
    else:
        merged_into = {}
    counts: dict[int, int] = {}
    for o, k in zip(owners, keep, strict=True):
        counts[o] = counts.get(o, 0) + int(k)
    final_docs: list[DocumentRecord] = []
    held_docs: list[DocumentRecord] = []
    for i, d in enumerate(docs):
        d.chunk_count = counts.get(i, 0)
        if d.chunk_count:
            final_docs.append(d)
        elif doc_chunks[i]:
            held_docs.append(d)
            problems.append(
                Problem(d.doc_id, "merged", "identical content", kept=merged_into.get(i))
            )
    kept = [c for c, k in zip(flat, keep, strict=True) if k]
    # every dropped copy is held (not only those of wholly held documents), so that a later
    # build reuses a document's whole chunk list and counts its duplicates the same way
    held = [c for c, k in zip(flat, keep, strict=True) if not k]
    return final_docs, kept, held_docs, held


def _check_publishable(
    name: str, docs: Sequence[DocumentRecord], problems: Sequence[Problem], strict: bool
) -> None:
    bad = [p for p in problems if p.kind in ("failed", "skipped")]
    if strict and bad:
        listed = "; ".join(f"{p.source}: {p.reason}" for p in bad[:10])
        raise StrictBuildFailed(
            f"--strict: {len(bad)} file(s) failed or were skipped, nothing published ({listed})"
        )
    if not docs:
        counts = {k: sum(1 for p in problems if p.kind == k) for k in ("failed", "skipped")}
        dropped = [p for p in problems if p.kind == "dropped"]
        listed = "; ".join(f"{p.source}: {p.reason}" for p in (bad + dropped)[:10])
        raise EmptyBuild(
            f"index {name!r}: the build would publish no documents, so nothing was published "
            f"({counts['failed']} failed, {counts['skipped']} skipped, {len(dropped)} dropped"
            + (f": {listed}" if listed else "")
            + ")"
        )


def iter_root(path: Path, roots: Sequence[str]) -> Path:
    """The source root a given path's documents are named relative to."""
    return root_for(Path(path), roots)


def _gone(rec: DocumentRecord, roots: Sequence[str], paths: Sequence[str | Path]) -> bool:
    """True for a document whose file was under one of ``paths`` and no longer exists."""
    given = [Path(p).resolve() for p in paths]
    for r in roots:
        f = Path(r) / rec.source
        if any(f == g or g in f.parents for g in given):
            return not f.exists()
    return False


def _notify(opts: BuildOptions, **progress: Any) -> None:
    if opts.on_progress is not None:
        opts.on_progress(progress)

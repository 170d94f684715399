"""Index builds on Ray Data: the same build as :func:`indexers.builder.run_build`, spread over a
Ray cluster (or a local Ray instance), writing one versioned index exactly as the local build.

Stages, each a Ray Data operation over the whole corpus, one after the other (curation needs
every chunk before anything is embedded, so each stage gets every worker):

1. **load + decode + structure + chunk**: the file list (read on the driver, so that document
   ids are named against the same source roots) becomes a dataset; an actor pool
   (``map_batches``, one :class:`_LoadChunk` per worker, the chunker built once per actor)
   runs :func:`~indexers.loaders.load_one`, the document checks and
   :func:`~indexers.builder.chunk_document`. Documents unchanged since the previous version
   are not chunked again: their stored chunks are reused (as locally). The paths must be
   readable by every worker (a shared filesystem).
2. **curation** (:func:`duplicate_groups_on_ray`): per chunk, the normalised-text hash, the
   MinHash sketch and the BM25 terms (tasks); exact duplicates by a ``groupby`` on the hash;
   near-duplicate candidates by a ``groupby`` on the LSH band keys (the same bands
   ``datasketch.MinHashLSH`` uses), checked by the MinHash Jaccard estimate in the group. The
   driver only walks the candidate edges in chunk order, which gives exactly the groups of
   :func:`indexers.curate.duplicate_groups`.
3. **embed**: the chunks without a stored vector (incremental builds reuse vectors by chunk
   hash, as locally), longest first, through an actor pool of :class:`_Embed` (the model loaded
   once per actor); with a Qdrant server, the same workers upsert their points straight into
   the new version's collection.
4. **write + publish**: :func:`indexers.builder.write_version`, the local build's own code:
   the chunk store, BM25 (from the terms of stage 2), the vectors (a memory map in the staging
   folder, filled shard by shard; FAISS trains its IVF-PQ on a sample of it past its
   threshold), the vector store, the manifest, the atomic publish. Nothing is published until
   every shard is written; a failed or cancelled build publishes nothing.

Without an address a local Ray instance is started (and stopped after the build); a Ray
session the caller already started is used as it is.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import MissingDependency, UsageError
from indexers.builder import (
    BuildOptions,
    BuildPlan,
    BuildResult,
    Draft,
    Loaded,
    VectorWriter,
    check_build,
    chunk_document,
    curate,
    document_record,
    document_set,
    plan_build,
    run_build,
    write_version,
)
from indexers.curate import NEAR_DUP_THRESHOLD, NUM_PERM, SHINGLE, document_problem, normalise
from indexers.documents import Problem
from indexers.loaders import check_paths, iter_files, load_one
from stores.bm25 import ANALYZER, K1, B, BM25Index, analyze
from stores.chunkstore import ChunkRecord, DocumentRecord

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'tandem[ray]'"
#: Files per load/chunk batch, and chunks per curation batch.
FILES_PER_BATCH = 8
CHUNKS_PER_BATCH = 2048
#: Chunks per embedding batch handed to an actor (the model batches inside).
EMBED_BATCH = 256


@dataclass
class RayOptions:
    """How a build runs on Ray (the build's own options stay in :class:`BuildOptions`)."""

    address: str | None = None
    """A running cluster (``ray://host:10001``, ``auto``, ``host:6379``); None: start a local
    Ray instance for this build."""
    workers: int | None = None
    """Actors per pool (load/chunk, embed) and tasks per curation step; None: the cluster's
    CPUs divided by ``cpus_per_worker``."""
    cpus_per_worker: int = 1
    """CPUs reserved by each actor (the embedder's threads)."""
    batch_size: int = EMBED_BATCH
    """Chunks per embedding batch sent to an actor."""
    num_cpus: int | None = None
    """CPUs of a local instance; None: all of this machine's."""
    object_store_memory: int | None = None
    """Bytes of a local instance's object store; None: Ray's default."""


def require_ray() -> Any:
    """The ``ray`` module (with Ray Data), or :class:`MissingDependency` with the install hint."""
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise MissingDependency(
            f"--engine ray needs Ray Data, which is not installed: {INSTALL_HINT}"
        ) from exc
    return ray


#: Builds of this process using a Ray session this module started (jobs run side by side).
_SESSION_LOCK = threading.Lock()
_SESSION = {"users": 0, "ours": False}


@contextmanager
def ray_session(ropts: RayOptions) -> Iterator[Any]:
    """Connect to ``ropts.address`` or start a local instance; a session already open in this
    process is used as it is. A session started here is shut down when its last build ends."""
    ray = require_ray()
    with _SESSION_LOCK:
        if not ray.is_initialized():
            if ropts.address:
                ray.init(address=ropts.address, log_to_driver=False)
            else:
                ray.init(
                    num_cpus=ropts.num_cpus or os.cpu_count() or 1,
                    object_store_memory=ropts.object_store_memory,
                    include_dashboard=False,
                    log_to_driver=False,
                )
            _SESSION["ours"] = True
        _SESSION["users"] += 1
    try:
        yield ray
    finally:
        with _SESSION_LOCK:
            _SESSION["users"] -= 1
            if _SESSION["ours"] and _SESSION["users"] == 0:
                _SESSION["ours"] = False
                ray.shutdown()


def _workers(ray: Any, ropts: RayOptions) -> int:
    if ropts.workers:
        return max(1, int(ropts.workers))
    cpus = int(ray.cluster_resources().get("CPU", 1))
    return max(1, cpus // max(1, ropts.cpus_per_worker))


def run_ray_build(
    data_dir: str | Path,
    name: str,
    paths: Sequence[str | Path],
    action: str = "build",
    options: BuildOptions | None = None,
    ray_options: RayOptions | None = None,
) -> BuildResult:
    """:func:`indexers.builder.run_build` on Ray Data; same arguments, same result and index.

    ``remove`` reads no file: it runs the local build."""
    opts = options or BuildOptions()
    ropts = ray_options or RayOptions()
    if action == "remove":
        return run_build(data_dir, name, paths, action, opts)
    layout = check_build(data_dir, name, paths, action)
    require_ray()
    started = time.perf_counter()
    with layout.lock():
        plan = plan_build(layout, paths, action, opts, started)
        t0 = time.perf_counter()
        with ray_session(ropts) as ray:
            plan.timings["ray_start_s"] = time.perf_counter() - t0
            ctx = ray.data.DataContext.get_current()
            ctx.enable_progress_bars = bool(opts.show_progress)
            # sort-based shuffles run as tasks in the pooled workers: no aggregator actors
            ctx.shuffle_strategy = ray.data.context.ShuffleStrategy.SORT_SHUFFLE_PULL_BASED
            workers = _workers(ray, ropts)
            engine = {
                "name": "ray",
                "ray": ray.__version__,
                "address": ropts.address or "local",
                "workers": workers,
            }
            log.info("ray build of %s: %d workers", name, workers)
            loaded = _load_and_chunk(ray, plan, ropts, workers)
            docs, doc_chunks = document_set(plan, loaded)
            t0 = time.perf_counter()
            flat = [c for cs in doc_chunks for c in cs]
            found, terms = duplicate_groups_on_ray(
                ray, [c.text for c in flat], workers, with_groups=opts.dedup
            )
            curated = curate(plan, docs, doc_chunks, loaded, found if flat else None)
            plan.timings["curate_s"] = time.perf_counter() - t0
            position = {id(c): i for i, c in enumerate(flat)}
            kept_terms = [terms[position[id(c)]] for c in curated.kept]
            writer = _RayVectors(ray, plan, ropts, workers, kept_terms, engine)
            return write_version(plan, curated, loaded, writer)


# -- stage 1: load, decode, structure, chunk ----------------------------------------------------
def _signature(rec: DocumentRecord) -> str:
    """What must be equal for a document's stored chunks to be reused (as ``plan.reusable``)."""
    meta = json.dumps(rec.metadata, sort_keys=True, default=str)
    return json.dumps([rec.content_hash, meta, rec.title, rec.mtime])


def _resolve(value: Any) -> Any:
    """An object put in Ray's object store (once, for every actor), fetched."""
    import ray

    return ray.get(value) if isinstance(value, ray.ObjectRef) else value


def _runtime_values() -> dict[str, Any]:
    from smallmodels import runtime

    return asdict(runtime.current())


def _configure_runtime(values: dict[str, Any], threads: int | None = None) -> None:
    """The driver's model runtime values in a worker process (its own threads)."""
    from smallmodels import runtime

    if threads is not None:
        values = {**values, "onnx_threads": threads}
        try:
            import torch

            torch.set_num_threads(threads)
        except ImportError:  # pragma: no cover - torch is a dependency
            pass
    runtime.configure(**values)


#: Per worker process: the chunker of a build (tasks of one build share the process).
_CHUNKERS: dict[str, tuple[Any, dict[str, str]]] = {}


class _LoadChunk:
    """Ray task: files in, one row per file and per document out (JSON). The chunker and the
    list of unchanged documents are built once per worker process and build."""

    def __init__(
        self,
        build: str,
        tokenizer: Any,
        max_seq_length: int,
        chunk_tokens: int,
        overlap_tokens: int,
        text_field: str,
        unchanged: Any,
        runtime_values: dict[str, Any],
    ) -> None:
        from indexers.chunker import Chunker

        if build not in _CHUNKERS:
            _CHUNKERS.clear()
            tok = _resolve(tokenizer)
            _configure_runtime(runtime_values, 1)
            chunker = Chunker(
                lambda s: tok.encode(s, add_special_tokens=False),
                max_seq_length,
                chunk_tokens,
                overlap_tokens,
            )
            _CHUNKERS[build] = (chunker, _resolve(unchanged))
        self.chunker, self.unchanged = _CHUNKERS[build]
        self.text_field = text_field

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {"order": [], "sub": [], "data": []}
        for order, path, root in zip(batch["order"], batch["path"], batch["root"], strict=True):
            loaded = load_one(Path(str(path)), Path(str(root)), self.text_field)
            file_row = {
                "file": loaded.source,
                "pages": loaded.pages,
                "problems": [[p.source, p.kind, p.reason, p.kept] for p in loaded.problems],
            }
            out["order"].append(int(order))
            out["sub"].append(-1)
            out["data"].append(json.dumps(file_row))
            for sub, doc in enumerate(loaded.documents):
                row: dict[str, Any] = {"doc_id": doc.doc_id}
                problem = document_problem(doc.text, doc.record)
                if problem:
                    row["problem"] = problem
                else:
                    rec = document_record(doc)
                    row["doc"] = [rec.doc_id, rec.source, rec.title, rec.mtime]
                    row["doc"] += [rec.content_hash, rec.metadata]
                    if self.unchanged.get(doc.doc_id) == _signature(rec):
                        row["reuse"] = True
                    else:
                        row["chunks"] = [
                            [c.chunk_id, c.position, c.text, c.text_hash, c.metadata]
                            for c in chunk_document(self.chunker, doc)
                        ]
                out["order"].append(int(order))
                out["sub"].append(sub)
                out["data"].append(json.dumps(row))
        return out


def _load_chunk(batch: dict[str, np.ndarray], **kwargs: Any) -> dict[str, list[Any]]:
    return _LoadChunk(**kwargs)(batch)


def _load_and_chunk(ray: Any, plan: BuildPlan, ropts: RayOptions, workers: int) -> Loaded:
    opts = plan.opts
    t0 = time.perf_counter()
    files = [
        {"order": i, "path": str(f), "root": str(r)}
        for i, (f, r) in enumerate(
            (f, r) for p in check_paths(plan.paths) for f, r in iter_files(p, plan.read_roots)
        )
    ]
    loaded = Loaded()
    if not files:
        return loaded
    unchanged: dict[str, str] = {}
    if plan.previous and plan.same_chunking:
        unchanged = {d: _signature(rec) for d, rec in plan.previous.documents.items()}
    ds = ray.data.from_items(files, override_num_blocks=min(len(files), workers * 4))
    ds = ds.map_batches(
        _load_chunk,
        batch_size=FILES_PER_BATCH,
        compute=ray.data.TaskPoolStrategy(size=workers),
        num_cpus=1,
        fn_kwargs={
            "build": f"{plan.name}-{os.getpid()}-{time.time_ns()}",
            "tokenizer": ray.put(plan.embedder.tokenizer),
            "max_seq_length": plan.embedder.max_seq_length,
            "chunk_tokens": plan.chunker.chunk_tokens,
            "overlap_tokens": plan.chunker.overlap_tokens,
            "text_field": opts.text_field,
            "unchanged": ray.put(unchanged),
            "runtime_values": _runtime_values(),
        },
    )
    rows: list[tuple[int, int, str]] = []
    for batch in ds.iter_batches(batch_format="numpy", batch_size=None):
        plan.check_cancelled()
        rows.extend(zip(batch["order"].tolist(), batch["sub"].tolist(), batch["data"], strict=True))
    rows.sort(key=lambda r: (r[0], r[1]))
    file_problems: list[Problem] = []
    for _, sub, data in rows:
        row = json.loads(str(data))
        if sub < 0:
            problems = [Problem(*p) for p in row["problems"]]
            for p in problems:
                log.warning("%s %s: %s", p.kind, p.source, p.reason)
            file_problems.extend(problems)
            if not any(p.kind == "failed" and p.source == row["file"] for p in problems):
                loaded.read_sources.add(row["file"])
            loaded.pages += int(row["pages"])
            continue
        loaded.new_ids.add(row["doc_id"])
        if "problem" in row:
            loaded.drop(row["doc_id"], row["problem"])
            continue
        rec = DocumentRecord(*row["doc"])
        if row.get("reuse"):
            chunks = plan.reusable(rec)
            if chunks is None:  # the signature and the record disagree: never expected
                raise RuntimeError(f"{rec.doc_id}: stored chunks expected but not reusable")
        else:
            chunks = [
                ChunkRecord(cid, rec.doc_id, rec.source, pos, text, th, meta)
                for cid, pos, text, th, meta in row["chunks"]
            ]
        loaded.documents.append(rec)
        loaded.chunks.append(chunks)
    loaded.problems.extend(file_problems)
    plan.timings["read_chunk_wall_s"] = time.perf_counter() - t0
    return loaded


# -- stage 2: curation (exact groups by hash, near groups by LSH band) -------------------------
def _lsh_ranges() -> list[tuple[int, int]]:
    """The band ranges ``datasketch.MinHashLSH`` uses for the curation threshold."""
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=NEAR_DUP_THRESHOLD, num_perm=NUM_PERM)
    return [(int(a), int(b)) for a, b in lsh.hashranges]


def _sketch(batch: dict[str, np.ndarray], with_sketch: bool) -> dict[str, Any]:
    """Per chunk: normalised-text hash, MinHash (texts of 8+ words) and BM25 terms."""
    from datasketch import MinHash

    stemmer = BM25Index(None, 0).stemmer
    norms, sigs, terms = [], [], []
    for text in batch["text"]:
        text = str(text)
        n = normalise(text)
        norms.append(hashlib.sha256(n.encode()).hexdigest())
        terms.append(" ".join(analyze(text, stemmer)))
        words = n.split()
        if not with_sketch or len(words) < 8:
            sigs.append(b"")
            continue
        shingles = {" ".join(words[j : j + SHINGLE]).encode() for j in range(len(words) - 2)}
        mh = MinHash(num_perm=NUM_PERM, seed=1)
        mh.update_batch(list(shingles))
        sigs.append(np.asarray(mh.hashvalues, dtype=np.uint64).tobytes())
    return {"idx": batch["idx"], "norm": np.array(norms), "sig": np.array(sigs, dtype=object),
            "terms": np.array(terms, dtype=object)}  # fmt: skip


def _exact_group(group: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One group of identical normalised texts: every member and the first of them."""
    idx = np.asarray(group["idx"], dtype=np.int64)
    if len(idx) < 2:
        return {"idx": idx[:0], "rep": idx[:0]}
    return {"idx": idx, "rep": np.full(len(idx), idx.min(), dtype=np.int64)}


def _bands(batch: dict[str, np.ndarray], ranges: list[tuple[int, int]]) -> dict[str, Any]:
    """One row per (chunk, LSH band): the band key, the chunk, its hash and sketch."""
    keys, idx, norms, sigs = [], [], [], []
    for i, n, sig in zip(batch["idx"], batch["norm"], batch["sig"], strict=True):
        if not sig:
            continue
        hv = np.frombuffer(sig, dtype=np.uint64)
        for b, (lo, hi) in enumerate(ranges):
            keys.append(f"{b}:{hv[lo:hi].tobytes().hex()}")
            idx.append(int(i))
            norms.append(n)
            sigs.append(sig)
    return {"band": np.array(keys, dtype=object), "idx": np.array(idx, dtype=np.int64),
            "norm": np.array(norms, dtype=object), "sig": np.array(sigs, dtype=object)}  # fmt: skip


def _near_pairs(group: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Pairs ``(a < b)`` of one LSH bucket whose MinHash Jaccard reaches the threshold; of
    identical texts only the first takes part (the others are exact duplicates)."""
    first: dict[str, tuple[int, bytes]] = {}
    for i, n, sig in zip(group["idx"], group["norm"], group["sig"], strict=True):
        if str(n) not in first or int(i) < first[str(n)][0]:
            first[str(n)] = (int(i), sig)
    members = sorted(first.values())
    a_out, b_out = [], []
    if len(members) > 1:
        hv = [np.frombuffer(s, dtype=np.uint64) for _, s in members]
        for x in range(len(members)):
            for y in range(x + 1, len(members)):
                same = np.float64(np.count_nonzero(hv[x] == hv[y])) / np.float64(len(hv[x]))
                if same >= NEAR_DUP_THRESHOLD:
                    a_out.append(members[x][0])
                    b_out.append(members[y][0])
    return {"a": np.array(a_out, dtype=np.int64), "b": np.array(b_out, dtype=np.int64)}


def duplicate_groups_on_ray(
    ray: Any, texts: Sequence[str], workers: int, with_groups: bool = True
) -> tuple[tuple[list[int], list[int]], list[list[str]]]:
    """``((exact, near), terms)``: the groups of :func:`indexers.curate.duplicate_groups`,
    found with Ray Data, and each text's BM25 terms (``unicode-cjk-bigram`` analyzer)."""
    import pyarrow as pa

    n = len(texts)
    exact, near = list(range(n)), list(range(n))
    if not n:
        return (exact, near), []
    blocks = max(1, min(workers * 4, -(-n // CHUNKS_PER_BATCH)))
    parts = max(1, workers * 2)
    step = -(-n // blocks)
    tables = [
        pa.table({"idx": np.arange(s, min(n, s + step)), "text": list(texts[s : s + step])})
        for s in range(0, n, step)
    ]
    sk = (
        ray.data.from_arrow(tables)
        .map_batches(_sketch, fn_kwargs={"with_sketch": with_groups}, batch_size=None)
        .materialize()
    )
    terms: list[list[str]] = [[] for _ in range(n)]
    for batch in sk.select_columns(["idx", "terms"]).iter_batches(batch_format="numpy"):
        for i, t in zip(batch["idx"].tolist(), batch["terms"], strict=True):
            terms[i] = str(t).split(" ")
    if not with_groups:
        return (exact, near), terms
    dups = (
        sk.select_columns(["idx", "norm"])
        .groupby("norm", num_partitions=parts)
        .map_groups(_exact_group)
    )
    for batch in dups.iter_batches(batch_format="numpy"):
        for i, rep in zip(batch["idx"].tolist(), batch["rep"].tolist(), strict=True):
            exact[i] = rep
    pairs = (
        sk.select_columns(["idx", "norm", "sig"])
        .map_batches(_bands, fn_kwargs={"ranges": _lsh_ranges()}, batch_size=None)
        .groupby("band", num_partitions=parts)
        .map_groups(_near_pairs)
    )
    earlier: dict[int, set[int]] = {}
    for batch in pairs.iter_batches(batch_format="numpy"):
        for a, b in zip(batch["a"].tolist(), batch["b"].tolist(), strict=True):
            earlier.setdefault(b, set()).add(a)
            earlier.setdefault(a, set())
    # The greedy walk of MinHashLSH, in chunk order: a chunk matching an indexed one joins the
    # first such; one that matches none is indexed itself.
    indexed: set[int] = set()
    for i in sorted(earlier):
        match = [j for j in earlier[i] if j in indexed]
        if match:
            near[i] = min(match)
        else:
            indexed.add(i)
    near = [near[exact[i]] for i in range(n)]
    return (exact, near), terms


# -- stage 3: embed (and upsert into a Qdrant server) ------------------------------------------
class _Embed:
    """Ray actor: the embedder, loaded once; chunk texts in, vectors out."""

    def __init__(
        self,
        spec: str,
        device: str,
        fingerprint: str,
        model_batch: int,
        runtime_values: dict[str, Any],
        threads: int,
        qdrant: dict[str, Any] | None = None,
    ) -> None:
        from smallmodels.embedder import load_embedder
        from stores.errors import EmbedderMismatch

        _configure_runtime(runtime_values, threads)
        self.embedder = load_embedder(spec, device=device)
        if self.embedder.fingerprint != fingerprint:
            raise EmbedderMismatch(
                f"a Ray worker loaded {spec!r} as {self.embedder.fingerprint}, the driver as "
                f"{fingerprint}: install the same model on every node"
            )
        self.model_batch = model_batch
        self.qdrant = qdrant

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        t = time.perf_counter()
        rows = np.asarray(batch["row"], dtype=np.int64)
        need = np.asarray(batch["need"], dtype=bool)
        vectors = np.zeros((len(rows), self.embedder.dimension), dtype=np.float32)
        if "vector" in batch:
            vectors[:] = np.asarray(batch["vector"], dtype=np.float32)
        if need.any():
            texts = [str(t) for t in batch["text"][need]]
            vectors[need] = self.embedder.encode(texts, self.model_batch)
        busy = time.perf_counter() - t
        if self.qdrant is not None:
            _upsert(self.qdrant, rows, vectors, batch["payload"])
        return {
            "row": rows,
            "vector": vectors,
            "busy": np.full(len(rows), busy / max(1, len(rows))),
        }


def _upsert(q: dict[str, Any], rows: np.ndarray, vectors: np.ndarray, payloads: Any) -> None:
    """Points of one batch into the new version's collection, with the filter fields the
    local build adds (:meth:`stores.qdrant_store.QdrantStore.build`)."""
    from qdrant_client import models

    from stores.qdrant_store import filter_key, filter_text, server_client

    client = server_client(q["url"], q["api_key"])
    points = []
    for row, vec, raw in zip(rows.tolist(), vectors, payloads, strict=True):
        payload = json.loads(str(raw))
        for f in q["fields"]:
            text = filter_text(payload.get(f))
            if text is not None:
                payload[filter_key(f)] = text
        points.append(models.PointStruct(id=row, vector=vec.tolist(), payload=payload))
    client.upsert(q["collection"], points=points, wait=True)


@dataclass
class _RayVectors(VectorWriter):
    """The Ray engine's vectors and stores for :func:`indexers.builder.write_version`."""

    ray: Any
    plan: BuildPlan
    ropts: RayOptions
    workers: int
    terms: list[list[str]]
    engine: dict[str, Any]
    vectors_on_disk: bool = True
    busy_s: float = 0.0
    _thread: threading.Thread | None = None
    _error: BaseException | None = None
    _done: int = 0
    _qdrant: dict[str, Any] | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def manifest_extra(self) -> dict[str, Any]:
        return {"engine": self.engine}

    def embed_seconds(self) -> float:
        return self.busy_s

    def bm25(self, draft: Draft) -> BM25Index:
        """BM25 from the terms the curation step analysed on the workers (the same as
        ``BM25Index.build`` over the chunk texts)."""
        import bm25s

        index = BM25Index(None, len(self.terms), ANALYZER)
        if self.terms:
            model = bm25s.BM25(k1=K1, b=B)
            model.index([t or [""] for t in self.terms], show_progress=False)
            index.model = model
        return index

    def start(self, draft: Draft) -> None:
        opts = self.plan.opts
        rows = list(draft.todo)
        if self.plan.store_name == "qdrant" and opts.qdrant_url:
            self._qdrant = self._create_collection(draft)
            rows = list(range(len(draft.curated.kept)))  # every point goes through a worker
        if not rows:
            return
        self._thread = threading.Thread(
            target=self._run, args=(draft, rows), name="tandem-ray-embed", daemon=True
        )
        self._thread.start()

    def _dataset(self, draft: Draft, rows: list[int]) -> Any:
        import pyarrow as pa

        ray, kept = self.ray, draft.curated.kept
        rows = sorted(rows, key=lambda i: -len(kept[i].text))  # similar lengths batch together
        todo = set(draft.todo)
        cols: dict[str, Any] = {
            "row": np.asarray(rows, dtype=np.int64),
            "text": [kept[i].text for i in rows],
            "need": np.asarray([i in todo for i in rows], dtype=bool),
        }
        if self._qdrant is not None:
            from indexers.builder import chunk_payload

            cols["payload"] = [json.dumps(chunk_payload(i, kept[i])) for i in rows]
            vec = np.asarray(draft.vectors[rows], dtype=np.float32)
            cols["vector"] = pa.FixedSizeListArray.from_arrays(
                pa.array(vec.reshape(-1)), vec.shape[1]
            )
        table = pa.table(cols)
        # at least one block per worker; blocks of at most a batch
        size = max(1, min(self.ropts.batch_size, -(-len(rows) // self.workers)))
        return ray.data.from_arrow(
            [table.slice(s, size) for s in range(0, len(rows), size)]
        ).map_batches(
            _Embed,
            batch_size=size,
            compute=ray.data.ActorPoolStrategy(size=self.workers),
            num_cpus=self.ropts.cpus_per_worker,
            fn_constructor_kwargs={
                "spec": self.plan.embedder.spec,
                "device": self.plan.opts.device,
                "fingerprint": self.plan.embedder.fingerprint,
                "model_batch": self.plan.opts.batch_size,
                "runtime_values": _runtime_values(),
                "threads": self.ropts.cpus_per_worker,
                "qdrant": self._qdrant,
            },
        )

    def _run(self, draft: Draft, rows: list[int]) -> None:
        from indexers.builder import _notify

        try:
            ds = self._dataset(draft, rows)
            for batch in ds.iter_batches(batch_format="numpy", batch_size=None):
                if self._stop.is_set():
                    return
                idx = np.asarray(batch["row"], dtype=np.int64)
                draft.vectors[idx] = np.asarray(batch["vector"], dtype=np.float32)
                self.busy_s += float(np.sum(batch["busy"]))
                self._done += len(idx)
                _notify(
                    self.plan.opts,
                    documents=len(draft.curated.documents),
                    chunks_total=len(rows),
                    chunks_done=self._done,
                )
        except BaseException as exc:  # noqa: BLE001 - raised again by finish()
            self._error = exc

    def finish(self, draft: Draft) -> None:
        self._join()

    def _join(self) -> None:
        if self._thread is not None:
            while self._thread.is_alive():
                self._thread.join(0.2)
                if self.plan.opts.cancelled and self.plan.opts.cancelled():
                    self._stop.set()
                    self.plan.check_cancelled()
            self._thread = None
        if self._error is not None:
            raise self._error

    def vector_store(self, draft: Draft) -> dict[str, Any]:
        self._join()
        if self._qdrant is None:
            return super().vector_store(draft)  # FAISS trains on a sample of the memory map
        from stores.qdrant_store import QdrantStore

        q = self._qdrant
        store = QdrantStore(
            draft.staging,
            draft.plan.embedder.dimension,
            url=q["url"],
            api_key=q["api_key"],
            collection=q["collection"],
        )
        try:
            if store.count != len(draft.curated.kept):  # a shard was lost: publish nothing
                raise RuntimeError(
                    f"Qdrant collection {q['collection']} holds {store.count} points, "
                    f"not {len(draft.curated.kept)}"
                )
            store.filter_fields = frozenset(q["fields"])
            store.save()
            return store.params()
        finally:
            store.close()

    def _create_collection(self, draft: Draft) -> dict[str, Any]:
        """The new version's collection and its payload indexes, before any worker writes."""
        from stores.qdrant_store import MAX_PAYLOAD_INDEXES, QdrantStore, filter_fields_of

        so = dict(draft.store_options)
        payloads = so.pop("payloads")
        store = QdrantStore(draft.staging, draft.plan.embedder.dimension, create=True, **so)
        fields = filter_fields_of(payloads)
        for f in fields[:MAX_PAYLOAD_INDEXES]:
            from stores.qdrant_store import filter_key

            store.client.create_payload_index(
                store.collection, filter_key(f), store.models.PayloadSchemaType.KEYWORD, wait=True
            )
        store.close()
        return {
            "url": so["url"],
            "api_key": so["api_key"],
            "collection": store.collection,
            "fields": fields,
        }

    def abort(self, draft: Draft | None) -> None:
        self._stop.set()
        if self._qdrant is not None:
            from stores.qdrant_store import server_client

            try:
                server_client(self._qdrant["url"], self._qdrant["api_key"]).delete_collection(
                    self._qdrant["collection"]
                )
            except Exception as exc:  # noqa: BLE001 - the next build of this version replaces it
                log.warning("collection %s not deleted: %s", self._qdrant["collection"], exc)


def check_engine(engine: str) -> str:
    """``local`` or ``ray``; anything else is a :class:`UsageError`."""
    if engine not in ("local", "ray"):
        raise UsageError(f"unknown engine {engine!r}: choose local or ray")
    return engine

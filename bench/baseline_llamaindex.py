"""The same corpus and models through a plain llama-index pipeline, for side-by-side figures.

The pipeline is what a llama-index user would write: ``VectorStoreIndex`` over ``Document``
objects (one per SQuAD paragraph, the same as ``bench.retrieval`` indexes), split by llama-index's
``SentenceSplitter`` (chunk and overlap sizes as Tandem's benchmark build: 254 and 32 tokens),
embedded by ``HuggingFaceEmbedding`` pointed at the packaged MiniLM folder
(``smallmodels.spec.resolve(None).path``; batch 64, as Tandem), stored in a ``FaissVectorStore``
over an exact ``IndexFlatIP``, queried with ``as_retriever``. With a reranker spec,
``SentenceTransformerRerank`` re-orders the top ``rerank_candidates`` (the same model folder).
Document metadata is kept out of the embedded text, as Tandem embeds chunk text only.

:func:`run_llamaindex_baseline` builds it, evaluates it on the same sampled questions as
``bench.retrieval`` (same seed, same qrels, ranx), and measures single-query latency on a sample
of questions *interleaved* with Tandem's own retriever over the index the retrieval benchmark
built (one Tandem query, then the same llama-index query, and so on), so both see the same
machine load. :func:`threaded_throughput` drives the llama-index retriever with N concurrent
threads, for the serving comparison.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.retrieval import evaluate_runs
from smallmodels.spec import resolve
from training.squad import SquadQuestion, load_squad

CHUNK_TOKENS = 254
OVERLAP_TOKENS = 32
BATCH_SIZE = 64


def sample_questions(
    squad_file: Path, max_questions: int | None, seed: int
) -> tuple[list[SquadQuestion], list[SquadQuestion], dict[int, str]]:
    """``(all questions, sampled questions, paragraph -> doc id)`` exactly as bench.retrieval."""
    questions = [q for q in load_squad(squad_file) if q.question.strip()]
    doc_ids: dict[int, str] = {}
    for q in questions:
        if q.paragraph not in doc_ids:
            doc_ids[q.paragraph] = f"paragraphs.jsonl#L{len(doc_ids) + 1}"
    sample = list(questions)
    if max_questions and len(sample) > max_questions:
        sample = random.Random(seed).sample(sample, max_questions)
    return questions, sample, doc_ids


class LlamaIndexPipeline:
    """A plain llama-index retrieval pipeline (see the module docstring)."""

    def __init__(
        self,
        model_path: str | None = None,
        reranker_path: str | None = None,
        *,
        rerank_candidates: int = 20,
        device: str = "cpu",
    ) -> None:
        from llama_index.core.node_parser import SentenceSplitter
        from llama_index.embeddings.huggingface import HuggingFaceEmbedding

        self.model_path = model_path or resolve(None).path
        self.embed_model = HuggingFaceEmbedding(
            model_name=self.model_path, embed_batch_size=BATCH_SIZE, device=device
        )
        self.splitter = SentenceSplitter(chunk_size=CHUNK_TOKENS, chunk_overlap=OVERLAP_TOKENS)
        self.reranker: Any = None
        self.rerank_candidates = rerank_candidates
        if reranker_path:
            from llama_index.core.postprocessor import SentenceTransformerRerank

            self.reranker = SentenceTransformerRerank(model=reranker_path, top_n=10, device=device)
        self.index: Any = None
        self.nodes = 0

    def build(self, texts: Sequence[str], doc_ids: Sequence[str]) -> float:
        """Index ``texts`` (metadata ``doc_id``); returns the wall seconds it took."""
        import faiss
        from llama_index.core import Document, StorageContext, VectorStoreIndex
        from llama_index.vector_stores.faiss import FaissVectorStore

        docs = [
            Document(
                text=t,
                metadata={"doc_id": d},
                excluded_embed_metadata_keys=["doc_id"],
                excluded_llm_metadata_keys=["doc_id"],
            )
            for t, d in zip(texts, doc_ids, strict=True)
        ]
        started = time.perf_counter()
        dim = len(self.embed_model.get_text_embedding("dimension probe"))
        store = FaissVectorStore(faiss_index=faiss.IndexFlatIP(dim))
        context = StorageContext.from_defaults(vector_store=store)
        self.index = VectorStoreIndex.from_documents(
            docs,
            storage_context=context,
            embed_model=self.embed_model,
            transformations=[self.splitter],
        )
        seconds = time.perf_counter() - started
        self.nodes = int(store._faiss_index.ntotal)
        return seconds

    def retrieve(self, query: str, top_k: int = 100) -> list[str]:
        """Document ids, best first (a document's best chunk counts)."""
        nodes = self.index.as_retriever(similarity_top_k=top_k).retrieve(query)
        return list(dict.fromkeys(n.node.metadata["doc_id"] for n in nodes))

    def retrieve_rerank(self, query: str) -> list[str]:
        from llama_index.core.schema import QueryBundle

        nodes = self.index.as_retriever(similarity_top_k=self.rerank_candidates).retrieve(query)
        ranked = self.reranker.postprocess_nodes(nodes, query_bundle=QueryBundle(query))
        return list(dict.fromkeys(n.node.metadata["doc_id"] for n in ranked))


def _run(ids_per_query: Sequence[list[str]], qids: Sequence[str]) -> dict[str, dict[str, float]]:
    run: dict[str, dict[str, float]] = {}
    for qid, ids in zip(qids, ids_per_query, strict=True):
        run[qid] = {d: float(len(ids) - i) for i, d in enumerate(ids)}
    return run


def _stats(ms: Sequence[float]) -> dict[str, float]:
    ordered = sorted(ms)
    return {
        "n": len(ms),
        "p50": round(statistics.median(ordered), 2),
        "p95": round(ordered[max(0, round(0.95 * len(ordered)) - 1)], 2),
        "mean": round(statistics.fmean(ordered), 2),
    }


def run_llamaindex_baseline(
    squad_file: Path,
    *,
    tandem_data_dir: Path | None = None,
    tandem_index: str | None = None,
    tandem_indexes: dict[str, tuple[Path, str]] | None = None,
    max_questions: int | None = None,
    seed: int = 0,
    reranker_path: str | None = None,
    latency_queries: int = 100,
    log: Callable[[str], None] | None = None,
) -> tuple[dict[str, Any], LlamaIndexPipeline]:
    """Build, evaluate and time the llama-index pipeline; Tandem's latency beside it.

    With ``tandem_data_dir``/``tandem_index`` (the index ``bench.retrieval`` built over the same
    file), ``latency_ms`` holds Tandem's dense and hybrid single-query latency measured
    interleaved with llama-index's, and ``ratios`` Tandem / llama-index. ``tandem_indexes``
    (label -> (data_dir, index)) times several Tandem indexes (one per embedder backend, say)
    the same way, as ``tandem <label> dense``. The pipeline is returned too (for
    :func:`threaded_throughput`).
    """
    say = log or (lambda _m: None)
    questions, sample, doc_ids = sample_questions(squad_file, max_questions, seed)
    seen: set[int] = set()
    texts, ids = [], []
    for q in questions:
        if q.paragraph not in seen:
            seen.add(q.paragraph)
            texts.append(q.context)
            ids.append(doc_ids[q.paragraph])
    qrels = {q.id: {doc_ids[q.paragraph]: 1} for q in sample}
    qids = [q.id for q in sample]
    pipeline = LlamaIndexPipeline(reranker_path=reranker_path)
    say(f"llama-index: indexing {len(texts)} paragraphs of {squad_file.name}")
    build_s = pipeline.build(texts, ids)
    say(f"llama-index: built in {build_s:.1f}s ({pipeline.nodes} nodes); {len(sample)} queries")
    runs = {"llama-index dense": _run([pipeline.retrieve(q.question) for q in sample], qids)}
    if pipeline.reranker is not None:
        runs["llama-index +rerank"] = _run(
            [pipeline.retrieve_rerank(q.question) for q in sample], qids
        )
    quality = evaluate_runs(qrels, runs)

    timed = random.Random(seed + 1).sample(sample, min(latency_queries, len(sample)))
    latency: dict[str, list[float]] = {"llama-index": []}
    targets = dict(tandem_indexes or {})
    if tandem_data_dir is not None and tandem_index is not None:
        targets = {"": (tandem_data_dir, tandem_index), **targets}
    retrievers: dict[str, Any] = {}
    if targets:
        from retrievers.retriever import Retriever

        for label, (folder, name) in targets.items():
            retrievers[label] = Retriever(folder, name)
            retrievers[label].search("warm up", top_k=10, mode="hybrid")
    pipeline.retrieve("warm up", 10)
    for q in timed:
        for label, retriever in retrievers.items():
            for mode in ("dense", "hybrid"):
                t = time.perf_counter()
                retriever.search(q.question, top_k=10, mode=mode, rerank=False)
                key = " ".join(filter(None, ("tandem", label, mode)))
                latency.setdefault(key, []).append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        pipeline.retrieve(q.question, 10)
        latency["llama-index"].append((time.perf_counter() - t) * 1000)
    for retriever in retrievers.values():
        retriever.close()
    lat = {k: _stats(v) for k, v in latency.items() if v}
    ratios: dict[str, float] = {}
    for key in lat:
        if key.startswith("tandem "):
            label = key.removeprefix("tandem ").replace(" ", "_")
            ratios[f"latency_p50_{label}"] = round(lat[key]["p50"] / lat["llama-index"]["p50"], 3)
    result = {
        "set": squad_file.name,
        "questions": len(sample),
        "documents": len(texts),
        "nodes": pipeline.nodes,
        "build_s": round(build_s, 2),
        "methods": quality,
        "latency_ms": lat,
        "ratios": ratios,
        "pipeline": {
            "embed": f"HuggingFaceEmbedding({Path(pipeline.model_path).name}, batch {BATCH_SIZE})",
            "store": "FaissVectorStore(IndexFlatIP)",
            "splitter": f"SentenceSplitter({CHUNK_TOKENS}, {OVERLAP_TOKENS})",
            "reranker": f"SentenceTransformerRerank({Path(reranker_path).name}, "
            f"{pipeline.rerank_candidates} candidates)"
            if reranker_path
            else None,
        },
    }
    return result, pipeline


def threaded_throughput(
    retrieve: Callable[[str], Any],
    queries: Sequence[str],
    clients: int,
    *,
    max_seconds: float = 30.0,
) -> dict[str, Any]:
    """Requests per second (and p50/p95 ms) of ``retrieve`` called by ``clients`` threads."""
    latencies: list[float] = []
    deadline = time.perf_counter() + max_seconds
    it = iter(queries)

    def worker() -> None:
        while time.perf_counter() < deadline:
            try:
                q = next(it)
            except StopIteration:
                return
            t = time.perf_counter()
            retrieve(q)
            latencies.append((time.perf_counter() - t) * 1000)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for f in [pool.submit(worker) for _ in range(clients)]:
            f.result()
    seconds = time.perf_counter() - started
    return {
        "clients": clients,
        "requests": len(latencies),
        "seconds": round(seconds, 2),
        "rps": round(len(latencies) / seconds, 1) if seconds else 0.0,
        **{k: v for k, v in _stats(latencies).items() if k != "n"},
    }

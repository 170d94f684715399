"""Retrieval quality and build throughput on a SQuAD-format file.

Each paragraph is one document; a question's one relevant document is its paragraph. Metrics
(nDCG@10, Recall@10, Recall@100, MRR@10) come from ranx. The build's chunk rate is reported
beside the raw encode rate of the same model on the same texts, measured in the same run.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from indexers.builder import BuildOptions, run_build
from retrievers.retriever import Retriever
from training.squad import SquadQuestion, load_squad

METRICS = ["ndcg@10", "recall@10", "recall@100", "mrr@10"]
BASE_METHODS = ("bm25", "dense", "hybrid", "hybrid-rrf")


def write_corpus(questions: Sequence[SquadQuestion], folder: Path) -> tuple[Path, dict[int, str]]:
    """One JSONL line per paragraph; returns the file and paragraph index -> doc id."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "paragraphs.jsonl"
    doc_ids: dict[int, str] = {}
    with path.open("w", encoding="utf-8") as fh:
        line = 0
        for q in questions:
            if q.paragraph in doc_ids:
                continue
            line += 1
            doc_ids[q.paragraph] = f"paragraphs.jsonl#L{line}"
            fh.write(json.dumps({"text": q.context, "title": q.title}) + "\n")
    return path, doc_ids


def evaluate_runs(
    qrels: dict[str, dict[str, int]], runs: dict[str, dict[str, dict[str, float]]]
) -> dict[str, dict[str, float]]:
    from ranx import Qrels, Run, evaluate

    q = Qrels(qrels)
    out: dict[str, dict[str, float]] = {}
    for method, run in runs.items():
        # ranx wants every query present; empty runs score 0.
        full = {qid: run.get(qid) or {"__none__": 0.0} for qid in qrels}
        scores = evaluate(q, Run(full), METRICS)
        out[method] = {m: round(float(scores[m]), 4) for m in METRICS}
    return out


def doc_run(results: Sequence[Any], qids: Sequence[str]) -> dict[str, dict[str, float]]:
    """Chunk hits to document scores (a document's best chunk), rank order preserved."""
    run: dict[str, dict[str, float]] = {}
    for qid, res in zip(qids, results, strict=True):
        docs: dict[str, float] = {}
        n = len(res.hits)
        for i, hit in enumerate(res.hits):
            docs.setdefault(hit.doc_id, float(n - i))  # rank-based: robust for any score scale
        run[qid] = docs
    return run


def run_retrieval_bench(
    squad_file: Path,
    *,
    max_questions: int | None = None,
    seed: int = 0,
    model: str | None = None,
    reranker: Any = None,
    data_dir: Path | None = None,
    methods: Sequence[str] = BASE_METHODS,
    extra_methods: dict[str, Callable[[Retriever, list[str]], list[Any]]] | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Build an index of ``squad_file``'s paragraphs and evaluate its questions."""
    questions = [q for q in load_squad(squad_file) if q.question.strip()]
    with tempfile.TemporaryDirectory(prefix="tandem-bench-") as tmp:
        root = data_dir or Path(tmp)
        corpus, doc_ids = write_corpus(questions, Path(tmp) / "corpus")
        sample = list(questions)
        if max_questions and len(sample) > max_questions:
            sample = random.Random(seed).sample(sample, max_questions)
        qids = [q.id for q in sample]
        texts = [q.question for q in sample]
        qrels = {q.id: {doc_ids[q.paragraph]: 1} for q in sample}
        if log:
            log(f"indexing {len(doc_ids)} paragraphs of {squad_file.name}")
        name = "bench-" + squad_file.stem.replace(".", "-")
        build = run_build(
            root, name, [corpus], "build", BuildOptions(model=model, dedup=False, chunk_tokens=254)
        )
        retriever = Retriever(root, name, reranker=reranker, candidates=100)
        raw = raw_encode_rate(retriever, Path(root), name)
        runs: dict[str, dict[str, dict[str, float]]] = {}
        timings: dict[str, float] = {}
        for method in methods:
            t = time.perf_counter()
            res = _search_all(retriever, texts, method)
            timings[method] = round((time.perf_counter() - t) * 1000 / max(1, len(texts)), 2)
            runs[method] = doc_run(res, qids)
            if log:
                log(f"{method}: {timings[method]} ms/query")
        for label, fn in (extra_methods or {}).items():
            t = time.perf_counter()
            res = fn(retriever, texts)
            timings[label] = round((time.perf_counter() - t) * 1000 / max(1, len(texts)), 2)
            runs[label] = doc_run(res, qids)
            if log:
                log(f"{label}: {timings[label]} ms/query")
        retriever.close()
    chunks_per_s = build.chunks / build.seconds if build.seconds else 0.0
    return {
        "set": squad_file.name,
        "questions": len(sample),
        "documents": len(doc_ids),
        "methods": evaluate_runs(qrels, runs),
        "ms_per_query": timings,
        "build": {
            "chunks": build.chunks,
            "seconds": round(build.seconds, 2),
            "chunks_per_s": round(chunks_per_s, 2),
            "raw_encode_per_s": round(raw, 2),
            "ratio": round(chunks_per_s / raw, 3) if raw else None,
        },
    }


def _search_all(retriever: Retriever, texts: list[str], mode: str) -> list[Any]:
    """Top 100 of every text; ``hybrid-rrf`` is hybrid with reciprocal rank fusion (k = 60)."""
    previous = retriever.fusion
    if mode == "hybrid-rrf":
        retriever.fusion, mode = "rrf", "hybrid"
    out = []
    try:
        for start in range(0, len(texts), 256):
            batch = texts[start : start + 256]
            out.extend(retriever.search_many(batch, top_k=100, mode=mode, rerank=False))
    finally:
        retriever.fusion = previous
    return out


def raw_encode_rate(retriever: Retriever, root: Path, name: str) -> float:
    """Texts/s of a plain ``SentenceTransformer.encode`` over the index's own chunk texts."""
    texts = retriever.snapshot.chunks.texts()
    model = retriever.embedder.model
    t = time.perf_counter()
    model.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
    seconds = time.perf_counter() - t
    return len(texts) / seconds if seconds else 0.0

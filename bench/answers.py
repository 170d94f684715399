"""Answer quality on a SQuAD-format file, from *retrieved* passages.

Every paragraph of the file becomes a document of a fresh index (as in
:mod:`bench.retrieval`); each sampled question is searched (hybrid, top_k passages, reranked
when a reranker is given) and answered by :class:`app.answers.service.AnswerService` in
``small`` or ``llm`` mode, exactly as the service answers it. Figures:

* ``exact_match`` and ``f1`` (SQuAD metrics, :mod:`training.squad`) over *all*
  questions, an abstention ("no answer found") counting 0; ``f1_answered`` over the answered
  ones only;
* ``cited_gold``: the share of answered questions whose citations include the gold paragraph;
* ``abstentions`` and ``abstention_rate``; ``retrieval_recall``: the share of questions whose
  gold paragraph was among the passages given (the ceiling of any answerer);
* latency per question (search + answer): p50, p95, mean;
* ``coverage``: for small mode, F1 and coverage of the answers whose confidence reaches each
  threshold (how to set ``TANDEM_SMALL_MIN_CONFIDENCE`` and ``TANDEM_SMALL_CONFIDENT``).

The prediction scored is the extracted span in small mode and the answer text without its
citation markers in llm mode.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.retrieval import write_corpus
from training.squad import exact_match, f1_score, load_squad

THRESHOLDS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[k]


def run_answers_bench(
    squad_file: Path,
    *,
    max_questions: int | None = 300,
    seed: int = 0,
    mode: str = "small",
    top_k: int | None = None,
    reader: str | None = None,
    reranker: Any = None,
    model: str | None = None,
    settings: Any = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Build an index of ``squad_file``'s paragraphs and answer a sample of its questions."""
    from app.answers.service import load_answer_service
    from app.settings import get_settings
    from indexers.builder import BuildOptions, run_build
    from retrievers.retriever import Retriever

    if mode not in ("small", "llm"):
        raise ValueError("mode must be small or llm")
    settings = settings or get_settings()
    if reader is not None:
        settings = settings.model_copy(update={"reader": reader})
    k = top_k or settings.ask_top_k
    settings = settings.model_copy(update={"ask_top_k": k})
    questions = load_squad(squad_file)
    sample = [q for q in questions if q.question.strip() and q.answers]
    if max_questions and len(sample) > max_questions:
        sample = random.Random(seed).sample(sample, max_questions)
    with tempfile.TemporaryDirectory(prefix="tandem-bench-answers-") as tmp:
        root = Path(tmp)
        corpus, doc_ids = write_corpus(questions, root / "corpus")
        if log:
            log(f"indexing {len(doc_ids)} paragraphs of {squad_file.name}")
        name = "bench-" + squad_file.stem.replace(".", "-")
        run_build(
            root / "data",
            name,
            [corpus],
            "build",
            BuildOptions(model=model, dedup=False, chunk_tokens=254),
        )
        retriever = Retriever(
            root / "data", name, reranker=reranker, **settings.retriever_options()
        )
        service = load_answer_service(settings, reranker=reranker, embedder=retriever.embedder)
        if log:
            log(f"answering {len(sample)} questions ({mode}; {service.small.describe()})")
        try:
            rows = asyncio.run(_answer_all(retriever, service, sample, mode, k, log))
        finally:
            retriever.close()
    return _figures(squad_file, sample, doc_ids, rows, mode, k, service, settings)


async def _answer_all(
    retriever: Any,
    service: Any,
    sample: list[Any],
    mode: str,
    k: int,
    log: Callable[[str], None] | None,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    try:
        for start in range(0, len(sample), 64):
            batch = sample[start : start + 64]
            t = time.perf_counter()
            results = retriever.search_many([q.question for q in batch], top_k=k, mode="hybrid")
            search_ms = (time.perf_counter() - t) * 1000 / len(batch)
            for q, res in zip(batch, results, strict=True):
                t = time.perf_counter()
                answer = await service.answer(
                    q.question,
                    res.hits,
                    index=res.index,
                    version=res.version,
                    mode=mode,
                    embedder=retriever.embedder,
                    offload=_inline,
                )
                out = answer.as_dict()
                out["latency_ms"] = search_ms + (time.perf_counter() - t) * 1000
                out["given_docs"] = [h.doc_id for h in res.hits]
                rows.append(out)
            if log:
                log(f"{len(rows)}/{len(sample)} answered")
    finally:
        await service.aclose()
    return rows


async def _inline(fn: Callable[..., Any], *args: Any) -> Any:
    """Run model calls in the benchmark's own thread (no concurrency to gain, no overhead)."""
    return fn(*args)


def _prediction(row: dict[str, Any], mode: str, answered_only: bool = True) -> str:
    from app.answers.citations import MARKER_RE

    extract = row.get("extract")
    if row["served_by"] == "small" or mode == "small":
        if not extract or (answered_only and not extract.get("found")):
            return ""
        return str(extract.get("span") or "")
    return " ".join(MARKER_RE.sub("", row["answer"]).split())


def _figures(
    squad_file: Path,
    sample: list[Any],
    doc_ids: dict[int, str],
    rows: list[dict[str, Any]],
    mode: str,
    k: int,
    service: Any,
    settings: Any,
) -> dict[str, Any]:
    n = len(rows)
    em = f1 = 0.0
    answered_f1: list[float] = []
    cited_gold = recall = abstain = 0
    for q, row in zip(sample, rows, strict=True):
        gold = doc_ids[q.paragraph]
        pred = _prediction(row, mode)
        found = bool(pred)
        recall += gold in row["given_docs"]
        if not found:
            abstain += 1
            continue
        em += exact_match(pred, q.answers)
        score = f1_score(pred, q.answers)
        f1 += score
        answered_f1.append(score)
        cited_gold += any(c["doc_id"] == gold for c in row["citations"])
    coverage = []
    if mode == "small":
        guesses = [
            (float(row["confidence"] or 0.0), f1_score(_prediction(row, mode, False), q.answers))
            for q, row in zip(sample, rows, strict=True)
        ]
        for threshold in THRESHOLDS:
            kept = [s for c, s in guesses if c >= threshold]
            coverage.append(
                {
                    "threshold": threshold,
                    "coverage": round(len(kept) / n, 4) if n else 0.0,
                    "f1": round(sum(kept) / len(kept), 4) if kept else 0.0,
                }
            )
    latencies = [row["latency_ms"] for row in rows]
    answered = n - abstain
    return {
        "set": squad_file.name,
        "mode": mode,
        "questions": n,
        "documents": len(doc_ids),
        "top_k": k,
        "answerer": service.small.describe() if mode == "small" else service.llm.detail,
        "exact_match": round(em / n, 4) if n else 0.0,
        "f1": round(f1 / n, 4) if n else 0.0,
        "f1_answered": round(sum(answered_f1) / answered, 4) if answered else 0.0,
        "cited_gold": round(cited_gold / answered, 4) if answered else 0.0,
        "abstentions": abstain,
        "abstention_rate": round(abstain / n, 4) if n else 0.0,
        "min_confidence": settings.small_min_confidence,
        "retrieval_recall": round(recall / n, 4) if n else 0.0,
        "latency_ms": {
            "p50": round(_percentile(latencies, 0.5), 1),
            "p95": round(_percentile(latencies, 0.95), 1),
            "mean": round(statistics.fmean(latencies), 1) if latencies else 0.0,
        },
        "served_by": dict(Counter(row["served_by"] for row in rows)),
        "reasons": dict(Counter(row["reason"] for row in rows)),
        "coverage": coverage,
    }


def format_table(result: dict[str, Any]) -> str:
    """The benchmark as a few human lines."""
    lat = result["latency_ms"]
    lines = [
        f"{result['set']}: {result['questions']} questions, {result['documents']} documents, "
        f"mode {result['mode']}, top {result['top_k']} passages ({result['answerer']})",
        f"EM {result['exact_match']:.4f}  F1 {result['f1']:.4f}  "
        f"(answered: F1 {result['f1_answered']:.4f})",
        f"cited gold paragraph {result['cited_gold']:.4f} of answered; "
        f"abstained {result['abstentions']} ({result['abstention_rate']:.2%}) "
        f"below {result['min_confidence']}",
        f"gold paragraph among the passages given: {result['retrieval_recall']:.4f}",
        f"latency per question: p50 {lat['p50']} ms, p95 {lat['p95']} ms, mean {lat['mean']} ms",
    ]
    if result["coverage"]:
        lines.append("confidence >= t: coverage / F1")
        lines.append(
            "  "
            + "  ".join(
                f"{c['threshold']:.1f}: {c['coverage']:.2f}/{c['f1']:.2f}"
                for c in result["coverage"]
            )
        )
    return "\n".join(lines)

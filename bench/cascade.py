"""The cascade measured: small and large answers side by side, and what routing between them buys.

**The oracle table** (:func:`build_table`): every paragraph of a SQuAD-format file becomes a
document of one index (as in :mod:`bench.answers`); for each sampled question the same retrieved
passages are answered twice by :class:`app.answers.service.AnswerService`, once in ``small``
mode and once in ``llm`` mode, exactly as the service answers them. One JSONL row per question
records both answers, their EM/F1 and rightness against the references, the small answer's
confidence, the checker's scores of the LLM answer (as configured, the cross-encoder alone, and
per sentence), the reader's score of it, and each answer's cost: wall seconds, CPU seconds (of
this process for the small answer, of the llama.cpp child for an in-process LLM; ``None`` for a
remote endpoint), LLM prompt and completion tokens, and the chat messages sent (the oracle
prompts, which :func:`run_speculative` replays). A later run with the same table file reuses the
rows of the questions it already holds and answers only the missing ones.

**The analysis** (:func:`analyse`), from the table alone, in the definitions of RouteLLM (Ong et
al., 2024):

* the *weak* model is the small answer, the *strong* one the LLM; a router sends a question to
  the LLM or not. ``auto`` is the service's own rule (:func:`app.answers.router.plan_route`):
  the LLM when the small answer abstained or its confidence is below the threshold. Its cost per
  question is the small answer's (always computed first) plus, when escalated, the LLM's and the
  check of the LLM answer;
* **curve**: F1, LLM-call share and mean cost of ``auto`` as the threshold sweeps, beside
  always-small, always-LLM and a *random* router at the same LLM share (its expected F1 and cost:
  ``(1 - s) * small + s * llm`` per question; it needs no small answer to route);
* **PGR** at an LLM-call share ``c`` = (F1(c) - F1(small)) / (F1(llm) - F1(small)), the
  questions escalated in the router's order (abstentions first, then by rising confidence);
  **APGR** = its area over ``c`` in [0, 1] (trapezoids over every ``k/n``). It is ``None`` when
  the LLM is not better than the small answer (no gain to recover);
* **llm_share_for_95**: the least LLM-call share whose F1 reaches 95% of always-LLM's (0 when
  always-small already does);
* the **threshold** is chosen on a calibration split (questions halved by article title, as in
  ``bench answers --split``): the one with the best F1 there, ties to the lower LLM share; the
  figures reported at the top level are those of the other (test) split, with 95% bootstrap
  intervals over its questions;
* **checker on real LLM answers**: ROC AUC of the checker's score (as configured, and the
  cross-encoder alone, and checker + reader) at telling right LLM answers from wrong ones, and
  the precision of its "unsupported" flags at the service threshold; sentence by sentence for
  multi-sentence answers (a sentence is right when it holds a reference answer);
* **ungrounded policies** (``TANDEM_UNGROUNDED``): F1 and wrong answers served when every LLM
  answer is kept and flagged (``flag``), stripped of its unsupported sentences (``drop``; the
  small answer when none is left), or replaced by the small answer when its score is under the
  threshold (``fallback``);
* **cost model**: LLM seconds against prompt tokens (least squares) and the mean completion,
  which the service uses to estimate what a small answer saved (``app/answers/llm_cost.json``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from bench.answers import in_split, is_right
from bench.retrieval import write_corpus
from core.errors import NotConfigured
from training.squad import exact_match, f1_score, load_squad

TABLE_VERSION = 1
#: Bootstrap resamples of the test split.
BOOTSTRAP = 1000
Row = dict[str, Any]


# -- the table -----------------------------------------------------------------------------------
def default_table_path(squad_file: Path, llm_name: str) -> Path:
    """``bench/results/cascade-<set>-<llm>.jsonl``."""
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in llm_name)[:60]
    stem = squad_file.stem.replace(".", "-")
    return Path("bench/results") / f"cascade-{stem}-{safe}.jsonl"


def read_table(path: Path) -> list[Row]:
    """The rows of a table (an absent file: none)."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            if row.get("v") == TABLE_VERSION:
                rows.append(row)
    return rows


def _prediction(answer: str) -> str:
    """An LLM answer as a prediction: markers stripped; an abstention is no prediction."""
    from app.answers.citations import MARKER_RE
    from app.answers.service import is_abstention

    text = " ".join(MARKER_RE.sub("", answer).split())
    return "" if not text or is_abstention(text) else text


def _scores(pred: str, golds: Sequence[str]) -> dict[str, Any]:
    golds = tuple(golds)
    return {
        "em": float(exact_match(pred, golds)) if pred else 0.0,
        "f1": round(f1_score(pred, golds), 4) if pred else 0.0,
        "right": is_right(pred, golds),
    }


def _child_cpu_s(service: Any) -> float | None:
    """CPU seconds used so far by the in-process LLM's child (None: a remote LLM)."""
    gen = service.llm.generator
    pid = getattr(getattr(gen, "supervisor", None), "pid", None)
    if pid is None:
        return None
    try:
        import psutil

        t = psutil.Process(pid).cpu_times()
        return float(t.user + t.system)
    except Exception:  # noqa: BLE001 - a cost figure, never a failure
        return None


def build_table(
    squad_file: Path,
    table: Path,
    settings: Any,
    *,
    max_questions: int | None = 100,
    seed: int = 0,
    index_dir: Path | None = None,
    refresh: bool = False,
    log: Callable[[str], None] | None = None,
) -> list[Row]:
    """Answer the sampled questions of ``squad_file`` in both modes and append the rows that
    ``table`` does not hold yet; returns the table's rows for the sample (in sample order).

    ``refresh``: the held rows of the sample are answered again in small mode and their LLM
    answers checked again, with the reader and checker configured now (a new model); their LLM
    answers (the expensive part) are kept, and no LLM is needed for them.
    """
    from app.answers.service import load_answer_service
    from indexers.builder import BuildOptions, run_build
    from retrievers.retriever import Retriever
    from stores.layout import IndexLayout

    questions = load_squad(squad_file)
    sample = [q for q in questions if q.question.strip() and q.answers]
    if max_questions and len(sample) > max_questions:
        sample = random.Random(seed).sample(sample, max_questions)
    have = {r["id"]: r for r in read_table(table)}
    todo = [q for q in sample if q.id not in have]
    if log:
        log(f"{table}: {len(have)} rows held, {len(todo)} questions to answer")
    again = [q for q in sample if q.id in have] if refresh else []
    if todo or again:
        table.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="tandem-bench-cascade-") as tmp:
            root = Path(tmp)
            corpus, _ = write_corpus(questions, root / "corpus")
            name = "bench-" + squad_file.stem.replace(".", "-")
            data = Path(index_dir) if index_dir else root / "data"
            if not (index_dir and IndexLayout(data, name).exists()):
                if log:
                    log(f"indexing the paragraphs of {squad_file.name}")
                run_build(
                    data, name, [corpus], "build",
                    BuildOptions(dedup=False, chunk_tokens=254),
                )  # fmt: skip
            reranker = None
            if settings.reranker:
                from smallmodels.reranker import load_reranker

                reranker = load_reranker(settings.reranker)
            options = settings.retriever_options()
            retriever = Retriever(data, name, reranker=reranker, **options)
            service = load_answer_service(settings, reranker=reranker, embedder=retriever.embedder)
            if todo and not service.llm.ready:
                retriever.close()
                raise NotConfigured(f"no usable LLM for the new rows: {service.llm.detail}")
            try:
                for q in again:
                    have[q.id] = asyncio.run(_refresh(retriever, service, q, have[q.id], settings))
                if again:
                    rows = list(have.values())
                    table.write_text("".join(json.dumps(r) + "\n" for r in rows))
                    if log:
                        log(f"{len(again)} held rows refreshed ({service.small.describe()})")
                with table.open("a", encoding="utf-8") as out:
                    for i, q in enumerate(todo, 1):
                        row = asyncio.run(_answer_both(retriever, service, q, settings))
                        out.write(json.dumps(row) + "\n")
                        out.flush()
                        have[q.id] = row
                        if log and (i % 10 == 0 or i == len(todo)):
                            log(f"{i}/{len(todo)} questions answered in both modes")
            finally:
                retriever.close()
                asyncio.run(service.aclose())
    return [have[q.id] for q in sample if q.id in have]


async def _inline(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


async def _small_side(retriever: Any, service: Any, q: Any, settings: Any) -> tuple[Any, Row]:
    """Search, and the small answer's part of a row."""
    t = time.perf_counter()
    res = retriever.search_many([q.question], top_k=settings.ask_top_k, mode="hybrid")[0]
    search_s = time.perf_counter() - t
    common = {"index": res.index, "version": res.version, "offload": _inline}
    cpu, t = time.process_time(), time.perf_counter()
    small = await service.answer(
        q.question, res.hits, mode="small", embedder=retriever.embedder, **common
    )
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    span = (small.extract or {}).get("span") or ""
    pred = span if small.served_by == "small" and (small.extract or {}).get("found") else ""
    side = {
        "answer": small.answer,
        "span": span,
        "found": bool(pred),
        "confidence": float(small.confidence or 0.0),
        **_scores(pred, q.answers),
        "wall_s": round(wall, 4),
        "cpu_s": round(cpu, 4),
        "describe": service.small.describe(),
    }
    return res, {"search_s": round(search_s, 4), "small": side}


async def _refresh(retriever: Any, service: Any, q: Any, row: Row, settings: Any) -> Row:
    """A held row with a new small answer and new checks of its (kept) LLM answer."""
    _, part = await _small_side(retriever, service, q, settings)
    row = {**row, **part, "llm": dict(row["llm"])}
    row["llm"].update(
        _check_scores(service, q.question, row["llm"]["answer"], row["passages"], settings)
    )
    return row


async def _answer_both(retriever: Any, service: Any, q: Any, settings: Any) -> Row:
    from app.answers.prompt import build_prompt, number_passages

    res, part = await _small_side(retriever, service, q, settings)
    common = {"index": res.index, "version": res.version, "offload": _inline}
    common["embedder"] = retriever.embedder
    gen = service.llm.generator
    passages = number_passages(res.hits)
    prompt = build_prompt(
        q.question, passages, gen.count_tokens, gen.context_tokens, settings.llm_max_tokens
    )
    child = _child_cpu_s(service)
    llm = await service.answer(q.question, res.hits, mode="llm", **common)
    child_after = _child_cpu_s(service)
    timings = llm.timings_ms
    llm_pred = _prediction(llm.answer) if llm.served_by == "llm" else ""
    texts = [p.text for p in prompt.passages]
    row: Row = {
        "v": TABLE_VERSION,
        "id": q.id,
        "title": q.title,
        "question": q.question,
        "golds": list(q.answers),
        "passages": texts,
        **part,
        "llm": {
            "answer": llm.answer,
            "served_by": llm.served_by,
            "reason": llm.reason,
            "model": llm.model,
            "abstained": llm.served_by == "llm" and not llm_pred,
            **_scores(llm_pred, q.answers),
            "wall_s": round((timings.get("llm", 0.0) + timings.get("prompt", 0.0)) / 1000, 4),
            "first_token_s": round(timings.get("llm_first_token", 0.0) / 1000, 4),
            "check_s": round(timings.get("check", 0.0) / 1000, 4),
            "cpu_s": None
            if child is None or child_after is None
            else round(child_after - child, 4),
            "prompt_tokens": llm.usage.get("prompt_tokens", prompt.prompt_tokens),
            "completion_tokens": llm.usage.get("completion_tokens", 0),
            "messages": prompt.messages,
            "grounded": llm.grounded,
        },
    }
    row["llm"].update(_check_scores(service, q.question, llm.answer, texts, settings))
    return row


def _check_scores(
    service: Any, question: str, answer: str, passages: list[str], settings: Any
) -> dict[str, Any]:
    """The checker's scores of an LLM answer: as configured (``check_score``, per sentence),
    the cross-encoder alone (``ce_score``) and blended with a reader (``blend_score``); the
    reader's own score of the answer (``reader_score``, short answers only)."""
    checker = service.checker
    out: dict[str, Any] = {
        "check_score": None, "ce_score": None, "blend_score": None, "reader_score": None,
        "sentences": [],
    }  # fmt: skip
    pred = _prediction(answer)
    if checker is None or not pred:
        return out
    thr = settings.checker_threshold
    g = checker.check(question, answer, passages, None, thr)
    out["check_score"] = round(g.score, 4)
    out["sentences"] = [[c.text, round(c.score, 4)] for c in g.sentences]
    reader = getattr(checker, "reader", None) or service.small.reader
    saved = checker.reader, checker.reader_weight
    try:
        checker.reader, checker.reader_weight = None, 0.0
        out["ce_score"] = round(checker.check(question, answer, passages, None, thr).score, 4)
        if reader is not None and hasattr(reader, "score_answer"):
            checker.reader, checker.reader_weight = reader, saved[1] or 0.5
            out["blend_score"] = round(
                checker.check(question, answer, passages, None, thr).score, 4
            )
            if len(pred.split()) <= 30:
                out["reader_score"] = round(
                    max(float(reader.score_answer(question, p, pred)) for p in passages), 4
                )
    finally:
        checker.reader, checker.reader_weight = saved
    return out


# -- costs ---------------------------------------------------------------------------------------
def small_cost(row: Row) -> float:
    return float(row["small"]["wall_s"])


def llm_cost(row: Row) -> float:
    """Seconds of the LLM path: the prompt, the generation and the check of its answer."""
    return float(row["llm"]["wall_s"]) + float(row["llm"].get("check_s") or 0.0)


def escalate(row: Row, threshold: float) -> bool:
    """``auto``'s rule (:func:`app.answers.router.plan_route`): the LLM when the small answer
    abstained or is less confident than ``threshold``."""
    s = row["small"]
    return not s["found"] or s["confidence"] < threshold


def _mean(values: Iterable[float]) -> float:
    v = list(values)
    return statistics.fmean(v) if v else 0.0


def route_figures(rows: Sequence[Row], threshold: float) -> dict[str, float]:
    """F1, EM, LLM share and mean cost of ``auto`` at ``threshold``."""
    f1, em, right, cost, share = [], [], [], [], []
    for r in rows:
        up = escalate(r, threshold)
        side = r["llm"] if up else r["small"]
        f1.append(side["f1"])
        em.append(side["em"])
        right.append(float(side["right"]))
        cost.append(small_cost(r) + (llm_cost(r) if up else 0.0))
        share.append(1.0 if up else 0.0)
    return {
        "threshold": threshold,
        "f1": round(_mean(f1), 4),
        "em": round(_mean(em), 4),
        "right": round(_mean(right), 4),
        "llm_share": round(_mean(share), 4),
        "cost_s": round(_mean(cost), 4),
    }


def baseline(rows: Sequence[Row], side: str) -> dict[str, float]:
    """Always-small or always-LLM."""
    cost = small_cost if side == "small" else llm_cost
    return {
        "f1": round(_mean(r[side]["f1"] for r in rows), 4),
        "em": round(_mean(r[side]["em"] for r in rows), 4),
        "right": round(_mean(float(r[side]["right"]) for r in rows), 4),
        "cost_s": round(_mean(cost(r) for r in rows), 4),
    }


def random_router(rows: Sequence[Row], share: float) -> dict[str, float]:
    """The expected F1 and cost of a router that sends a random ``share`` to the LLM."""
    return {
        "llm_share": round(share, 4),
        "f1": round(
            _mean((1 - share) * r["small"]["f1"] + share * r["llm"]["f1"] for r in rows), 4
        ),
        "cost_s": round(_mean((1 - share) * small_cost(r) + share * llm_cost(r) for r in rows), 4),
    }


def thresholds(rows: Sequence[Row]) -> list[float]:
    """Every threshold at which ``auto`` changes: 0, each small confidence, and above 1."""
    values = {0.0, 1.01}
    values.update(round(r["small"]["confidence"], 4) for r in rows if r["small"]["found"])
    values.update(round(r["small"]["confidence"] + 1e-4, 4) for r in rows if r["small"]["found"])
    return sorted(v for v in values if v <= 1.01)


def curve(rows: Sequence[Row]) -> list[dict[str, float]]:
    """``auto`` as its threshold sweeps, each point beside the random router at its share."""
    out = []
    for t in thresholds(rows):
        point = route_figures(rows, t)
        point["random_f1"] = random_router(rows, point["llm_share"])["f1"]
        out.append(point)
    return out


def escalation_order(rows: Sequence[Row]) -> list[int]:
    """The router's order: abstentions first, then by rising confidence."""
    return sorted(
        range(len(rows)),
        key=lambda i: (rows[i]["small"]["found"], rows[i]["small"]["confidence"]),
    )


def share_curve(rows: Sequence[Row]) -> list[tuple[float, float]]:
    """``(share, F1)`` with the first ``k`` questions of :func:`escalation_order` escalated,
    for ``k = 0..n``."""
    n = len(rows)
    if not n:
        return []
    total = sum(r["small"]["f1"] for r in rows)
    out = [(0.0, total / n)]
    for k, i in enumerate(escalation_order(rows), 1):
        total += rows[i]["llm"]["f1"] - rows[i]["small"]["f1"]
        out.append((k / n, total / n))
    return out


def apgr(rows: Sequence[Row]) -> float | None:
    """RouteLLM's APGR: the area under PGR(c) over the LLM-call share c in [0, 1]; None when
    the LLM is not better than the small answer."""
    points = share_curve(rows)
    if not points:
        return None
    weak, strong = points[0][1], points[-1][1]
    if strong - weak <= 1e-9:
        return None
    pgr = [(c, (f - weak) / (strong - weak)) for c, f in points]
    area = sum((c2 - c1) * (p1 + p2) / 2 for (c1, p1), (c2, p2) in itertools.pairwise(pgr))
    return round(area, 4)


def llm_share_for(rows: Sequence[Row], fraction: float = 0.95) -> float | None:
    """The least LLM-call share whose F1 reaches ``fraction`` of always-LLM's."""
    points = share_curve(rows)
    if not points:
        return None
    target = fraction * points[-1][1]
    for c, f in points:
        if f >= target - 1e-12:
            return round(c, 4)
    return 1.0


def choose_threshold(rows: Sequence[Row]) -> float:
    """The threshold with the best F1 on ``rows`` (ties: the lower LLM share)."""
    best = max(
        (route_figures(rows, t) for t in thresholds(rows)),
        key=lambda p: (p["f1"], -p["llm_share"], -p["threshold"]),
    )
    return float(best["threshold"])


def bootstrap(
    rows: Sequence[Row], threshold: float, share: float, n: int = BOOTSTRAP, seed: int = 0
) -> dict[str, list[float]]:
    """95% percentile intervals of the F1 of each router over resamples of ``rows``."""
    rng = random.Random(seed)
    draws: dict[str, list[float]] = {
        k: [] for k in ("always_small", "always_llm", "auto", "random")
    }
    draws["auto_minus_random"] = []
    if not rows:
        return {k: [] for k in draws}
    for _ in range(n):
        sample = [rows[rng.randrange(len(rows))] for _ in rows]
        a = route_figures(sample, threshold)["f1"]
        r = random_router(sample, share)["f1"]
        draws["always_small"].append(baseline(sample, "small")["f1"])
        draws["always_llm"].append(baseline(sample, "llm")["f1"])
        draws["auto"].append(a)
        draws["random"].append(r)
        draws["auto_minus_random"].append(a - r)
    return {k: [round(_pct(v, 0.025), 4), round(_pct(v, 0.975), 4)] for k, v in draws.items()}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(q * len(ordered))))]


def router_summary(rows: Sequence[Row], threshold: float) -> dict[str, Any]:
    """The JSON figures of ``rows`` with ``auto`` at ``threshold``."""
    auto = route_figures(rows, threshold)
    return {
        "n": len(rows),
        "always_small": baseline(rows, "small"),
        "always_llm": baseline(rows, "llm"),
        "random": random_router(rows, auto["llm_share"]),
        "auto": auto,
        "apgr": apgr(rows),
        "llm_share_for_95": llm_share_for(rows, 0.95),
    }


# -- the checker on real LLM answers, and what to do with an unsupported one ---------------------
def checker_figures(rows: Sequence[Row], threshold: float) -> dict[str, Any]:
    """How well the checker tells right LLM answers from wrong ones (answers that abstained
    are left out), answer by answer and sentence by sentence."""
    from bench.faithfulness import roc_auc
    from core.text import normalize_answer

    answered = [r for r in rows if r["llm"]["served_by"] == "llm" and not r["llm"]["abstained"]]
    labels = [int(r["llm"]["right"]) for r in answered]
    out: dict[str, Any] = {"answers": len(answered), "right": sum(labels)}
    for key in ("check_score", "ce_score", "blend_score", "reader_score"):
        pairs = [(y, r["llm"][key]) for y, r in zip(labels, answered, strict=True)]
        pairs = [(y, s) for y, s in pairs if s is not None]
        auc = roc_auc([y for y, _ in pairs], [s for _, s in pairs]) if pairs else float("nan")
        out[key.removesuffix("_score") + "_auc"] = None if math.isnan(auc) else round(auc, 4)
    flagged = [r for r in answered if (r["llm"]["check_score"] or 1.0) < threshold]
    wrong = [r for r in answered if not r["llm"]["right"]]
    out["flagged"] = len(flagged)
    out["flag_precision"] = (
        round(sum(not r["llm"]["right"] for r in flagged) / len(flagged), 4) if flagged else None
    )
    out["flag_recall"] = (
        round(sum(not r["llm"]["right"] for r in flagged) / len(wrong), 4) if wrong else None
    )
    sent_labels, sent_scores = [], []
    for r in answered:
        if len(r["llm"]["sentences"]) < 2:
            continue
        golds = [f" {normalize_answer(g)} " for g in r["golds"] if normalize_answer(g)]
        for text, score in r["llm"]["sentences"]:
            norm = f" {normalize_answer(text)} "
            sent_labels.append(int(any(g in norm for g in golds)))
            sent_scores.append(score)
    auc = roc_auc(sent_labels, sent_scores) if sent_labels else float("nan")
    out["sentences"] = {
        "n": len(sent_labels),
        "with_answer": sum(sent_labels),
        "auc": None if math.isnan(auc) else round(auc, 4),
    }
    return out


def _drop_unsupported(row: Row, threshold: float) -> str:
    kept = [t for t, s in row["llm"]["sentences"] if s >= threshold]
    return _prediction(" ".join(kept))


def served_prediction(row: Row, escalated: bool, policy: str, threshold: float) -> tuple[str, bool]:
    """What the service serves for ``row`` under ``policy`` (``TANDEM_UNGROUNDED``) and whether
    the small answer replaced the LLM's (an LLM that failed falls back to it too)."""
    small = row["small"]["span"] if row["small"]["found"] else ""
    if not escalated:
        return small, False
    if row["llm"]["served_by"] != "llm":
        return small, True
    pred = _prediction(row["llm"]["answer"])
    score = row["llm"]["check_score"]
    if policy == "flag" or not pred or score is None or score >= threshold:
        return pred, False
    if policy == "drop":
        kept = _drop_unsupported(row, threshold)
        return (kept, False) if kept else (small, True)
    return small, True


def policy_figures(rows: Sequence[Row], route_threshold: float, threshold: float) -> dict[str, Any]:
    """F1 and wrong answers served under each ``TANDEM_UNGROUNDED`` policy, for ``auto`` at
    ``route_threshold`` and for always-LLM."""
    out: dict[str, Any] = {}
    for router, t in (("auto", route_threshold), ("always_llm", 1.01)):
        for policy in ("flag", "drop", "fallback"):
            f1, wrong, served, replaced = [], 0, 0, 0
            for r in rows:
                golds = tuple(r["golds"])
                up = escalate(r, t)
                pred, instead = served_prediction(r, up, policy, threshold)
                replaced += instead and up and r["llm"]["served_by"] == "llm"
                f1.append(f1_score(pred, golds) if pred else 0.0)
                if pred:
                    served += 1
                    wrong += not is_right(pred, golds)
            out[f"{router}/{policy}"] = {
                "f1": round(_mean(f1), 4),
                "served": served,
                "wrong_served": wrong,
                "small_instead": replaced,
            }
    return out


def cost_model(rows: Sequence[Row]) -> dict[str, Any]:
    """LLM seconds = base + per_prompt_token * prompt tokens (least squares), the mean completion
    tokens and seconds per completion token: what the service estimates a small answer saved."""
    pts = [
        (float(r["llm"]["prompt_tokens"]), float(r["llm"]["wall_s"]))
        for r in rows
        if r["llm"]["served_by"] == "llm" and r["llm"]["wall_s"]
    ]
    completion = [
        float(r["llm"]["completion_tokens"]) for r in rows if r["llm"]["served_by"] == "llm"
    ]
    if len(pts) < 2:
        return {}
    mx, my = _mean(p for p, _ in pts), _mean(s for _, s in pts)
    var = sum((p - mx) ** 2 for p, _ in pts)
    slope = sum((p - mx) * (s - my) for p, s in pts) / var if var else 0.0
    slope = max(0.0, slope)
    return {
        "model": next((r["llm"]["model"] for r in rows if r["llm"].get("model")), None),
        "seconds_base": round(max(0.0, my - slope * mx), 4),
        "seconds_per_prompt_token": round(slope, 6),
        "completion_tokens_mean": round(_mean(completion), 1),
        "questions": len(pts),
    }


def analyse(rows: Sequence[Row], checker_threshold: float = 0.5, seed: int = 0) -> dict[str, Any]:
    """Every figure of the module docstring from a table's rows."""
    cal = [r for r in rows if in_split(r["title"], "cal")]
    test = [r for r in rows if in_split(r["title"], "test")]
    if not cal or not test:  # too few articles to split: report on all of it, and say so
        cal = test = list(rows)
    threshold = choose_threshold(cal)
    top = router_summary(test, threshold)
    top["auto"]["threshold"] = threshold
    top["intervals"] = bootstrap(test, threshold, top["auto"]["llm_share"], seed=seed)
    small, llm = baseline(rows, "small"), baseline(rows, "llm")
    return {
        **top,
        "n": len(rows),
        "n_cal": len(cal),
        "n_test": len(test),
        "split": "test" if cal is not test else "all",
        "small_beats_llm": small["f1"] > llm["f1"],
        "all": router_summary(rows, threshold),
        "curve": curve(rows),
        "share_curve": [[round(c, 4), round(f, 4)] for c, f in share_curve(rows)],
        "checker": checker_figures(rows, checker_threshold),
        "policies": policy_figures(rows, threshold, checker_threshold),
        "cost_model": cost_model(rows),
        "llm_abstained": sum(bool(r["llm"]["abstained"]) for r in rows),
        "small_abstained": sum(not r["small"]["found"] for r in rows),
    }


def chart(result: dict[str, Any], path: Path) -> Path:
    """The cost-quality curve (PNG): ``auto`` as the threshold sweeps, the random router, and
    the two fixed baselines, F1 over LLM-call share (all questions)."""
    from bench.charts import _plt

    plt = _plt()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10.5, 4.2))
    pts = sorted(result["curve"], key=lambda p: p["llm_share"])
    xs = [p["llm_share"] for p in pts]
    ax.plot(xs, [p["f1"] for p in pts], "o-", ms=3, label="auto (threshold sweep)")
    ax.plot(xs, [p["random_f1"] for p in pts], "--", color="grey", label="random router")
    a = result["all"]
    ax.scatter(
        [0], [a["always_small"]["f1"]], marker="s", color="C2", zorder=3, label="always small"
    )
    ax.scatter([1], [a["always_llm"]["f1"]], marker="^", color="C3", zorder=3, label="always LLM")
    ax.scatter(
        [a["auto"]["llm_share"]], [a["auto"]["f1"]], marker="*", s=160, color="C1", zorder=4,
        label=f"chosen threshold {result['auto']['threshold']:.3g}",
    )  # fmt: skip
    ax.set_xlabel("LLM-call share")
    ax.set_ylabel("F1")
    ax.set_title(f"cascade on {result.get('set', '')} ({result['n']} questions)", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    ax2.plot([p["cost_s"] for p in pts], [p["f1"] for p in pts], "o-", ms=3, label="auto")
    ax2.scatter([a["always_small"]["cost_s"]], [a["always_small"]["f1"]], marker="s", color="C2")
    ax2.scatter([a["always_llm"]["cost_s"]], [a["always_llm"]["f1"]], marker="^", color="C3")
    ax2.set_xlabel("mean seconds per question")
    ax2.set_ylabel("F1")
    ax2.set_title("cost-quality", fontsize=9)
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def format_table(result: dict[str, Any]) -> str:
    """The text report of :func:`analyse`."""
    a = result["auto"]
    lines = [
        f"cascade: {result['n']} questions ({result['split']} split: {result['n_test']} reported,"
        f" threshold chosen on {result['n_cal']}); table {result.get('table')}",
        f"{'router':<14}{'F1':>8}{'LLM share':>11}{'s/question':>12}",
    ]
    for name in ("always_small", "always_llm", "random", "auto"):
        r = result[name]
        share = {"always_small": 0.0, "always_llm": 1.0}.get(name, r.get("llm_share", 0.0))
        lines.append(f"{name:<14}{r['f1']:>8.4f}{share:>11.2f}{r['cost_s']:>12.3f}")
    lines.append(
        f"auto threshold {a['threshold']}; APGR {result['apgr']}; LLM share for 95% of "
        f"always-LLM F1: {result['llm_share_for_95']}"
    )
    if result["small_beats_llm"]:
        lines.append("the small answer beats the LLM on this set")
    c = result["checker"]
    lines.append(
        f"checker on {c['answers']} LLM answers ({c['right']} right): AUC {c['check_auc']} "
        f"(cross-encoder {c['ce_auc']}, + reader {c['blend_auc']}); flag precision "
        f"{c['flag_precision']} ({c['flagged']} flagged)"
    )
    for key, p in result["policies"].items():
        lines.append(
            f"  {key:<20} F1 {p['f1']:.4f}  wrong served {p['wrong_served']}/{p['served']}"
        )
    return "\n".join(lines)

"""Faithfulness benchmarks for the groundedness checker.

* :func:`run_faithfulness`: HaluEval rows; each row gives a right answer (label 1) and a
  hallucinated one (label 0). QA rows are checked against the row's knowledge; dialogue rows
  (``dialogue_history``, ``right_response``) as answers to the last human turn against the
  knowledge; summarization rows (``document``, ``right_summary``) sentence by sentence, each
  against its best-matching windows of the document (a long input is never scored whole).
* :func:`run_swapped`: a SQuAD-format file; for each sampled question, its gold answer (1)
  against the answer to *another* question about the same passage (0). Both appear in the
  passage, so only a checker that reads the question can tell them apart.

Both return ``{"auc", "accuracy", "n"}``: ROC AUC of the checker's answer-level score, accuracy
at threshold 0.5, and ``n`` the number of answers scored (two per row or question).
"""

from __future__ import annotations

import itertools
import random
import re
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.errors import UsageError
from smallmodels.checker import CrossEncoderChecker, load_checker
from training.halueval import SUMMARY_QUESTION, halueval_kind, last_turn

__all__ = [
    "SUMMARY_QUESTION",
    "halueval_kind",
    "last_turn",
    "run_faithfulness",
    "run_swapped",
]

_WORDS = re.compile(r"\w+")
_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "and",
        "or",
        "but",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "by",
        "with",
        "as",
        "that",
        "this",
        "it",
        "its",
        "from",
        "he",
        "she",
        "they",
        "his",
        "her",
        "their",
        "has",
        "have",
        "had",
        "not",
        "no",
    ]
)


def roc_auc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """ROC AUC (sklearn's when installed, else the equivalent Mann-Whitney rank statistic)."""
    if len(set(labels)) < 2:
        return float("nan")
    try:
        from sklearn.metrics import roc_auc_score
    except ImportError:
        return _rank_auc(labels, scores)
    return float(roc_auc_score(list(labels), list(scores)))


def _rank_auc(labels: Sequence[int], scores: Sequence[float]) -> float:
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    pos = [r for r, y in zip(ranks, labels, strict=True) if y == 1]
    n_pos, n_neg = len(pos), len(labels) - len(pos)
    return (sum(pos) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def _figures(labels: list[int], scores: list[float], threshold: float = 0.5) -> dict[str, Any]:
    correct = sum((s >= threshold) == bool(y) for s, y in zip(scores, labels, strict=True))
    return {
        "auc": round(roc_auc(labels, scores), 4),
        "accuracy": round(correct / len(labels), 4) if labels else 0.0,
        "n": len(labels),
    }


def _checker(spec: str | CrossEncoderChecker | None) -> CrossEncoderChecker:
    return spec if isinstance(spec, CrossEncoderChecker) else load_checker(spec)


def _read_rows(path: Path, offset: int, limit: int | None) -> list[dict[str, Any]]:
    import json

    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i < offset or not line.strip():
                continue
            if limit is not None and len(rows) >= limit:
                break
            rows.append(json.loads(line))
    return rows


#: Windows of a long document each summary sentence is scored against (best lexical matches).
LONG_WINDOWS = 4


def _grams(text: str) -> set[str]:
    words = [w.lower() for w in _WORDS.findall(text) if w.lower() not in _STOP]
    return set(words) | {f"{a} {b}" for a, b in itertools.pairwise(words)}


def best_windows(
    sentence: str, document: str | list[tuple[str, set[str]]], k: int = LONG_WINDOWS
) -> list[str]:
    """The ``k`` windows of ``document`` sharing the most words (and word pairs) with
    ``sentence``: what a long input's sentence is checked against. ``document`` may be given
    as its windows with their word sets (:func:`document_windows`), computed once."""
    windows = document_windows(document) if isinstance(document, str) else document
    want = _grams(sentence)
    ranked = sorted(windows, key=lambda w: -len(want & w[1]))
    return [w for w, _ in ranked[:k]]


def document_windows(document: str) -> list[tuple[str, set[str]]]:
    """The checker's windows of ``document``, each with its words and word pairs."""
    from smallmodels.checker import passage_windows

    return [(w, _grams(w)) for w in passage_windows(document)]


def check_long(
    checker: CrossEncoderChecker, question: str, answers: Sequence[str], document: str
) -> list[list[float]]:
    """Check each of ``answers`` sentence by sentence, each sentence against its best-matching
    windows of a long ``document`` (one batched pass): every answer's sentence scores (the
    answer's score is their minimum, its least supported sentence)."""
    from core.text import split_sentences

    windows = document_windows(document)
    triples, owner = [], []
    split = [split_sentences(a) or [a] for a in answers]
    for a, sentences in enumerate(split):
        for i, sentence in enumerate(sentences):
            for window in best_windows(sentence, windows):
                triples.append((question, sentence, window))
                owner.append((a, i))
    scores = checker.score_pairs(triples)
    best = [[0.0] * len(sentences) for sentences in split]
    for (a, i), value in zip(owner, scores, strict=True):
        best[a][i] = max(best[a][i], value)
    return best


def run_faithfulness(
    halueval: Path,
    checker_spec: str | CrossEncoderChecker | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> dict[str, Any]:
    """AUC and accuracy at telling HaluEval right answers from hallucinated ones: QA,
    dialogue or summarization rows, told apart by their fields (``kind`` in the result).

    Rows ``offset .. offset+limit-1`` are used (all from ``offset`` when ``limit`` is None).
    Dialogue responses are checked as answers to the last human turn against the knowledge;
    summaries sentence by sentence against their best-matching windows of the document
    (``ms_per_sentence``).
    """
    raw = _read_rows(halueval, offset, limit)
    kinds = {halueval_kind(r) for r in raw}
    if len(kinds) > 1:
        raise UsageError(f"{halueval} mixes HaluEval kinds: {sorted(kinds)}")
    kind = kinds.pop() if kinds else "qa"
    if kind == "qa":
        return {"kind": "qa", **_run_qa(halueval, checker_spec, limit, offset)}
    checker = _checker(checker_spec)
    labels: list[int] = []
    scores: list[float] = []
    started = time.monotonic()
    if kind == "dialogue":
        items: list[tuple[str, str, Sequence[str]]] = []
        for r in raw:
            q = last_turn(r["dialogue_history"])
            items += [(q, r["right_response"], [r["knowledge"]])]
            items += [(q, r["hallucinated_response"], [r["knowledge"]])]
            labels += [1, 0]
        scores = checker.score_many(items)
        result = _figures(labels, scores)
        result["seconds"] = round(time.monotonic() - started, 1)
        return {"kind": kind, **result}
    sentences = 0
    for r in raw:
        pair = [r["right_summary"], r["hallucinated_summary"]]
        for per, label in zip(
            check_long(checker, SUMMARY_QUESTION, pair, r["document"]), (1, 0), strict=True
        ):
            scores.append(min(per))
            labels.append(label)
            sentences += len(per)
    seconds = time.monotonic() - started
    result = _figures(labels, scores)
    result["seconds"] = round(seconds, 1)
    result["sentences"] = sentences
    result["ms_per_sentence"] = round(1000 * seconds / sentences, 1) if sentences else None
    return {"kind": kind, **result}


def _run_qa(
    halueval: Path,
    checker_spec: str | CrossEncoderChecker | None,
    limit: int | None,
    offset: int,
) -> dict[str, Any]:
    from training.checker import load_halueval

    stop = None if limit is None else offset + limit
    rows = load_halueval(halueval, slice(offset, stop))
    checker = _checker(checker_spec)
    items: list[tuple[str, str, Sequence[str]]] = []
    labels: list[int] = []
    for row in rows:
        items.append((row.question, row.right_answer, [row.knowledge]))
        labels.append(1)
        items.append((row.question, row.hallucinated_answer, [row.knowledge]))
        labels.append(0)
    started = time.monotonic()
    scores = checker.score_many(items)
    result = _figures(labels, scores)
    result["seconds"] = round(time.monotonic() - started, 1)
    return result


def swapped_items(
    squad_file: Path, limit: int | None = None, seed: int = 0
) -> tuple[list[tuple[str, str, Sequence[str]]], list[int]]:
    """(question, answer, [passage]) items and labels for :func:`run_swapped`."""
    from training.squad import load_squad, token_f1

    questions = [q for q in load_squad(squad_file) if q.answers]
    by_paragraph: dict[tuple[str, int], list[Any]] = defaultdict(list)
    for q in questions:
        by_paragraph[(q.source, q.paragraph)].append(q)
    candidates = []
    for q in questions:
        others = [
            o.answers[0]
            for o in by_paragraph[(q.source, q.paragraph)]
            if o.id != q.id
            and all(token_f1(o.answers[0], g) < 0.2 for g in q.answers)
            and not any(
                o.answers[0].lower() in g.lower() or g.lower() in o.answers[0].lower()
                for g in q.answers
            )
        ]
        if others:
            candidates.append((q, others))
    rng = random.Random(seed)
    rng.shuffle(candidates)
    if limit is not None:
        candidates = candidates[:limit]
    items: list[tuple[str, str, Sequence[str]]] = []
    labels: list[int] = []
    for q, others in candidates:
        items.append((q.question, q.answers[0], [q.context]))
        labels.append(1)
        items.append((q.question, rng.choice(others), [q.context]))
        labels.append(0)
    return items, labels


def run_swapped(
    squad_file: Path,
    checker_spec: str | CrossEncoderChecker | None = None,
    limit: int | None = 300,
    seed: int = 0,
) -> dict[str, Any]:
    """AUC and accuracy at telling a question's gold answer from the answer to another question
    about the same passage (``limit`` questions drawn with ``seed``)."""
    items, labels = swapped_items(squad_file, limit, seed)
    checker = _checker(checker_spec)
    started = time.monotonic()
    scores = checker.score_many(items)
    result = _figures(labels, scores)
    result["seconds"] = round(time.monotonic() - started, 1)
    return result

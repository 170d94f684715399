"""Faithfulness benchmarks for the groundedness checker.

* :func:`run_faithfulness`: HaluEval QA rows; each row gives a right answer (label 1) and a
  hallucinated one (label 0), both checked against the row's knowledge.
* :func:`run_swapped`: a SQuAD-format file; for each sampled question, its gold answer (1)
  against the answer to *another* question about the same passage (0). Both appear in the
  passage, so only a checker that reads the question can tell them apart.

Both return ``{"auc", "accuracy", "n"}``: ROC AUC of the checker's answer-level score, accuracy
at threshold 0.5, and ``n`` the number of answers scored (two per row or question).
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from smallmodels.checker import CrossEncoderChecker, load_checker


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


def run_faithfulness(
    halueval: Path,
    checker_spec: str | CrossEncoderChecker | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> dict[str, Any]:
    """AUC and accuracy at telling HaluEval right answers from hallucinated ones.

    Rows ``offset .. offset+limit-1`` are used (all from ``offset`` when ``limit`` is None).
    """
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

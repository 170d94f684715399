"""SQuAD-format data: loading, held-out splits, and the SQuAD exact-match / token-F1 metric.

The metric follows the official SQuAD v1.1 evaluation script: answers are normalised by
lowercasing, removing punctuation, removing the articles *a*, *an*, *the*, and collapsing
whitespace; a prediction is scored against every reference answer and the best score counts.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import UsageError
from core.text import (  # noqa: F401  (the metric, re-exported for training callers)
    answer_tokens,
    exact_match,
    f1_score,
    normalize_answer,
    squad_scores,
    token_f1,
)


class SquadDataError(UsageError):
    """A SQuAD-format file is missing, unreadable or malformed."""

    code = "bad_squad_file"


@dataclass(frozen=True)
class SquadQuestion:
    """One question with its paragraph and reference answers."""

    id: str
    question: str
    context: str
    answers: tuple[str, ...]
    answer_starts: tuple[int, ...]
    title: str = ""
    paragraph: int = 0
    """Index of the paragraph in its file (questions on one paragraph share it)."""
    source: str = field(default="", compare=False)


def load_squad(path: str | Path) -> list[SquadQuestion]:
    """Read every question of a SQuAD v1.x file (``{"data": [{"paragraphs": [...]}]}``).

    Raises :class:`SquadDataError` with a one-line message when the file is missing, is not
    JSON, or does not have the SQuAD shape. Questions without answers are kept (with empty
    ``answers``) so that callers may decide; answers whose ``answer_start`` does not point at
    their text are located by search, or dropped when absent from the paragraph.
    """
    file = Path(path)
    if not file.is_file():
        raise SquadDataError(f"SQuAD file not found: {file}")
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SquadDataError(f"cannot read {file} as JSON: {exc}") from None
    try:
        return list(_parse(raw, str(file)))
    except (KeyError, TypeError, AttributeError) as exc:
        raise SquadDataError(
            f"{file} is not SQuAD-format ({{data: [{{paragraphs: [{{context, qas}}]}}]}}): "
            f"missing or wrong field {exc}"
        ) from None


def _parse(raw: Any, source: str) -> Iterable[SquadQuestion]:
    if not isinstance(raw, dict) or not isinstance(raw.get("data"), list):
        raise KeyError("data")
    paragraph_index = 0
    for article in raw["data"]:
        title = str(article.get("title", ""))
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            if not isinstance(context, str):
                raise TypeError("context")
            for qa in paragraph["qas"]:
                texts: list[str] = []
                starts: list[int] = []
                for answer in qa.get("answers", []):
                    text = str(answer["text"])
                    start = _locate(context, text, int(answer.get("answer_start", -1)))
                    if start >= 0 and text.strip():
                        texts.append(text)
                        starts.append(start)
                yield SquadQuestion(
                    id=str(qa.get("id", f"{paragraph_index}-{len(texts)}")),
                    question=str(qa["question"]),
                    context=context,
                    answers=tuple(texts),
                    answer_starts=tuple(starts),
                    title=title,
                    paragraph=paragraph_index,
                    source=source,
                )
            paragraph_index += 1


def _locate(context: str, text: str, start: int) -> int:
    """``start`` when it points at ``text``, else the nearest occurrence, else -1."""
    if start >= 0 and context[start : start + len(text)] == text:
        return start
    hits = [m.start() for m in re.finditer(re.escape(text), context)] if text else []
    if not hits:
        return -1
    return min(hits, key=lambda h: abs(h - start))


def split_heldout(
    questions: Sequence[SquadQuestion], n: int, seed: int = 0
) -> tuple[list[SquadQuestion], list[SquadQuestion]]:
    """Split into (train, held_out) by whole paragraphs, so no held-out paragraph is trained on.

    Paragraphs are drawn at random (``seed``) until at least ``n`` questions are held out.
    """
    if n <= 0:
        return list(questions), []
    keys = sorted({(q.source, q.paragraph) for q in questions})
    random.Random(seed).shuffle(keys)
    by_key: Counter[tuple[str, int]] = Counter((q.source, q.paragraph) for q in questions)
    chosen: set[tuple[str, int]] = set()
    count = 0
    for key in keys:
        if count >= n:
            break
        chosen.add(key)
        count += by_key[key]
    train = [q for q in questions if (q.source, q.paragraph) not in chosen]
    held = [q for q in questions if (q.source, q.paragraph) in chosen]
    return train, held


def sample_questions(
    questions: Sequence[SquadQuestion], max_questions: int | None, seed: int = 0
) -> list[SquadQuestion]:
    """At most ``max_questions`` questions drawn at random (all of them, in order, if None)."""
    if max_questions is None or max_questions >= len(questions):
        return list(questions)
    picked = random.Random(seed).sample(range(len(questions)), max_questions)
    return [questions[i] for i in sorted(picked)]


# --- metric ---------------------------------------------------------------------------------
# One definition for every layer: the SQuAD metric lives in core.text.

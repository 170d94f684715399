"""HaluEval's dialogue and summarization rows, as checker training groups.

HaluEval (Li et al., 2023, "HaluEval: A Large-Scale Hallucination Evaluation Benchmark for Large
Language Models") pairs each input with a right and a hallucinated output. Three kinds of rows,
told apart by their fields (:func:`halueval_kind`):

* QA: ``knowledge, question, right_answer, hallucinated_answer`` (read by
  :func:`training.checker.load_halueval`);
* dialogue: ``knowledge, dialogue_history, right_response, hallucinated_response``; the response
  is checked as the answer to the last human turn (:func:`last_turn`) against the knowledge;
* summarization: ``document, right_summary, hallucinated_summary``; a summary is checked
  sentence by sentence, each sentence as the answer to :data:`SUMMARY_QUESTION` against its
  best-matching windows of the document.

The same reading is used for training (:func:`dialogue_groups`, :func:`summary_groups`) and for
measuring (``bench/faithfulness.py``), so the checker learns the task it is measured on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.errors import UsageError
from core.text import split_sentences

#: The question a summary sentence is checked as the answer to (the checker reads pairs).
SUMMARY_QUESTION = "What does the document say?"

_KIND_FIELDS = {
    "qa": ("knowledge", "question", "right_answer", "hallucinated_answer"),
    "dialogue": ("knowledge", "dialogue_history", "right_response", "hallucinated_response"),
    "summarization": ("document", "right_summary", "hallucinated_summary"),
}
_LABELS = {"qa": "QA", "dialogue": "dialogue", "summarization": "summarization"}


class HaluEvalDataError(UsageError):
    """A HaluEval file is missing, is not JSON lines, or mixes or lacks the expected fields."""

    code = "bad_halueval_file"


def halueval_kind(row: dict[str, Any]) -> str:
    """``qa``, ``dialogue`` or ``summarization``: a HaluEval row told apart by its fields.

    Raises :class:`HaluEvalDataError` for a row of none of the three kinds.
    """
    for kind, fields in _KIND_FIELDS.items():
        if set(fields) <= row.keys():
            return kind
    raise HaluEvalDataError(
        f"not a HaluEval QA, dialogue or summarization row (fields {sorted(row)})"
    )


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Every JSON object of a JSON-lines (or one JSON list) HaluEval file.

    Raises :class:`HaluEvalDataError` (one line, with the line number) when the file is
    missing, unreadable or not JSON, or a record is not an object.
    """
    file = Path(path)
    if not file.is_file():
        raise HaluEvalDataError(f"HaluEval file not found: {file}")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise HaluEvalDataError(f"cannot read {file}: {exc}") from None
    records: list[Any]
    if text.lstrip().startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as exc:
            raise HaluEvalDataError(f"cannot read {file} as JSON: {exc.msg}") from None
    else:
        records = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise HaluEvalDataError(
                    f"{file}:{number} is not JSON ({exc.msg}); HaluEval rows are JSON lines"
                ) from None
    for number, record in enumerate(records, 1):
        if not isinstance(record, dict):
            raise HaluEvalDataError(f"{file} row {number} is not a JSON object")
    return records


def check_kind(records: Sequence[dict[str, Any]], kind: str, path: str | Path) -> None:
    """Raise :class:`HaluEvalDataError` unless every record has ``kind``'s string fields."""
    fields = _KIND_FIELDS[kind]
    for number, record in enumerate(records, 1):
        if any(not isinstance(record.get(f), str) for f in fields):
            raise HaluEvalDataError(
                f"{path} row {number} is not a HaluEval {_LABELS[kind]} row (needs string fields "
                + ", ".join(fields)
                + ")"
            )


def load_file(path: str | Path, rows: slice) -> tuple[str, list[dict[str, Any]]]:
    """A HaluEval file read once: its kind (its first row's) and ``rows`` of its records, every
    record checked to be of that kind. :class:`HaluEvalDataError` when it is empty or mixed."""
    records = read_records(path)
    if not records:
        raise HaluEvalDataError(f"{path} holds no HaluEval rows")
    kind = halueval_kind(records[0])
    check_kind(records, kind, path)
    return kind, records[rows]


def last_turn(history: str) -> str:
    """The last ``[Human]:`` turn of a HaluEval dialogue history (the question answered)."""
    turns = re.split(r"\[(?:Human|Assistant)\]:", history)
    humans = re.findall(r"\[(Human|Assistant)\]:", history)
    for who, text in zip(reversed(humans), reversed(turns[1:]), strict=False):
        if who == "Human" and text.strip():
            return " ".join(text.split())
    return " ".join(history.split())[-400:]


def dialogue_groups(rows: Sequence[dict[str, Any]]) -> list[Any]:
    """One group per dialogue row: the right response against the hallucinated one, as
    answers to the last human turn, supported or not by the row's knowledge."""
    from training.checker import Group

    return [
        Group(
            last_turn(r["dialogue_history"]),
            r["knowledge"],
            [r["right_response"], r["hallucinated_response"]],
            ["right", "hallucinated_response"],
            "halueval_dialogue",
        )
        for r in rows
    ]


def _key(sentence: str) -> str:
    return " ".join(re.findall(r"\w+", sentence.lower()))


def _unseen_share(sentence: str, document: set[str]) -> float:
    words = re.findall(r"\w+", sentence.lower())
    return sum(w not in document for w in words) / max(1, len(words))


def summary_groups(rows: Sequence[dict[str, Any]], per_row: int = 1) -> list[Any]:
    """Sentence-level groups from summarization rows.

    A hallucinated summary's sentences that the right summary does not also hold are the
    candidates for unsupported answers; the ``per_row`` of them with the largest share of words
    the document never uses (most likely the hallucinated ones: a rewritten summary also keeps
    supported sentences) are the unsupported answers, each grouped with the right summary's
    sentence closest to it (most shared words), the supported answer, both to be read against
    the document. Rows whose two summaries share every sentence give no group.
    """
    from training.checker import Group
    from training.squad import token_f1

    groups = []
    for r in rows:
        right = [s for s in split_sentences(r["right_summary"]) if s.strip()]
        if not right:
            continue
        keys = {_key(s) for s in right}
        novel = [
            s
            for s in split_sentences(r["hallucinated_summary"])
            if s.strip() and _key(s) not in keys
        ]
        document = set(re.findall(r"\w+", r["document"].lower()))
        novel.sort(key=lambda s: -_unseen_share(s, document))
        for sentence in novel[:per_row]:
            closest = max(right, key=lambda s: token_f1(s, sentence))
            groups.append(
                Group(
                    SUMMARY_QUESTION,
                    r["document"],
                    [closest, sentence],
                    ["right_summary_sentence", "hallucinated_summary_sentence"],
                    "halueval_summarization",
                )
            )
    return groups

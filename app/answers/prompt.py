"""The grounded prompt: the top passages numbered [1]..[n], packed into the context budget.

Passages are taken in rank order while they fit: the budget is the model's context window less
the answer's ``max_tokens``, the instructions, the question and a margin for the chat
template, all counted with the generator's own :meth:`count_tokens`. The first passage is cut
to fit when even it alone is too long (a question always gets some evidence); later ones that
do not fit are left out, with everything after them. The passages that made it are numbered
1..n in rank order, and only those numbers are valid citations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.generators.base import Message

SYSTEM_PROMPT = (
    "You answer questions using only the numbered passages you are given. After each sentence, "
    "cite the passages that support it with their numbers in square brackets, like [1] or "
    "[2][3]. Do not use outside knowledge. If the passages do not contain the answer, reply "
    "exactly: I don't know."
)
INSTRUCTION = (
    "Answer the question in one to three short sentences, citing passages like [1]. "
    'If the passages do not contain the answer, reply "I don\'t know."'
)
#: Tokens kept free for the chat template's role markers and special tokens.
TEMPLATE_MARGIN = 48


@dataclass(frozen=True)
class Passage:
    """One retrieved chunk as given to a model: ``n`` is its citation number (1-based)."""

    n: int
    text: str
    source: str
    doc_id: str
    chunk_id: str
    score: float = 0.0
    metadata: dict[str, Any] = field(default_factory=dict)

    def citation(self) -> dict[str, Any]:
        """The citation object of the API: n, source, doc_id, chunk_id and text."""
        return {
            "n": self.n,
            "source": self.source,
            "doc_id": self.doc_id,
            "chunk_id": self.chunk_id,
            "text": self.text,
        }

    def renumbered(self, n: int, text: str | None = None) -> Passage:
        return Passage(
            n, self.text if text is None else text, self.source, self.doc_id, self.chunk_id,
            self.score, self.metadata,
        )  # fmt: skip


def number_passages(hits: Sequence[Any]) -> list[Passage]:
    """Search hits (``Hit`` or ``HitOut``: text, source, doc_id, chunk_id, score) as passages
    numbered 1..n in rank order; empty texts are skipped."""
    out: list[Passage] = []
    for hit in hits:
        text = str(getattr(hit, "text", "") or "").strip()
        if not text:
            continue
        out.append(
            Passage(
                n=len(out) + 1,
                text=text,
                source=str(getattr(hit, "source", "")),
                doc_id=str(getattr(hit, "doc_id", "")),
                chunk_id=str(getattr(hit, "chunk_id", "")),
                score=float(getattr(hit, "score", 0.0) or 0.0),
                metadata=dict(getattr(hit, "metadata", None) or {}),
            )
        )
    return out


def format_passage(p: Passage) -> str:
    """One passage line of the prompt: ``[n] text`` (whitespace collapsed)."""
    return f"[{p.n}] {' '.join(p.text.split())}"


def user_message(question: str, passages: Sequence[Passage]) -> str:
    """Instructions, the numbered passages one per line, then the question last (so that a
    base model prompted in completion style continues with the answer)."""
    body = "\n".join(format_passage(p) for p in passages)
    return f"{INSTRUCTION}\n\nPassages:\n{body}\n\nQuestion: {question}"


@dataclass
class PackedPrompt:
    """The messages for the LLM and the passages they number."""

    messages: list[Message]
    passages: list[Passage]
    prompt_tokens: int
    budget: int
    dropped: int
    """Passages left out for lack of room."""
    truncated: bool
    """True when the first passage was cut to fit."""


def _cut(text: str, count: Callable[[str], int], limit: int) -> str:
    """The longest word prefix of ``text`` that counts at most ``limit`` tokens."""
    words = text.split()
    lo, hi = 0, len(words)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count(" ".join(words[:mid]) + " …") <= limit:
            lo = mid
        else:
            hi = mid - 1
    return " ".join(words[:lo]) + " …" if lo else ""


def build_prompt(
    question: str,
    passages: Sequence[Passage],
    count_tokens: Callable[[str], int],
    context_tokens: int,
    max_answer_tokens: int,
    system: str = SYSTEM_PROMPT,
) -> PackedPrompt:
    """Pack ``passages`` (rank order) into the context budget and build the chat messages."""
    fixed = count_tokens(system) + count_tokens(user_message(question, [])) + TEMPLATE_MARGIN
    budget = context_tokens - max_answer_tokens - fixed
    kept: list[Passage] = []
    used = 0
    truncated = False
    for p in passages:
        candidate = p.renumbered(len(kept) + 1)
        cost = count_tokens(format_passage(candidate)) + 1
        if used + cost <= budget:
            kept.append(candidate)
            used += cost
            continue
        if not kept:
            header = count_tokens(format_passage(candidate.renumbered(1, ""))) + 1
            text = _cut(p.text, count_tokens, budget - header)
            if text:
                kept.append(candidate.renumbered(1, text))
                used += count_tokens(format_passage(kept[0])) + 1
                truncated = True
        break
    messages: list[Message] = [
        {"role": "system", "content": system},
        {"role": "user", "content": user_message(question, kept)},
    ]
    return PackedPrompt(
        messages=messages,
        passages=kept,
        prompt_tokens=fixed - TEMPLATE_MARGIN + used,
        budget=budget,
        dropped=len(passages) - len(kept),
        truncated=truncated,
    )

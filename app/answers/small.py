"""Small mode: an extractive, always-cited answer with no LLM at all.

With a reader (``TANDEM_READER``, :mod:`smallmodels.reader`): the best answer span over the
(reranked) passages, the sentence around it, and a confidence: the probability mass of the
spans overlapping the best one (the reader's scores share one softmax with a "no answer"
option, so close variants such as "July 1969" and "20 July 1969" add up). Below
``min_confidence`` the answer is "no answer found".

Without a reader: the best supporting sentence(s) of the passages, scored against the
question by the reranker (sigmoid of its logit) when one is configured, else by the embedder
(cosine similarity). The answer is the sentence itself, with the next sentence of the same
passage when it scores almost as well.

Everything here is synchronous and CPU-bound; the service runs it in a worker thread. The
reader sees at most ``max_passages`` passages (one short forward pass each on a CPU), so small
mode stays usable on two cores.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from app.answers.prompt import Passage

NO_ANSWER = "No answer found in the indexed documents."
Method = Literal["reader", "reranker", "embedder", "none"]
#: Sentences scored by the sentence fallback at most.
MAX_SENTENCES = 64


@dataclass
class SmallAnswer:
    """An extractive answer (or the best guess when ``found`` is False)."""

    found: bool
    answer: str
    """The text served: the span with its citation marker, or :data:`NO_ANSWER`."""
    confidence: float
    method: Method
    span: str | None = None
    sentence: str | None = None
    passage: Passage | None = None

    @property
    def citations(self) -> list[dict[str, Any]]:
        return [self.passage.citation()] if self.found and self.passage is not None else []

    def extract(self) -> dict[str, Any]:
        """The ``extract`` object of the API: what was quoted from where."""
        return {
            "found": self.found,
            "span": self.span,
            "sentence": self.sentence,
            "n": self.passage.n if self.passage is not None else None,
            "method": self.method,
        }


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, x))))


class SmallAnswerer:
    """Extractive answers from a reader, or supporting sentences from a reranker/embedder."""

    def __init__(
        self,
        reader: Any = None,
        reranker: Any = None,
        embedder: Any = None,
        *,
        min_confidence: float = 0.2,
        max_passages: int = 5,
        max_answer_tokens: int = 30,
    ) -> None:
        self.reader = reader
        self.reranker = reranker
        self.embedder = embedder
        self.min_confidence = min_confidence
        self.max_passages = max(1, max_passages)
        self.max_answer_tokens = max_answer_tokens

    @property
    def method(self) -> Method:
        if self.reader is not None:
            return "reader"
        if self.reranker is not None:
            return "reranker"
        return "embedder" if self.embedder is not None else "none"

    def describe(self) -> str:
        if self.reader is not None:
            return f"reader {getattr(self.reader, 'name', 'loaded')}"
        if self.reranker is not None:
            return f"no reader: best sentence by reranker {getattr(self.reranker, 'name', '')}"
        return "no reader: best sentence by embedder similarity"

    def answer(
        self, question: str, passages: Sequence[Passage], embedder: Any = None
    ) -> SmallAnswer:
        """The small answer to ``question`` from ``passages`` (rank order, numbered)."""
        passages = list(passages)[: self.max_passages]
        if not passages:
            return SmallAnswer(False, NO_ANSWER, 0.0, self.method)
        if self.reader is not None:
            return self._read(question, passages)
        return self._best_sentence(question, passages, embedder or self.embedder)

    # -- reader ---------------------------------------------------------------------------------
    def _read(self, question: str, passages: list[Passage]) -> SmallAnswer:
        from smallmodels.reader import sentence_around

        texts = [p.text for p in passages]
        spans = self.reader.read(
            question, texts, top_n=10, max_answer_tokens=self.max_answer_tokens
        )
        if not spans:
            return SmallAnswer(False, NO_ANSWER, 0.0, "reader")
        best = spans[0]
        confidence = min(
            1.0,
            sum(
                s.score
                for s in spans
                if s.passage_index == best.passage_index
                and s.start < best.end
                and best.start < s.end
            ),
        )
        passage = passages[best.passage_index]
        _, _, sentence = sentence_around(passage.text, best.start, best.end)
        found = confidence >= self.min_confidence
        return SmallAnswer(
            found=found,
            answer=f"{best.text} [{passage.n}]" if found else NO_ANSWER,
            confidence=round(confidence, 4),
            method="reader",
            span=best.text,
            sentence=" ".join(sentence.split()),
            passage=passage,
        )

    # -- sentence fallback ----------------------------------------------------------------------
    def _best_sentence(self, question: str, passages: list[Passage], embedder: Any) -> SmallAnswer:
        from smallmodels.reader import sentence_bounds

        units: list[tuple[int, int, str]] = []  # (passage index, sentence index, text)
        for pi, p in enumerate(passages):
            for si, (s, e) in enumerate(sentence_bounds(p.text)):
                text = " ".join(p.text[s:e].split())
                if len(text.split()) >= 3:
                    units.append((pi, si, text))
        units = units[:MAX_SENTENCES]
        if not units:
            return SmallAnswer(False, NO_ANSWER, 0.0, self.method)
        texts = [u[2] for u in units]
        if self.reranker is not None:
            method: Method = "reranker"
            logits = np.asarray(self.reranker.score(question, texts), dtype=np.float64)
            scores = [_sigmoid(float(x)) for x in logits]
        elif embedder is not None:
            method = "embedder"
            vecs = np.asarray(embedder.encode([question, *texts]), dtype=np.float32)
            scores = [max(0.0, float(x)) for x in vecs[1:] @ vecs[0]]
        else:
            return SmallAnswer(False, NO_ANSWER, 0.0, "none")
        order = sorted(range(len(units)), key=lambda i: -scores[i])
        top = order[0]
        pi, si, _ = units[top]
        chosen = [top]
        nxt = next((i for i in order[1:2] if units[i][0] == pi and units[i][1] == si + 1), None)
        if nxt is not None and scores[nxt] >= 0.9 * scores[top]:
            chosen.append(nxt)
        text = " ".join(units[i][2] for i in chosen)
        confidence = scores[top]
        found = confidence >= self.min_confidence
        passage = passages[pi]
        return SmallAnswer(
            found=found,
            answer=f"{text} [{passage.n}]" if found else NO_ANSWER,
            confidence=round(confidence, 4),
            method=method,
            span=text,
            sentence=text,
            passage=passage,
        )

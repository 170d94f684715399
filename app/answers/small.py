"""Small mode: an extractive, always-cited answer with no LLM at all.

With a reader (``TANDEM_READER``, :mod:`smallmodels.reader`): the best answer span over the
(reranked) passages, the sentence around it, and a confidence. Candidates are groups of
overlapping spans whose probability masses add up (the reader's scores share one softmax with
a "no answer" option, so "July 1969" and "20 July 1969" support each other). The reader reads
the best three passages, and a group's mass is multiplied by a prior on its passage's rank
(``exp(-0.7 * rank)``): the reader's softmax across passages ignores what retrieval already
knows. The masses are then re-weighted by how close each group's sentence is to the question
(embedder cosine, ``exp(cos / 0.2)``, total mass kept), so that a span whose sentence is about
something else loses to one whose sentence answers the question. The confidence is the chosen
group's weighted mass; below
``min_confidence`` the answer is "no answer found". These choices were measured on NYT with
retrieved passages (``tandem bench answers``; see the report in the commit history).

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
#: Reader candidates (groups of overlapping spans) weighed at most.
MAX_CANDIDATES = 8
#: Temperature of the sentence weighting of reader candidates (None: off). With the rank prior
#: it is neutral on NYT (F1 0.523 vs 0.529 on 200 questions, within noise) and lifts the demo
#: questions from 0.68 to 0.75 F1 (a reader that answers "who discovered X" with any discoverer).
SENTENCE_TEMPERATURE: float | None = 0.2
#: A reader candidate's mass is multiplied by ``exp(-RANK_PRIOR * passage rank)`` (rank 0 for
#: the first passage): retrieval (and reranking) already said which passage is likeliest to hold
#: the answer, and the reader's softmax across passages ignores it.
RANK_PRIOR = 0.7
#: Passages the reader reads (the best ones); more cost CPU and add distractors.
READER_PASSAGES = 3


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
        reader_passages: int = READER_PASSAGES,
        rank_prior: float = RANK_PRIOR,
        sentence_temperature: float | None = SENTENCE_TEMPERATURE,
    ) -> None:
        self.reader = reader
        self.reader_passages = max(1, reader_passages)
        self.rank_prior = rank_prior
        self.sentence_temperature = sentence_temperature
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
            return self._read(question, passages, embedder or self.embedder)
        return self._best_sentence(question, passages, embedder or self.embedder)

    # -- reader ---------------------------------------------------------------------------------
    def _read(self, question: str, passages: list[Passage], embedder: Any) -> SmallAnswer:
        from smallmodels.reader import sentence_around

        passages = passages[: self.reader_passages]
        texts = [p.text for p in passages]
        spans = self.reader.read(
            question, texts, top_n=20, max_answer_tokens=self.max_answer_tokens
        )
        if not spans:
            return SmallAnswer(False, NO_ANSWER, 0.0, "reader")
        # Overlapping spans ("July 1969", "20 July 1969") are one candidate: their mass adds up.
        clusters: list[list[Any]] = []  # [best span, mass]
        for span in spans:
            for cluster in clusters:
                rep = cluster[0]
                if (
                    rep.passage_index == span.passage_index
                    and span.start < rep.end
                    and rep.start < span.end
                ):
                    cluster[1] += span.score
                    break
            else:
                clusters.append([span, span.score])
        clusters = clusters[:MAX_CANDIDATES]
        sentences = [
            " ".join(sentence_around(texts[c[0].passage_index], c[0].start, c[0].end)[2].split())
            for c in clusters
        ]
        scores = [float(c[1]) * math.exp(-self.rank_prior * c[0].passage_index) for c in clusters]
        if embedder is not None and self.sentence_temperature and len(clusters) > 1:
            scores = self.weigh_by_sentence(question, sentences, scores, embedder)
        best = max(range(len(clusters)), key=lambda i: scores[i])
        span = clusters[best][0]
        text = " ".join(span.text.split())  # a span may cross a line break
        confidence = min(1.0, scores[best])
        passage = passages[span.passage_index]
        found = confidence >= self.min_confidence
        return SmallAnswer(
            found=found,
            answer=f"{text} [{passage.n}]" if found else NO_ANSWER,
            confidence=round(confidence, 4),
            method="reader",
            span=text,
            sentence=sentences[best],
            passage=passage,
        )

    def weigh_by_sentence(
        self, question: str, sentences: list[str], masses: list[float], embedder: Any
    ) -> list[float]:
        """Candidate masses re-weighted by how close each one's sentence is to the question
        (``exp(cosine / temperature)``), keeping their total: the reader alone spreads its mass
        over every date of every passage for a "when" question; the sentence that answers the
        question is the one that reads like it."""
        unique = sorted(set(sentences))
        vecs = np.asarray(embedder.encode([question, *unique]), dtype=np.float64)
        similarity = dict(zip(unique, vecs[1:] @ vecs[0], strict=True))
        t = float(self.sentence_temperature or 1.0)
        top = max(similarity.values())
        weights = [
            m * math.exp((similarity[s] - top) / t) for m, s in zip(masses, sentences, strict=True)
        ]
        total = sum(weights)
        if total <= 0:
            return masses
        mass = sum(masses)
        return [w / total * mass for w in weights]

    # -- sentence fallback ----------------------------------------------------------------------
    def _best_sentence(self, question: str, passages: list[Passage], embedder: Any) -> SmallAnswer:
        from core.text import sentence_bounds

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

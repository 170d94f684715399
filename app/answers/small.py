"""Small mode: an extractive, always-cited answer with no LLM at all, or "no answer found".

Passages are first rejoined (:mod:`app.answers.passages`): hard line breaks and hyphenation
undone, headings, titles, page headers and contents lines set apart, so that no candidate is a
line fragment or a heading.

With a reader (``TANDEM_READER``, :mod:`smallmodels.reader`): the best answer span over the
best three (reranked) passages, the sentence around it, and a confidence. Candidates are groups
of overlapping spans whose probability masses add up (the reader's scores share one softmax with
a "no answer" option, so "July 1969" and "20 July 1969" support each other); a span inside a
heading is no candidate. A group's mass is multiplied by a prior on its passage's rank
(``exp(-0.7 * rank)``: the reader's softmax across passages ignores what retrieval already
knows), weighed down (x0.2) when the question asks "when / who / how many" and the span holds
no date / name / number while another candidate does, and re-weighted by how close its sentence
is to the question (embedder cosine, ``exp(cos / 0.2)``, total mass kept). With a checker
(``TANDEM_CHECKER``) the best three candidates are then checked against the question and their
passage, and the mass times the checker's score decides: the reader alone answers "Who
discovered penicillin?" with any discoverer a passage names, the checker tells which one the
passage says discovered *penicillin*.

Without a reader: the best body sentence of the passages, scored against the question by the
reranker (sigmoid of its logit) when one is configured, else by the embedder (cosine), with
the same preference for the wanted kind of answer.

Whether to answer at all and the ``confidence`` come from :mod:`app.answers.calibration`:
logistic models over the reader's no-answer score, the checker's score and retrieval scores,
fit on held-out questions: small mode answers when the probability that the passages answer
the question reaches the fitted threshold (or ``min_confidence``, ``TANDEM_SMALL_MIN_CONFIDENCE``,
when that is higher); a configuration without a fit falls back to its raw score against
``min_confidence``. The result also says who checked
the answer (``checker``, the ``reader``'s own score, or nobody).

Everything here is synchronous and CPU-bound; the service runs it in a worker thread. The
reader sees at most ``reader_passages`` passages (one short forward pass each on a CPU), so
small mode stays usable on two cores.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from app.answers.calibration import Calibration, load_calibrations
from app.answers.passages import Rejoined, answer_kind, has_kind, overlap, rejoin
from app.answers.prompt import Passage

NO_ANSWER = "No answer found in the indexed documents."
Method = Literal["reader", "reranker", "embedder", "none"]
#: Sentences scored by the sentence fallback at most.
MAX_SENTENCES = 64
#: Reader candidates (groups of overlapping spans) weighed at most.
MAX_CANDIDATES = 8
#: Reader spans asked for (before grouping and dropping headings).
READER_SPANS = 40
#: Temperature of the sentence weighting of reader candidates (None: off). With the rank prior
#: it is neutral on NYT (F1 0.523 vs 0.529 on 200 questions, within noise) and lifts the demo
#: questions from 0.68 to 0.75 F1 (a reader that answers "who discovered X" with any discoverer).
SENTENCE_TEMPERATURE: float | None = 0.2
#: A reader candidate's mass is multiplied by ``exp(-RANK_PRIOR * passage rank)`` (rank 0 for
#: the first passage): retrieval (and reranking) already said which passage is likeliest to hold
#: the answer, and the reader's softmax across passages ignores it.
RANK_PRIOR = 0.7
#: Passages the reader reads (the best ones); more cost CPU and add distractors. Measured on
#: the NYT halves (2026-11-30, `tandem bench answers --reader-passages N`): 2 gives F1 0.635 on
#: the cal half against 0.627 for 3, but 0.589 against 0.586 on the test half (noise), and it
#: loses a demo question ("When did the Titanic sink?" gets the departure date): 3 stays.
READER_PASSAGES = 3
#: Weight of a candidate that is not of the kind the question asks for (when one is).
KIND_PENALTY = 0.2
#: Reader candidates checked by the checker (the best ones by mass).
CHECK_CANDIDATES = 3


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
    checked_by: str | None = None
    """Who checked the span: ``checker``, ``reader`` (its own span probability) or None."""
    check_score: float | None = None
    """The checker's score of the span (or the reader's span probability)."""
    checker_name: str | None = None
    features: dict[str, float] = field(default_factory=dict)
    """What the abstention and the confidence were computed from."""
    calibration: str | None = None
    """The feature set of the calibration applied (None: uncalibrated raw score)."""
    why: str = ""
    """In words: why this answer, or why no answer."""

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
            "calibrated": self.calibration is not None,
            "why": self.why,
        }


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, x))))


@dataclass
class _Candidate:
    passage_index: int
    start: int
    end: int
    text: str
    mass: float
    sentence: str = ""
    score: float = 0.0
    kind_ok: bool = True


class SmallAnswerer:
    """Extractive answers from a reader, or supporting sentences from a reranker/embedder."""

    def __init__(
        self,
        reader: Any = None,
        reranker: Any = None,
        embedder: Any = None,
        *,
        checker: Any = None,
        calibrations: dict[str, Calibration] | None = None,
        min_confidence: float = 0.1,
        max_passages: int = 5,
        max_answer_tokens: int = 30,
        reader_passages: int = READER_PASSAGES,
        rank_prior: float = RANK_PRIOR,
        sentence_temperature: float | None = SENTENCE_TEMPERATURE,
        kind_penalty: float = KIND_PENALTY,
        check_candidates: int = CHECK_CANDIDATES,
    ) -> None:
        self.reader = reader
        self.reader_passages = max(1, reader_passages)
        self.rank_prior = rank_prior
        self.sentence_temperature = sentence_temperature
        self.kind_penalty = kind_penalty
        self.check_candidates = check_candidates
        self.reranker = reranker
        self.embedder = embedder
        self.checker = checker
        self.calibrations = load_calibrations() if calibrations is None else calibrations
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

    @property
    def feature_set(self) -> str:
        """The calibration this configuration uses: ``reader+checker``, ``reader`` or
        ``sentence`` (embedder-scored sentences)."""
        if self.reader is not None:
            return "reader+checker" if self.checker is not None else "reader"
        return "sentence" if self.reranker is None else "sentence-reranker"

    @property
    def calibration(self) -> Calibration | None:
        return self.calibrations.get(self.feature_set)

    def describe(self) -> str:
        cal = "calibrated" if self.calibration is not None else "uncalibrated"
        if self.reader is not None:
            checked = f", spans checked by {getattr(self.checker, 'name', 'the checker')}"
            return (
                f"reader {getattr(self.reader, 'name', 'loaded')}"
                f"{checked if self.checker is not None else ''} ({cal})"
            )
        if self.reranker is not None:
            return f"no reader: best sentence by reranker {getattr(self.reranker, 'name', '')}"
        return f"no reader: best sentence by embedder similarity ({cal})"

    def answer(
        self, question: str, passages: Sequence[Passage], embedder: Any = None
    ) -> SmallAnswer:
        """The small answer to ``question`` from ``passages`` (rank order, numbered)."""
        passages = list(passages)[: self.max_passages]
        if not passages:
            return SmallAnswer(False, NO_ANSWER, 0.0, self.method, why="no passages")
        rejoined = [rejoin(p.text) for p in passages]
        if self.reader is not None:
            return self._read(question, passages, rejoined, embedder or self.embedder)
        return self._best_sentence(question, passages, rejoined, embedder or self.embedder)

    # -- deciding -------------------------------------------------------------------------------
    def _decide(self, answer: SmallAnswer, raw: float) -> SmallAnswer:
        """Fill ``found``, ``confidence``, ``answer`` and ``why`` from the features."""
        cal = self.calibration
        if cal is not None:
            _, p_answerable, confidence = cal.judge(answer.features)
            answer.calibration = cal.name
            threshold = max(cal.threshold, self.min_confidence)
            found = p_answerable >= threshold
            if not found:
                answer.why = (
                    f"the passages do not seem to answer the question (answerable "
                    f"{p_answerable:.2f} < {threshold:.2f})"
                )
        else:
            confidence = raw
            found = confidence >= self.min_confidence
            if not found:
                answer.why = f"score {confidence:.2f} below {self.min_confidence} (uncalibrated)"
        answer.found = found
        answer.confidence = round(min(1.0, max(0.0, confidence)), 4)
        if found and answer.passage is not None:
            answer.answer = f"{answer.span} [{answer.passage.n}]"
            if not answer.why:
                answer.why = self._why_found(answer)
        else:
            answer.answer = NO_ANSWER
        return answer

    @staticmethod
    def _why_found(answer: SmallAnswer) -> str:
        how = {
            "reader": "extracted by the reader",
            "reranker": "the sentence the reranker scored best",
            "embedder": "the sentence closest to the question (embedder)",
        }.get(answer.method, "")
        if answer.checked_by == "checker":
            how += f"; the checker scored it {answer.check_score:.2f} against its passage"
        elif answer.checked_by == "reader":
            how += "; no checker: only the reader's own score"
        else:
            how += "; not checked (no checker configured)"
        return how

    def _encode_sims(self, embedder: Any, question: str, texts: Sequence[str]) -> dict[str, float]:
        unique = sorted({t for t in texts if t})
        if embedder is None or not unique:
            return {}
        vecs = np.asarray(embedder.encode([question, *unique]), dtype=np.float64)
        return {t: float(s) for t, s in zip(unique, vecs[1:] @ vecs[0], strict=True)}

    # -- reader ---------------------------------------------------------------------------------
    def _read(
        self, question: str, passages: list[Passage], rejoined: list[Rejoined], embedder: Any
    ) -> SmallAnswer:
        from smallmodels.reader import sentence_around

        passages = passages[: self.reader_passages]
        rejoined = rejoined[: self.reader_passages]
        texts = [r.text for r in rejoined]
        detailed = getattr(self.reader, "read_detailed", None)
        if detailed is not None:
            result = detailed(
                question, texts, top_n=READER_SPANS, max_answer_tokens=self.max_answer_tokens
            )
            spans, no_answer = list(result.spans), float(result.no_answer)
        else:
            spans = list(
                self.reader.read(
                    question, texts, top_n=READER_SPANS, max_answer_tokens=self.max_answer_tokens
                )
            )
            no_answer = 0.5
        headings = [r.heading_ranges() for r in rejoined]
        # Overlapping spans ("July 1969", "20 July 1969") are one candidate: their mass adds up.
        clusters: list[_Candidate] = []
        for span in spans:
            p = span.passage_index
            if "\n" in texts[p][span.start : span.end] or any(
                span.start < e and s < span.end for s, e in headings[p]
            ):
                continue  # a heading, or across units: no answer candidate
            for c in clusters:
                if c.passage_index == p and span.start < c.end and c.start < span.end:
                    c.mass += span.score
                    break
            else:
                clusters.append(
                    _Candidate(p, span.start, span.end, " ".join(span.text.split()), span.score)
                )
        clusters = clusters[:MAX_CANDIDATES]
        if not clusters:
            return SmallAnswer(
                False, NO_ANSWER, 0.0, "reader", why="the reader found no span outside headings"
            )
        kind = answer_kind(question)
        for c in clusters:
            c.sentence = " ".join(
                sentence_around(texts[c.passage_index], c.start, c.end)[2].split()
            )
            c.kind_ok = has_kind(c.text, kind)
            c.score = c.mass * math.exp(-self.rank_prior * c.passage_index)
        if kind is not None and any(c.kind_ok for c in clusters):
            for c in clusters:
                c.score *= 1.0 if c.kind_ok else self.kind_penalty
        sims = self._encode_sims(embedder, question, [c.sentence for c in clusters] + texts)
        if sims and self.sentence_temperature and len(clusters) > 1:
            weighed = self._weigh([sims[c.sentence] for c in clusters], [c.score for c in clusters])
            for c, w in zip(clusters, weighed, strict=True):
                c.score = w
        order = sorted(range(len(clusters)), key=lambda i: -clusters[i].score)
        best = clusters[order[0]]
        check: dict[int, float] = {}
        if self.checker is not None and self.check_candidates > 0:
            top = order[: self.check_candidates]
            results = self._check_many(
                [(question, clusters[i].text, [texts[clusters[i].passage_index]]) for i in top]
            )
            check = dict(zip(top, results, strict=True))
            best = clusters[max(top, key=lambda i: clusters[i].score * check[i])]
        bi = clusters.index(best)
        passage = passages[best.passage_index]
        features = {
            "mass": min(1.0, best.score),
            "raw": min(1.0, best.mass),
            "no_answer": no_answer,
            "sim": sims.get(best.sentence, 0.0),
            "retrieval": max((sims.get(t, 0.0) for t in texts), default=0.0),
            "overlap": overlap(question, best.sentence),
            "passage_overlap": max(overlap(question, t) for t in texts),
            "kind_ok": float(best.kind_ok),
        }
        out = SmallAnswer(
            found=False,
            answer=NO_ANSWER,
            confidence=0.0,
            method="reader",
            span=best.text,
            sentence=best.sentence,
            passage=passage,
            features=features,
        )
        if bi in check:
            features["checker"] = check[bi]
            out.checked_by, out.check_score = "checker", round(check[bi], 4)
            out.checker_name = getattr(self.checker, "name", None)
        else:
            out.checked_by, out.check_score = "reader", round(min(1.0, best.mass), 4)
            out.checker_name = getattr(self.reader, "name", None)
        return self._decide(out, features["mass"])

    def _check_many(self, items: list[tuple[str, str, list[str]]]) -> list[float]:
        many = getattr(self.checker, "check_many", None)
        if many is not None:
            return [float(g.score) for g in many(items)]
        return [float(self.checker.check(q, a, p).score) for q, a, p in items]

    def _weigh(self, similarity: list[float], masses: list[float]) -> list[float]:
        t = float(self.sentence_temperature or 1.0)
        top = max(similarity)
        weights = [m * math.exp((s - top) / t) for m, s in zip(masses, similarity, strict=True)]
        total = sum(weights)
        if total <= 0:
            return masses
        mass = sum(masses)
        return [w / total * mass for w in weights]

    def weigh_by_sentence(
        self, question: str, sentences: list[str], masses: list[float], embedder: Any
    ) -> list[float]:
        """Candidate masses re-weighted by how close each one's sentence is to the question
        (``exp(cosine / temperature)``), keeping their total: the reader alone spreads its mass
        over every date of every passage for a "when" question; the sentence that answers the
        question is the one that reads like it."""
        sims = self._encode_sims(embedder, question, sentences)
        return self._weigh([sims[s] for s in sentences], masses)

    # -- sentence fallback ----------------------------------------------------------------------
    def _best_sentence(
        self, question: str, passages: list[Passage], rejoined: list[Rejoined], embedder: Any
    ) -> SmallAnswer:
        from core.text import sentence_bounds

        units: list[tuple[int, int, str]] = []  # (passage index, sentence index, text)
        for pi, r in enumerate(rejoined):
            si = 0
            for body in r.body():
                for s, e in sentence_bounds(body):
                    text = body[s:e].strip()
                    if len(text.split()) >= 3:
                        units.append((pi, si, text))
                    si += 1
        units = units[:MAX_SENTENCES]
        if not units:
            return SmallAnswer(False, NO_ANSWER, 0.0, self.method, why="no sentences to quote")
        texts = [u[2] for u in units]
        sims = self._encode_sims(embedder, question, texts + [r.text for r in rejoined])
        if self.reranker is not None:
            method: Method = "reranker"
            logits = np.asarray(self.reranker.score(question, texts), dtype=np.float64)
            scores = [_sigmoid(float(x)) for x in logits]
        elif embedder is not None:
            method = "embedder"
            scores = [max(0.0, sims[t]) for t in texts]
        else:
            return SmallAnswer(False, NO_ANSWER, 0.0, "none", why="no reader, reranker or embedder")
        kind = answer_kind(question)
        kind_ok = [has_kind(t, kind) for t in texts]
        weighted = list(scores)
        if kind is not None and any(kind_ok):
            weighted = [
                s if ok else s * self.kind_penalty for s, ok in zip(scores, kind_ok, strict=True)
            ]
        order = sorted(range(len(units)), key=lambda i: -weighted[i])
        top = order[0]
        pi, si, _ = units[top]
        chosen = [top]
        nxt = next((i for i in order[1:2] if units[i][0] == pi and units[i][1] == si + 1), None)
        if nxt is not None and weighted[nxt] >= 0.9 * weighted[top]:
            chosen.append(nxt)
        text = " ".join(" ".join(units[i][2] for i in chosen).split())
        body_texts = [r.text for r in rejoined]
        features = {
            "score": scores[top],
            "sim": sims.get(texts[top], 0.0),
            "retrieval": max((sims.get(t, 0.0) for t in body_texts), default=0.0),
            "overlap": overlap(question, text),
            "passage_overlap": max(overlap(question, t) for t in body_texts),
            "kind_ok": float(kind_ok[top]),
        }
        out = SmallAnswer(
            found=False,
            answer=NO_ANSWER,
            confidence=0.0,
            method=method,
            span=text,
            sentence=text,
            passage=passages[pi],
            features=features,
        )
        if self.checker is not None:
            score = self._check_many([(question, text, [passages[pi].text])])[0]
            features["checker"] = score
            out.checked_by, out.check_score = "checker", round(score, 4)
            out.checker_name = getattr(self.checker, "name", None)
        return self._decide(out, scores[top])

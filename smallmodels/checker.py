"""Groundedness checker: does a passage support this answer to this question?

An LLM answer is split into sentences (citation markers such as ``[1]`` stay with their
sentence and are stripped before scoring). Every sentence is scored by a small cross-encoder
against every window of every given passage; a sentence's score is the best of those (its cited
passages are among them, so "cited or any passage, take the max" is the max over all). The
answer-level score is the *minimum* sentence score: an answer is only as grounded as its least
supported claim, and one invented sentence is enough to make the answer unfaithful (a mean would
let three supported sentences hide a fourth invented one).

The cross-encoder reads the pair ``(f"question: {q} answer: {a}", passage_window)`` and outputs
one logit; its sigmoid is the probability that the passage supports the answer *to this
question*. Train one with ``tandem checker train`` (see :mod:`training.checker`).

Optionally an extractive reader (``smallmodels.reader``) can be blended in: its
``score_answer(question, passage, answer)`` says how likely the passage yields this answer to
this question, which is exactly the judgement a style-driven checker misses.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from core.errors import ModelNotFound, UsageError
from core.text import cited_passages, split_sentences, strip_markers
from smallmodels import runtime
from smallmodels.cache import ModelCache
from smallmodels.hardware import cpu_has_fast_bf16
from smallmodels.released import ReleasedCrossEncoder, default_folder, is_release, sigmoid
from smallmodels.spec import ResolvedModel, fingerprint, read_folder_config, resolve

#: The default checker: ``models/checker-minilm`` in the checkout (git-ignored; made by
#: ``tandem checker train models/checker-minilm ...``) when it is there, else the checker
#: released with Tandem (``smallmodels/released/checker-minilm``, int8 ONNX, no PyTorch).
DEFAULT_CHECKER = default_folder("checker")
#: Option defaults saved with a trained checker (``reader``, ``reader_weight``,
#: ``reader_max_words``, ``reader_threshold``); spec options override them.
CONFIG_FILE = "tandem_checker.json"
#: Claims of at most this many words are also judged by the reader (when one is attached).
DEFAULT_READER_MAX_WORDS = 10
#: Passages are scored window by window: whole sentences packed up to this many words, each
#: window overlapping the previous one by a sentence. The checker judges local evidence (the
#: sentence that carries the answer and the words it shares with the question); short windows
#: keep that signal undiluted and make training and scoring several times cheaper on a CPU.
WINDOW_WORDS = 40
#: Sentences a window overlaps with the previous one.
WINDOW_OVERLAP = 1


def use_bf16(precision: str, device: str = "cpu") -> bool:
    """Whether ``precision`` (``auto``, ``bf16`` or ``fp32``) means bfloat16 autocast here."""
    if precision not in {"auto", "bf16", "fp32"}:
        raise ValueError(f"precision must be auto, bf16 or fp32, not {precision!r}")
    if precision == "auto":
        return device == "cpu" and cpu_has_fast_bf16()
    return precision == "bf16"


def default_checker_spec() -> str:
    """The checker spec in force: the configured ``checker`` of :mod:`smallmodels.runtime`
    (the application's checker setting), else :data:`DEFAULT_CHECKER`."""
    return runtime.current().checker or DEFAULT_CHECKER


def folder_config(path: str | Path) -> dict[str, str]:
    """Option defaults stored with a checker (``tandem_checker.json``), as spec option strings;
    spec options win."""
    return {str(k): str(v) for k, v in read_folder_config(path, CONFIG_FILE).items()}


def resolve_reader_option(value: str) -> str | None:
    """A checker's ``reader`` option as a reader spec: ``none`` (or empty) is no reader;
    ``auto`` is Tandem's default reader (``models/reader-minilm`` when trained, else the
    released one) when there is one."""
    value = value.strip()
    if value.lower() in {"", "none", "off"}:
        return None
    if value.lower() == "auto":
        from smallmodels.reader import DEFAULT_READER

        folder = Path(DEFAULT_READER)
        return DEFAULT_READER if (folder / "config.json").is_file() or is_release(folder) else None
    return value


def passage_windows(passage: str, max_words: int = WINDOW_WORDS) -> list[str]:
    """Cut a long passage into overlapping windows of whole sentences (short ones stay whole)."""
    words = passage.split()
    if len(words) <= max_words:
        return [passage.strip()] if words else []
    units: list[list[str]] = []
    for sentence in split_sentences(passage):
        tokens = sentence.split()
        while len(tokens) > max_words:  # a run-on "sentence": cut it by words
            units.append(tokens[:max_words])
            tokens = tokens[max_words // 2 :]
        units.append(tokens)
    windows: list[str] = []
    i = 0
    while i < len(units):
        size, j = 0, i
        while j < len(units) and (size + len(units[j]) <= max_words or j == i):
            size += len(units[j])
            j += 1
        windows.append(" ".join(w for unit in units[i:j] for w in unit))
        if j >= len(units):
            break
        i = max(i + 1, j - WINDOW_OVERLAP)
    return windows


_WORD_RE = re.compile(r"\w+")


def best_window(passage: str, question: str, answer: str, max_words: int = WINDOW_WORDS) -> str:
    """The window of ``passage`` a checker most likely reads ``answer`` from (training uses it).

    Among the windows that contain the answer verbatim (all windows when none does), the one
    sharing the most words with the question and the answer.
    """
    windows = passage_windows(passage, max_words)
    if len(windows) <= 1:
        return windows[0] if windows else ""
    needle = " ".join(answer.lower().split())
    holding = [w for w in windows if needle and needle in " ".join(w.lower().split())]
    wanted = {w.lower() for w in _WORD_RE.findall(f"{question} {answer}")}
    return max(
        holding or windows,
        key=lambda w: len(wanted & {t.lower() for t in _WORD_RE.findall(w)}),
    )


def pair_text(question: str, answer: str) -> str:
    """The first text of a cross-encoder pair: the question and the answer, labelled."""
    return f"question: {' '.join(question.split())} answer: {' '.join(answer.split())}"


@dataclass
class SentenceCheck:
    """One answer sentence and how well the passages support it."""

    text: str
    """The sentence as written in the answer, citation markers included."""
    score: float
    """Support in 0..1: the best score over all passages (cited ones included)."""
    supported: bool
    """``score >= threshold``."""
    passages: list[int]
    """Indices of the passages that support the sentence (score >= threshold), best first."""
    cited: list[int] = field(default_factory=list)
    """Indices of the passages this sentence cites (from ``cited`` or its markers)."""
    cited_score: float | None = None
    """The best score over the cited passages alone (None when it cites none)."""


@dataclass
class Groundedness:
    """How well an answer is supported by its passages."""

    score: float
    """Answer-level score: the minimum sentence score (1.0 for an empty answer)."""
    sentences: list[SentenceCheck]
    unsupported: list[str]
    """Texts of the sentences scored below the threshold."""


@runtime_checkable
class Checker(Protocol):
    """Scores whether passages support an answer to a question."""

    def score(self, question: str, answer: str, passages: Sequence[str]) -> float: ...

    def check(
        self,
        question: str,
        answer: str,
        passages: Sequence[str],
        cited: Mapping[int, Sequence[int]] | None = None,
        threshold: float = 0.5,
    ) -> Groundedness: ...


@runtime_checkable
class AnswerScorer(Protocol):
    """What the checker needs from an extractive reader."""

    def score_answer(self, question: str, passage: str, answer: str) -> float: ...


def _is_cross_encoder(resolved: ResolvedModel) -> bool:
    if is_release(resolved.path):
        return True
    config = Path(resolved.path) / "config.json"
    if resolved.source == "hub" or not config.is_file():
        return True  # let the loader decide

    try:
        architectures = json.loads(config.read_text()).get("architectures") or []
    except (OSError, ValueError):
        return False
    return any("ForSequenceClassification" in a for a in architectures)


class CrossEncoderChecker:
    """A :class:`Checker` backed by a sentence-transformers ``CrossEncoder`` (one logit).

    ``reader`` (an object with ``score_answer`` or a reader spec for ``smallmodels.reader``)
    is blended in with weight ``reader_weight``, per answer-like claim (at most
    ``reader_max_words`` words; whole sentences are the cross-encoder's alone) and passage:
    ``(1-w) * max over windows(cross_encoder) + w * sqrt(reader(whole passage))``, mapped
    monotonically so that its calibrated decision point ``reader_threshold`` lands on 0.5.
    Spec options: ``reader=READER_SPEC|auto|none`` and ``reader_weight=W`` attach a reader
    (for example ``models/checker-minilm@reader=models/reader-minilm``; ``auto``
    is ``models/reader-minilm`` when trained); their defaults come from the folder's
    ``tandem_checker.json`` (``tandem checker train`` writes ``reader=auto``: the blend is what
    tells a right answer from another question's answer), else no reader;
    ``precision=auto|bf16|fp32`` (default auto: bfloat16 autocast on CPUs that
    multiply bfloat16 natively, about twice as fast, scores within about 0.01).
    """

    def __init__(
        self,
        spec: str | None = None,
        reader: AnswerScorer | str | None = None,
        *,
        reader_weight: float = 0.5,
        device: str = "cpu",
        batch_size: int = 32,
    ) -> None:
        self.resolved: ResolvedModel = resolve(spec or default_checker_spec(), DEFAULT_CHECKER)
        if not _is_cross_encoder(self.resolved):
            raise ModelNotFound(
                f"checker {self.resolved.spec!r} is not a cross-encoder (no sequence-classification"
                " head); train one with `tandem checker train OUT`"
            )
        #: A released checker (int8 ONNX, :mod:`smallmodels.released`): no PyTorch at all.
        self.released = is_release(self.resolved.path)
        self.model: Any
        if self.released:
            self.model = ReleasedCrossEncoder(self.resolved.path, "checker")
        else:
            import transformers
            from sentence_transformers import CrossEncoder

            verbosity = transformers.logging.get_verbosity()
            transformers.logging.set_verbosity_error()
            try:
                self.model = CrossEncoder(self.resolved.path, device=device)
            finally:
                transformers.logging.set_verbosity(verbosity)
        if self.model.num_labels != 1:
            raise ModelNotFound(
                f"checker {self.resolved.spec!r} has {self.model.num_labels} labels; a checker"
                " needs a cross-encoder with one output (num_labels=1)"
            )
        self.name = self.resolved.name
        self.spec = self.resolved.spec
        self.fingerprint = fingerprint(self.resolved)
        self.batch_size = batch_size
        options = {**folder_config(self.resolved.path), **self.resolved.options}
        if reader is None:
            reader = resolve_reader_option(str(options.get("reader", "none")))
        try:
            self.bf16 = use_bf16(options.get("precision", "auto"), device)
            self.reader_weight = float(options.get("reader_weight", reader_weight))
            self.reader_max_words = int(options.get("reader_max_words", DEFAULT_READER_MAX_WORDS))
            self.reader_threshold = float(options.get("reader_threshold", 0.5))
            if not 0.0 < self.reader_threshold < 1.0:
                raise ValueError("reader_threshold must lie between 0 and 1")
        except ValueError as exc:
            raise UsageError(f"bad checker spec {spec!r}: {exc}") from None
        if isinstance(reader, str):
            from smallmodels.reader import load_reader

            reader = load_reader(reader)
        self.reader: AnswerScorer | None = reader
        self._lock = threading.Lock()

    # -- raw pair scoring -------------------------------------------------------------------

    def score_pairs(self, pairs: Sequence[tuple[str, str, str]]) -> list[float]:
        """Cross-encoder scores of ``(question, answer, passage)`` triples (passages as given)."""
        if not pairs:
            return []
        inputs = [(pair_text(q, a), p) for q, a, p in pairs]
        if self.released:  # the sigmoid of the logit, as CrossEncoder.predict gives it
            return [float(v) for v in sigmoid(self.model.predict(inputs))]
        import torch

        with self._lock, torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            raw: Any = self.model.predict(
                inputs, batch_size=self.batch_size, show_progress_bar=False
            )
        return [float(s) for s in raw]

    def reader_scores(self, triples: Sequence[tuple[str, str, str]]) -> list[float]:
        """The reader's ``score_answer`` for ``(question, answer, passage)`` triples (whole
        passages: the reader windows them itself)."""
        if self.reader is None:
            raise ValueError("this checker has no reader")
        return [float(self.reader.score_answer(q, p, a)) for q, a, p in triples]

    def blend(self, cross_encoder: float, reader: float) -> float:
        """The blended score of one sentence against one passage.

        The reader's score is ``P(start) * P(end)``; its square root (the geometric mean of the
        two boundary probabilities) is on the scale of a per-decision probability, so that 0.5
        stays a usable threshold after blending.
        """
        w = self.reader_weight
        mixed = (1 - w) * cross_encoder + w * math.sqrt(max(0.0, min(1.0, reader)))
        # Piecewise-linear and monotone: the blend's calibrated decision point maps to 0.5.
        t = self.reader_threshold
        return 0.5 * mixed / t if mixed <= t else 0.5 + 0.5 * (mixed - t) / (1 - t)

    def reads(self, claim: str) -> bool:
        """Whether the reader judges ``claim``: an answer-like claim of at most
        ``reader_max_words`` words. A whole sentence is no span a reader would extract, so
        sentences are judged by the cross-encoder alone."""
        return len(claim.split()) <= self.reader_max_words

    # -- answers ----------------------------------------------------------------------------

    def check_many(
        self,
        items: Sequence[tuple[str, str, Sequence[str]]],
        cited: Sequence[Mapping[int, Sequence[int]] | None] | None = None,
        threshold: float = 0.5,
    ) -> list[Groundedness]:
        """:meth:`check` for many ``(question, answer, passages)`` at once (one batched pass)."""
        plan: list[tuple[int, int, int]] = []  # (item, sentence, passage) per triple
        triples: list[tuple[str, str, str]] = []
        split: list[list[str]] = []
        for i, (question, answer, passages) in enumerate(items):
            sentences = split_sentences(answer)
            split.append(sentences)
            windows = [passage_windows(p) for p in passages]
            for s, sentence in enumerate(sentences):
                claim = strip_markers(sentence)
                for p, wins in enumerate(windows):
                    for window in wins:
                        plan.append((i, s, p))
                        triples.append((question, claim, window))
        flat = self.score_pairs(triples)
        best: dict[tuple[int, int, int], float] = {}
        for key, value in zip(plan, flat, strict=True):
            best[key] = max(value, best.get(key, 0.0))
        if self.reader is not None and self.reader_weight > 0:
            keys = sorted(k for k in best if self.reads(strip_markers(split[k[0]][k[1]])))
            read = self.reader_scores(
                [(items[i][0], strip_markers(split[i][s]), items[i][2][p]) for i, s, p in keys]
            )
            for key, value in zip(keys, read, strict=True):
                best[key] = self.blend(best[key], value)
        results: list[Groundedness] = []
        for i, (_question, _answer, passages) in enumerate(items):
            item_cited = cited[i] if cited is not None else None
            checks: list[SentenceCheck] = []
            for s, sentence in enumerate(split[i]):
                per_passage = [best.get((i, s, p), 0.0) for p in range(len(passages))]
                named = list(item_cited.get(s, [])) if item_cited else cited_passages(sentence)
                named = [p for p in named if 0 <= p < len(passages)]
                score = max(per_passage, default=0.0)
                supporting = sorted(
                    (p for p, v in enumerate(per_passage) if v >= threshold),
                    key=lambda p: -per_passage[p],
                )
                checks.append(
                    SentenceCheck(
                        text=sentence,
                        score=score,
                        supported=score >= threshold,
                        passages=supporting,
                        cited=named,
                        cited_score=max((per_passage[p] for p in named), default=None),
                    )
                )
            results.append(
                Groundedness(
                    score=min((c.score for c in checks), default=1.0),
                    sentences=checks,
                    unsupported=[c.text for c in checks if not c.supported],
                )
            )
        return results

    def check(
        self,
        question: str,
        answer: str,
        passages: Sequence[str],
        cited: Mapping[int, Sequence[int]] | None = None,
        threshold: float = 0.5,
    ) -> Groundedness:
        """Check every sentence of ``answer`` against ``passages``.

        ``cited`` maps a sentence index to the passage indices it cites (zero-based); without
        it the sentence's own markers (``[1]`` is passage 0) are used.
        """
        return self.check_many([(question, answer, passages)], [cited], threshold)[0]

    def score(self, question: str, answer: str, passages: Sequence[str]) -> float:
        """The answer-level score of :meth:`check`."""
        return self.check(question, answer, passages).score

    def score_many(self, items: Sequence[tuple[str, str, Sequence[str]]]) -> list[float]:
        """Answer-level scores for many ``(question, answer, passages)`` at once."""
        return [g.score for g in self.check_many(items)]


_CACHE: ModelCache[CrossEncoderChecker] = ModelCache(CrossEncoderChecker)


def load_checker(spec: str | None = None) -> CrossEncoderChecker:
    """Load (once per process) the checker for ``spec`` (default: :func:`default_checker_spec`)."""
    key = spec or default_checker_spec()
    return _CACHE.get(key)

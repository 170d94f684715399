"""The extractive reader: finds the answer span to a question inside given passages.

A small encoder (MiniLM fine-tuned on SQuAD-format data, see :mod:`training.reader`)
predicts start and end logits for every token of every (question, passage window) pair. A span's
logit is ``start + end``; its ``score`` is a softmax over every valid span of every passage
window *plus* one no-answer option (the [CLS] start+end logit of the window that is most sure an
answer is present), so a score threshold reads as "no answer found".
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from core.errors import ModelNotFound, UsageError
from core.text import normalize_answer, sentence_bounds, token_f1
from smallmodels.cache import ModelCache
from smallmodels.hardware import cpu_has_fast_bf16
from smallmodels.released import PairTokenizer, ReleasedModel, default_folder, is_release
from smallmodels.spec import ResolvedModel, fingerprint, resolve

#: The default reader: ``models/reader-minilm`` (``make models``; git-ignored) when it is there,
#: else the reader released with Tandem (``smallmodels/released/reader-minilm``, int8 ONNX).
DEFAULT_READER = default_folder("reader")


@dataclass(frozen=True)
class Span:
    """One answer candidate: ``passages[passage_index][start:end] == text``."""

    passage_index: int
    start: int
    end: int
    text: str
    score: float
    """Probability-like, 0..1: this span's share among all spans and the no-answer option."""
    logit: float
    """Raw start+end logit (comparable across passages of one call)."""


@dataclass(frozen=True)
class ReadResult:
    """The best spans and the probability that no passage holds an answer."""

    spans: list[Span]
    no_answer: float


@runtime_checkable
class Reader(Protocol):
    """Extracts answer spans from passages."""

    name: str
    fingerprint: str

    def read(
        self,
        question: str,
        passages: Sequence[str],
        top_n: int = 3,
        max_answer_tokens: int = 30,
    ) -> list[Span]: ...

    def score_answer(self, question: str, passage: str, answer: str) -> float: ...


@dataclass
class _Window:
    passage_index: int
    input_ids: list[int]
    token_type_ids: list[int]
    offsets: list[tuple[int, int] | None]
    """Char offsets in the passage for context tokens, None for question/special tokens."""


def window_limits(max_seq_len: int, doc_stride: int) -> tuple[int, int]:
    """(max question tokens, stride) that always leave the passage room in a window."""
    max_query = min(64, max_seq_len // 2)
    stride = max(1, min(doc_stride, max_seq_len - max_query - 4))
    return max_query, stride


def pad_width(n: int, multiple: int, limit: int = 512) -> int:
    """``n`` rounded up to a multiple (never past ``limit`` unless ``n`` is): fewer shapes."""
    return max(n, min(limit, -(-n // multiple) * multiple))


class ExtractiveReader:
    """What every reader backend shares: (question, passage) windows, span post-processing and
    answer scoring, in numpy. A backend supplies :meth:`_logits` (start and end logits of each
    window): :class:`TransformersReader` (PyTorch) or :class:`OnnxReader` (ONNX Runtime, no
    PyTorch)."""

    name: str
    fingerprint: str
    max_seq_len: int
    max_query_tokens: int
    doc_stride: int
    pair_tokenizer: PairTokenizer

    def _setup_windows(self, max_seq_len: int, doc_stride: int, limit: int) -> None:
        self.max_seq_len = max(64, min(max_seq_len, limit))
        self.max_query_tokens, self.doc_stride = window_limits(self.max_seq_len, doc_stride)

    def _logits(self, windows: Sequence[_Window]) -> list[tuple[np.ndarray, np.ndarray]]:
        """(start_logits, end_logits) float32 arrays per window (one entry per token)."""
        raise NotImplementedError

    # --- encoding ---------------------------------------------------------------------------

    def _trim_question(self, question: str) -> str:
        question = " ".join(question.split())
        offsets = self.pair_tokenizer.offsets(question)
        if len(offsets) <= self.max_query_tokens:
            return question
        return question[: offsets[self.max_query_tokens - 1][1]]

    def _windows(self, question: str, passages: Sequence[str]) -> list[_Window]:
        """Tokenise (question, passage) pairs into overlapping windows."""
        indices = [i for i, p in enumerate(passages) if p and p.strip()]
        if not indices:
            return []
        question = self._trim_question(question)
        encoded = self.pair_tokenizer.windows(
            question, [passages[i] for i in indices], self.max_seq_len, self.doc_stride
        )
        windows: list[_Window] = []
        for sample, enc in encoded:
            offsets: list[tuple[int, int] | None] = [
                (int(o[0]), int(o[1])) if s == 1 else None
                for o, s in zip(enc.offsets, enc.sequence_ids, strict=True)
            ]
            windows.append(
                _Window(
                    passage_index=indices[sample],
                    input_ids=list(enc.ids),
                    token_type_ids=list(enc.type_ids) if self.uses_token_types else [],
                    offsets=offsets,
                )
            )
        return windows

    uses_token_types: bool = True

    # --- reading ----------------------------------------------------------------------------

    def read(
        self,
        question: str,
        passages: Sequence[str],
        top_n: int = 3,
        max_answer_tokens: int = 30,
    ) -> list[Span]:
        """The ``top_n`` best answer spans over all passages, best first."""
        return self.read_detailed(question, passages, top_n, max_answer_tokens).spans

    def read_detailed(
        self,
        question: str,
        passages: Sequence[str],
        top_n: int = 3,
        max_answer_tokens: int = 30,
    ) -> ReadResult:
        """Like :meth:`read`, plus the probability that no passage holds the answer."""
        windows = self._windows(question, passages)
        if not windows or top_n <= 0:
            return ReadResult([], 1.0)
        logits = self._logits(windows)
        per_window = max(top_n * 4, 20)
        best: dict[tuple[int, int, int], float] = {}
        log_masses: list[float] = []
        null_logit = math.inf
        for window, (start_logits, end_logits) in zip(windows, logits, strict=True):
            null_logit = min(null_logit, float(start_logits[0] + end_logits[0]))
            context = np.array([o is not None for o in window.offsets])
            if not bool(context.any()):
                continue
            scores = start_logits[:, None] + end_logits[None, :]
            n = scores.shape[0]
            idx = np.arange(n)
            valid = (
                (idx[None, :] >= idx[:, None])
                & (idx[None, :] - idx[:, None] < max(1, max_answer_tokens))
                & context[:, None]
                & context[None, :]
            )
            flat = np.where(valid, scores, -np.inf).ravel()
            log_masses.append(_logsumexp(flat))
            k = min(per_window, int(valid.sum()))
            positions = np.argpartition(-flat, k - 1)[:k]
            positions = positions[np.argsort(-flat[positions], kind="stable")]
            for pos in positions.tolist():
                value = float(flat[pos])
                s_tok, e_tok = divmod(int(pos), n)
                s_off, e_off = window.offsets[s_tok], window.offsets[e_tok]
                if s_off is None or e_off is None:
                    continue
                key = (window.passage_index, s_off[0], e_off[1])
                if value > best.get(key, -math.inf):
                    best[key] = value
        log_masses.append(null_logit)
        log_total = _logsumexp(np.asarray(log_masses, dtype=np.float64))
        ranked = sorted(best.items(), key=lambda kv: kv[1], reverse=True)
        spans: list[Span] = []
        seen: set[tuple[int, int, int]] = set()
        for (p, start, end), logit in ranked:
            text = passages[p][start:end]
            # Trim whitespace the offsets may include, keeping offsets exact.
            lead = len(text) - len(text.lstrip())
            trail = len(text) - len(text.rstrip())
            start, end = start + lead, end - trail
            if end <= start or (p, start, end) in seen:
                continue
            seen.add((p, start, end))
            spans.append(
                Span(
                    passage_index=p,
                    start=start,
                    end=end,
                    text=passages[p][start:end],
                    score=min(1.0, math.exp(logit - log_total)),
                    logit=logit,
                )
            )
            if len(spans) >= top_n:
                break
        return ReadResult(spans, min(1.0, math.exp(null_logit - log_total)))

    # --- scoring a given answer -------------------------------------------------------------

    def score_answer(self, question: str, passage: str, answer: str) -> float:
        """How likely this reader is to extract ``answer`` for ``question`` from ``passage``."""
        return self.score_answers(question, passage, [answer])[0]

    def score_answers(self, question: str, passage: str, answers: Sequence[str]) -> list[float]:
        """:meth:`score_answer` for several answers sharing one forward pass.

        Per window, start and end positions get their own softmax (over context tokens and
        [CLS]); an answer's score is the best ``P(start) * P(end)`` over its occurrences in the
        passage (case-insensitive), and over windows. An answer that does not occur verbatim is
        matched to the passage span of at most ``len(answer) + 3`` tokens with the best SQuAD
        token F1, and its probability is scaled by that F1.
        """
        windows = self._windows(question, [passage])
        if not windows:
            return [0.0 for _ in answers]
        logits = self._logits(windows)
        log_probs = []
        for window, (start_logits, end_logits) in zip(windows, logits, strict=True):
            keep = np.array([o is not None for o in window.offsets])
            keep[0] = True
            log_probs.append((_log_softmax(start_logits, keep), _log_softmax(end_logits, keep)))
        scores: list[float] = []
        for answer in answers:
            target = answer.strip()
            if not target or not normalize_answer(target):
                scores.append(0.0)
                continue
            occurrences = [
                (m.start(), m.end(), 1.0)
                for m in re.finditer(re.escape(target), passage, flags=re.IGNORECASE)
            ]
            if not occurrences:
                occurrences = self._fuzzy_occurrences(passage, target, token_f1)
            best = 0.0
            for char_start, char_end, weight in occurrences:
                for window, (s, e) in zip(windows, log_probs, strict=True):
                    tokens = _token_span(window.offsets, char_start, char_end)
                    if tokens is None:
                        continue
                    prob = math.exp(float(s[tokens[0]] + e[tokens[1]])) * weight
                    best = max(best, prob)
            scores.append(min(1.0, best))
        return scores

    @staticmethod
    def _fuzzy_occurrences(
        passage: str, answer: str, similarity: Any
    ) -> list[tuple[int, int, float]]:
        """The passage span (by words) most similar to ``answer``, with its token F1."""
        words = [(m.start(), m.end()) for m in re.finditer(r"\S+", passage)]
        size = len(answer.split())
        best: tuple[int, int, float] | None = None
        for i in range(len(words)):
            for j in range(i, min(len(words), i + size + 3)):
                start, end = words[i][0], words[j][1]
                f1 = similarity(passage[start:end], answer)
                if f1 > 0 and (best is None or f1 > best[2]):
                    best = (start, end, f1)
        return [best] if best else []


def _logsumexp(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=np.float64)
    top = float(values.max(initial=-math.inf))
    if not math.isfinite(top):
        return top
    return top + math.log(float(np.exp(values - top).sum()))


def _log_softmax(logits: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """log-softmax over the ``keep`` positions (-inf elsewhere)."""
    masked = np.where(keep, np.asarray(logits, dtype=np.float64), -np.inf)
    return masked - _logsumexp(masked)


class TransformersReader(ExtractiveReader):
    """A reader backed by a transformers ``AutoModelForQuestionAnswering`` folder (PyTorch).

    ``spec`` options: ``precision=fp32|bf16`` (default: bf16 autocast on CPUs with native
    bfloat16, which is about 2.5x faster), ``max_seq_len=N``, ``stride=N``.
    """

    def __init__(
        self,
        spec: str | None = None,
        *,
        device: str = "cpu",
        max_seq_len: int = 384,
        doc_stride: int = 128,
        batch_size: int = 16,
        precision: str = "auto",
    ) -> None:
        from transformers import AutoConfig, AutoModelForQuestionAnswering, AutoTokenizer

        resolved = _resolve_reader(spec)
        if is_release(resolved.path):
            raise UsageError(
                f"reader {resolved.spec!r} is a released int8 ONNX model: open it with "
                "smallmodels.reader.load_reader (OnnxReader), not with PyTorch"
            )
        config = AutoConfig.from_pretrained(resolved.path)
        archs = getattr(config, "architectures", None) or []
        if not any(a.endswith("ForQuestionAnswering") for a in archs):
            raise ModelNotFound(
                f"model {resolved.spec!r} is not an extractive QA model "
                f"(architectures: {', '.join(archs) or 'none'})"
            )
        tokenizer = AutoTokenizer.from_pretrained(resolved.path, use_fast=True)
        model = AutoModelForQuestionAnswering.from_pretrained(resolved.path)
        opts = resolved.options
        self._setup(
            model,
            tokenizer,
            name=resolved.name,
            fingerprint=fingerprint(resolved),
            device=device,
            max_seq_len=int(opts.get("max_seq_len", max_seq_len)),
            doc_stride=int(opts.get("stride", doc_stride)),
            batch_size=batch_size,
            precision=opts.get("precision", precision),
        )
        self.resolved: ResolvedModel | None = resolved

    @classmethod
    def from_model(
        cls,
        model: Any,
        tokenizer: Any,
        *,
        name: str = "in-memory",
        device: str = "cpu",
        max_seq_len: int = 384,
        doc_stride: int = 128,
        batch_size: int = 16,
        precision: str = "auto",
    ) -> TransformersReader:
        """Wrap an already loaded model and fast tokenizer (used while training)."""
        reader = cls.__new__(cls)
        reader._setup(
            model,
            tokenizer,
            name=name,
            fingerprint=f"{name}:in-memory",
            device=device,
            max_seq_len=max_seq_len,
            doc_stride=doc_stride,
            batch_size=batch_size,
            precision=precision,
        )
        reader.resolved = None
        return reader

    def _setup(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str,
        fingerprint: str,
        device: str,
        max_seq_len: int,
        doc_stride: int,
        batch_size: int,
        precision: str,
    ) -> None:
        if not getattr(tokenizer, "is_fast", False):
            raise ModelNotFound(f"reader {name!r} needs a fast tokenizer (tokenizer.json)")
        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        self.pair_tokenizer = PairTokenizer.from_backend(tokenizer.backend_tokenizer)
        self.uses_token_types = "token_type_ids" in getattr(
            tokenizer, "model_input_names", ["token_type_ids"]
        )
        self.name = name
        self.fingerprint = fingerprint
        self.device = device
        limit = int(getattr(model.config, "max_position_embeddings", 512) or 512)
        self._setup_windows(max_seq_len, doc_stride, limit)
        self.batch_size = max(1, batch_size)
        if precision == "auto":
            precision = "bf16" if device == "cpu" and cpu_has_fast_bf16() else "fp32"
        if precision not in {"fp32", "bf16"}:
            raise ValueError(f"precision must be fp32, bf16 or auto, not {precision!r}")
        self.precision = precision
        self._lock = threading.Lock()

    def _logits(self, windows: Sequence[_Window]) -> list[tuple[np.ndarray, np.ndarray]]:
        """(start_logits, end_logits) per window, batched by similar length."""
        import torch

        results: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(windows)
        order = sorted(range(len(windows)), key=lambda i: len(windows[i].input_ids))
        pad_id = self.tokenizer.pad_token_id or 0
        with self._lock, torch.inference_mode():
            for b in range(0, len(order), self.batch_size):
                chunk = order[b : b + self.batch_size]
                width = pad_width(max(len(windows[i].input_ids) for i in chunk), 16)
                ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
                mask = torch.zeros((len(chunk), width), dtype=torch.long)
                types = torch.zeros((len(chunk), width), dtype=torch.long)
                for row, i in enumerate(chunk):
                    n = len(windows[i].input_ids)
                    ids[row, :n] = torch.tensor(windows[i].input_ids)
                    mask[row, :n] = 1
                    if windows[i].token_type_ids:
                        types[row, :n] = torch.tensor(windows[i].token_type_ids)
                inputs = {"input_ids": ids, "attention_mask": mask}
                if windows[chunk[0]].token_type_ids:
                    inputs["token_type_ids"] = types
                inputs = {k: v.to(self.device) for k, v in inputs.items()}
                with torch.autocast(
                    device_type=self.device.split(":")[0],
                    dtype=torch.bfloat16,
                    enabled=self.precision == "bf16",
                ):
                    out = self.model(**inputs)
                starts = out.start_logits.float().cpu().numpy()
                ends = out.end_logits.float().cpu().numpy()
                for row, i in enumerate(chunk):
                    n = len(windows[i].input_ids)
                    results[i] = (starts[row, :n], ends[row, :n])
        return [r for r in results if r is not None]


class OnnxReader(ExtractiveReader):
    """A released reader (:mod:`smallmodels.released`): int8 ONNX served by ONNX Runtime and
    ``tokenizers``, without PyTorch. One unpadded window per call, on parallel workers.

    ``spec`` options: ``max_seq_len=N``, ``stride=N``, ``threads=N``.
    """

    def __init__(self, spec: str | None = None) -> None:
        resolved = _resolve_reader(spec)
        if not is_release(resolved.path):
            raise UsageError(
                f"reader {resolved.spec!r} is not a released model folder (no tandem_release.json)"
            )
        opts = resolved.options
        threads = int(opts["threads"]) if "threads" in opts else None
        self.released = ReleasedModel(resolved.path, "reader", threads=threads)
        meta = self.released.meta
        self.pair_tokenizer = self.released.tokenizer
        self.uses_token_types = "token_type_ids" in self.released.inputs
        self.resolved = resolved
        self.name = self.released.name
        self.fingerprint = fingerprint(resolved)
        self.device = "cpu"
        self.precision = "int8"
        self._setup_windows(
            int(opts.get("max_seq_len", meta.get("max_seq_len", 384))),
            int(opts.get("stride", meta.get("doc_stride", 128))),
            int(meta.get("max_length", 512)),
        )

    def _logits(self, windows: Sequence[_Window]) -> list[tuple[np.ndarray, np.ndarray]]:
        names = self.released.inputs
        feeds = []
        for w in windows:
            arrays = {
                "input_ids": w.input_ids,
                "attention_mask": [1] * len(w.input_ids),
                "token_type_ids": w.token_type_ids or [0] * len(w.input_ids),
            }
            feeds.append({n: np.asarray([arrays[n]], dtype=np.int64) for n in names})
        outs = self.released.run_all(feeds)
        return [
            (np.asarray(o[0][0], dtype=np.float32), np.asarray(o[1][0], dtype=np.float32))
            for o in outs
        ]


def _resolve_reader(spec: str | None) -> ResolvedModel:
    try:
        return resolve(spec, DEFAULT_READER)
    except ModelNotFound as exc:
        if spec is None:
            raise ModelNotFound(
                f"no reader model at {DEFAULT_READER}: train one with "
                "`tandem reader train models/reader-minilm --squad FILE` or pass a model spec"
            ) from exc
        raise


def open_reader(spec: str | None = None, device: str = "cpu") -> ExtractiveReader:
    """The reader for ``spec``: :class:`OnnxReader` for a released folder, else
    :class:`TransformersReader`."""
    resolved = _resolve_reader(spec)
    if is_release(resolved.path):
        return OnnxReader(spec or DEFAULT_READER)
    return TransformersReader(spec, device=device)


def _token_span(
    offsets: Sequence[tuple[int, int] | None], char_start: int, char_end: int
) -> tuple[int, int] | None:
    """First and last context tokens covering ``[char_start, char_end)``, if in this window."""
    first = last = None
    for i, off in enumerate(offsets):
        if off is None or off[1] <= off[0]:
            continue
        if off[1] > char_start and off[0] < char_end:
            if first is None:
                first = i
            last = i
    if first is None or last is None:
        return None
    context = [o for o in offsets if o is not None]
    # The window must contain the whole answer, not just a piece of it.
    if context and (context[0][0] > char_start or context[-1][1] < char_end):
        return None
    return first, last


# --- sentences ------------------------------------------------------------------------------


def sentence_around(passage: str, start: int, end: int) -> tuple[int, int, str]:
    """The sentence (or sentences) of ``passage`` containing the span ``[start, end)``.

    Returns ``(sentence_start, sentence_end, text)`` with ``text == passage[s:e]``.
    """
    start = max(0, min(start, len(passage)))
    end = max(start, min(end, len(passage)))
    bounds = sentence_bounds(passage)
    if not bounds:
        return start, end, passage[start:end]
    hit = [(s, e) for s, e in bounds if e > start and s < max(end, start + 1)]
    if not hit:  # the span sits in whitespace between sentences: take the next (or last) one
        after = [(s, e) for s, e in bounds if s >= start]
        hit = [after[0] if after else bounds[-1]]
    s, e = min(s for s, _ in hit), max(e for _, e in hit)
    s, e = min(s, start), max(e, end)
    return s, e, passage[s:e]


# --- loading --------------------------------------------------------------------------------

_CACHE: ModelCache[ExtractiveReader] = ModelCache(open_reader)


def load_reader(spec: str | None = None, device: str = "cpu") -> ExtractiveReader:
    """Load (once per process) the reader for ``spec`` (default :data:`DEFAULT_READER`)."""
    key = (spec or DEFAULT_READER, device)
    return _CACHE.get(*key)

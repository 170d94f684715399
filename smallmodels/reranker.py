"""Cross-encoder rerankers: (query, passage) pairs in, relevance scores out.

A reranker is resolved by the same model spec as the embedder (weight package, local folder, hub
name; :func:`smallmodels.spec.resolve`). Options after ``@`` tune it::

    models/reranker-squad@backend=torch-int8,max_length=128,top_n=20,fusion=0.5

* ``backend``: ``torch`` (fp32), ``torch-int8`` (dynamic int8 quantisation of every Linear
  layer), ``torch-bf16`` (bfloat16 autocast; fast only on CPUs with native bfloat16), or ONNX
  Runtime: ``onnx`` (fp32) and ``onnx-int8`` (dynamically quantised MatMuls; exported once and
  cached, see :mod:`smallmodels.onnx_backend`), the fastest on CPU.
* ``max_length``: tokens per (query, passage) pair. Passages longer than the budget are cut to
  the window that shares most words with the query (:func:`focus_passage`), so a short input
  keeps the part of a passage that matters. Shorter inputs are much faster on a CPU.
* ``top_n``: how many first-stage candidates the rerank stage scores.
* ``fusion``: weight of the first-stage rank in the final order (see :mod:`retrievers.rerank`).

The reranker released with Tandem is ``released:reranker`` (or ``tandem-reranker``): int8 ONNX
served without PyTorch (:mod:`smallmodels.released`), its only backend ``onnx-int8``.

A folder written by ``tandem reranker train`` carries ``tandem_reranker.json`` with the values it
was trained and tuned with; options in the spec override them.
"""

from __future__ import annotations

import re
import threading
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from core.errors import UsageError
from smallmodels.backends import CROSS_ENCODER_BACKENDS, Backend, is_onnx, parse_backend
from smallmodels.cache import ModelCache
from smallmodels.released import ReleasedCrossEncoder, is_release
from smallmodels.spec import ResolvedModel, fingerprint, read_folder_config, resolve

CONFIG_FILE = "tandem_reranker.json"
BACKENDS = CROSS_ENCODER_BACKENDS
DEFAULT_MAX_LENGTH = 128
DEFAULT_TOP_N = 20
DEFAULT_FUSION = 0.0
DEFAULT_BATCH_SIZE = 32
#: Word pieces per whitespace word in English news text (MiniLM's uncased WordPiece), used to
#: turn a token budget into a word budget before tokenising.
TOKENS_PER_WORD = 1.35

_WORD = re.compile(r"\w+", re.UNICODE)
_STOPWORD_TEXT = """a an the of to in on at by for from with and or but not no is are was were
    be been being
    do does did what which who whom whose when where why how that this these those it its as
    than then there their they them he she his her him we our you your i me my into about over
    after before during between under again further once can could would should will shall may
    might must have has had having if so such only own same too very just also any all each
    both few more most other some up down out off"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


@runtime_checkable
class Reranker(Protocol):
    """Scores passages against a query; higher is more relevant."""

    name: str

    def score(self, query: str, texts: Sequence[str]) -> np.ndarray: ...


def content_words(text: str) -> set[str]:
    """Lower-cased words of ``text`` without stopwords, cut to a 6-letter stem."""
    return {w[:6] for w in _WORD.findall(text.lower()) if w not in _STOPWORDS and len(w) > 1}


def focus_passage(query: str, text: str, max_words: int) -> str:
    """``text`` itself when it has at most ``max_words`` words, else its best window.

    The window of ``max_words`` consecutive words that holds most distinct query words wins
    (the middle one among equals), so a question's answer sentence is kept when a long passage
    must be cut to a short input.
    """
    words = text.split()
    if max_words <= 0 or len(words) <= max_words:
        return text
    wanted = content_words(query)
    if not wanted:
        return " ".join(words[:max_words])
    stems = [content_words(w) for w in words]
    stride = max(1, max_words // 8)
    starts = sorted({min(s, len(words) - max_words) for s in range(0, len(words), stride)})
    hits = [len(wanted.intersection(set().union(*stems[s : s + max_words]))) for s in starts]
    best = max(hits)
    tied = [s for s, h in zip(starts, hits, strict=True) if h == best]
    start = tied[len(tied) // 2]  # the middle of equally good windows centres the matches
    return " ".join(words[start : start + max_words])


def passage_word_budget(query: str, max_length: int) -> int:
    """Words of passage that fit in ``max_length`` tokens beside ``query``."""
    query_tokens = int(len(query.split()) * TOKENS_PER_WORD) + 3  # [CLS] q [SEP] p [SEP]
    return max(16, int((max_length - query_tokens) / TOKENS_PER_WORD))


def read_config(path: str | Path) -> dict[str, Any]:
    """The ``tandem_reranker.json`` of a model folder ({} when absent or unreadable)."""
    return read_folder_config(path, CONFIG_FILE)


class CrossEncoderReranker:
    """A sentence-transformers ``CrossEncoder`` scoring (query, passage) pairs in batches.

    Scores are the model's raw logits (no sigmoid), float32. Settings resolve in this order:
    constructor argument, spec option, the folder's ``tandem_reranker.json``, module default.
    """

    def __init__(
        self,
        spec: str,
        *,
        max_length: int | None = None,
        batch_size: int | None = None,
        backend: str | None = None,
        top_n: int | None = None,
        fusion_weight: float | None = None,
        device: str = "cpu",
    ) -> None:
        if not spec or not spec.strip():
            raise UsageError("no reranker spec given")
        self.resolved: ResolvedModel = resolve(spec, spec)
        #: A released reranker (int8 ONNX, :mod:`smallmodels.released`): no PyTorch at all.
        self.released = is_release(self.resolved.path)
        opts = self.resolved.options
        conf = read_config(self.resolved.path) if self.resolved.source != "hub" else {}

        def pick(arg: Any, key: str, default: Any, cast: Any) -> Any:
            if arg is not None:
                return cast(arg)
            if key in opts:
                try:
                    return cast(opts[key])
                except ValueError:
                    raise UsageError(f"reranker option {key}={opts[key]!r} is not valid") from None
            return cast(conf.get(key, default))

        self.backend: Backend = parse_backend(
            pick(backend, "backend", "onnx-int8" if self.released else "torch", str),
            allowed=CROSS_ENCODER_BACKENDS,
            kind="reranker",
        )
        if self.released and self.backend != "onnx-int8":
            raise UsageError(
                f"reranker {self.resolved.spec!r} is a released int8 ONNX model: its only "
                "backend is onnx-int8"
            )
        self.max_length: int = pick(max_length, "max_length", DEFAULT_MAX_LENGTH, int)
        self.batch_size: int = pick(batch_size, "batch_size", DEFAULT_BATCH_SIZE, int)
        self.top_n: int = pick(top_n, "top_n", DEFAULT_TOP_N, int)
        self.fusion_weight: float = pick(fusion_weight, "fusion", DEFAULT_FUSION, float)
        self.focus: bool = str(opts.get("focus", conf.get("focus", True))).lower() not in {
            "0",
            "false",
            "no",
            "off",
        }
        if self.max_length < 16 or self.top_n < 1 or self.batch_size < 1:
            raise UsageError("reranker max_length must be >= 16, top_n and batch_size >= 1")

        self.onnx: Any = None
        self.model: Any = None
        if self.released:
            self.onnx = ReleasedCrossEncoder(
                self.resolved.path, "reranker", max_length=self.max_length
            )
        elif is_onnx(self.backend):
            from smallmodels.onnx_backend import OnnxCrossEncoder

            self.onnx = OnnxCrossEncoder(
                self.resolved,
                quantized=self.backend == "onnx-int8",
                max_length=self.max_length,
            )
        else:
            from sentence_transformers import CrossEncoder

            self.model = CrossEncoder(self.resolved.path, device=device, max_length=self.max_length)
        if self.backend == "torch-int8":
            import torch

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch deprecates the eager-mode API
                torch.ao.quantization.quantize_dynamic(
                    self.model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True
                )
        self.name = self.resolved.name
        self.spec = self.resolved.spec
        self.fingerprint = fingerprint(self.resolved)
        self.pairs_scored = 0
        self.seconds = 0.0
        self._lock = threading.Lock()

    def prepare(self, query: str, texts: Sequence[str]) -> list[tuple[str, str]]:
        """The (query, passage) pairs the model sees: passages focused to the length budget."""
        query = " ".join(query.split())
        if not self.focus:
            return [(query, t) for t in texts]
        budget = passage_word_budget(query, self.max_length)
        return [(query, focus_passage(query, t, budget)) for t in texts]

    def score(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """One relevance logit per text, in the order given (one batched model call)."""
        if not texts:
            return np.zeros(0, dtype=np.float32)
        return self.score_pairs(self.prepare(query, texts))

    def score_pairs(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Logits of ready-made pairs (no focusing)."""
        if not pairs:
            return np.zeros(0, dtype=np.float32)
        if self.onnx is not None:
            start = time.perf_counter()
            logits = self.onnx.predict(list(pairs), batch_size=self.batch_size)
            with self._lock:
                self.seconds += time.perf_counter() - start
                self.pairs_scored += len(pairs)
            return np.asarray(logits, dtype=np.float32).reshape(-1)
        import torch

        with self._lock:
            start = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.backend == "torch-bf16"):
                out = self.model.predict(
                    list(pairs),
                    batch_size=self.batch_size,
                    activation_fn=torch.nn.Identity(),
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
            self.seconds += time.perf_counter() - start
            self.pairs_scored += len(pairs)
        return np.asarray(out, dtype=np.float32).reshape(-1)

    def describe(self) -> dict[str, Any]:
        """Settings and throughput so far, for logs and benchmark records."""
        return {
            "name": self.name,
            "spec": self.spec,
            "backend": self.backend,
            "max_length": self.max_length,
            "top_n": self.top_n,
            "fusion": self.fusion_weight,
            "pairs_scored": self.pairs_scored,
            "pairs_per_s": round(self.pairs_scored / self.seconds, 1) if self.seconds else None,
        }


_CACHE: ModelCache[CrossEncoderReranker] = ModelCache(
    lambda spec, device: CrossEncoderReranker(spec, device=device)
)


def load_reranker(spec: str, device: str = "cpu") -> CrossEncoderReranker:
    """Load (once per process) the cross-encoder reranker for ``spec``."""
    if not spec or not spec.strip():
        raise UsageError("no reranker spec given")
    key = (spec.strip(), device)
    return _CACHE.get(*key)

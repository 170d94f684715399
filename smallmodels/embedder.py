"""Embedders: text in, normalised vectors out."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from smallmodels import backends, runtime
from smallmodels.backends import EMBEDDER_BACKENDS, Backend, is_onnx, parse_backend
from smallmodels.cache import ModelCache
from smallmodels.spec import DEFAULT_EMBEDDER, ResolvedModel, fingerprint, resolve

#: Embedder backends: PyTorch, or ONNX Runtime in fp32 or dynamically quantised int8.
BACKENDS = EMBEDDER_BACKENDS
#: The backend of specs that choose none (and of a process whose app configured none): ONNX
#: Runtime int8 when onnxruntime is installed (the ``onnx`` extra), else PyTorch. int8 encodes
#: several times faster on a CPU for a measured nDCG@10 cost under 0.01 on SQuAD and NYT
#: (BENCHMARKS.md); ``backend=torch`` opts out.
DEFAULT_BACKEND: Backend = "onnx-int8"


def onnx_runtime_available() -> bool:
    """Whether ONNX Runtime is installed (the ONNX backends need it)."""
    return backends.onnx_runtime_available()


def embedder_backend(options: dict[str, str]) -> Backend:
    """The backend an embedder spec asks for: its ``backend`` option, else the process's
    configured embedder backend (:mod:`smallmodels.runtime`, the application's
    embedder_backend setting), else :data:`DEFAULT_BACKEND` (``torch`` when that needs
    onnxruntime and it is missing)."""
    chosen = options.get("backend") or runtime.current().embedder_backend
    backend = parse_backend(
        chosen, allowed=EMBEDDER_BACKENDS, default=DEFAULT_BACKEND, kind="embedder"
    )
    if not (chosen or "").strip() and is_onnx(backend) and not onnx_runtime_available():
        return "torch"
    return backend


def spec_with_options(resolved: ResolvedModel) -> str:
    """``spec@k=v,...`` (options sorted), or ``spec`` alone when it has none.

    Manifests record this, so an index built with ``backend=onnx-int8`` is queried with it.
    """
    if not resolved.options:
        return resolved.spec
    opts = ",".join(f"{k}={v}" for k, v in sorted(resolved.options.items()))
    return f"{resolved.spec}@{opts}"


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors."""

    name: str
    dimension: int
    max_seq_length: int
    fingerprint: str

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray: ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...

    def tokenize_offsets(self, text: str) -> list[tuple[int, int]]: ...


class SentenceTransformerEmbedder:
    """An embedder backed by a sentence-transformers model folder.

    Batches are sorted by length (sentence-transformers does so inside ``encode``), vectors are
    normalised, and the model's own tokenizer is exposed for token-aware chunking.

    The backend comes from the spec's ``backend`` option (else the configured embedder backend
    of :mod:`smallmodels.runtime`, else :data:`DEFAULT_BACKEND`): ``torch``, or ``onnx`` /
    ``onnx-int8`` through ONNX Runtime (:mod:`smallmodels.onnx_backend`; exported and cached on
    first use). All backends of the same weights share one fingerprint. ``model`` is always the
    PyTorch ``SentenceTransformer`` (loaded on first access for the ONNX backends: the raw
    reference of the benchmarks).
    """

    def __init__(self, spec: str | None = None, device: str = "cpu") -> None:
        self.resolved: ResolvedModel = resolve(spec, DEFAULT_EMBEDDER)
        self.device = device
        self.backend = embedder_backend(self.resolved.options)
        self._model: Any = None
        self._onnx: Any = None
        self.name = self.resolved.name
        self.spec = spec_with_options(self.resolved)
        self.fingerprint = fingerprint(self.resolved)
        if is_onnx(self.backend):
            from smallmodels.onnx_backend import OnnxEmbedder

            self._onnx = OnnxEmbedder(self.resolved, quantized=self.backend == "onnx-int8")
            self.dimension = int(self._onnx.dimension)
            self.max_seq_length = int(self._onnx.max_seq_length)
            self.tokenizer = self._onnx.tokenizer
        else:
            model = self.model
            getter = getattr(model, "get_embedding_dimension", None)
            getter = getter or model.get_sentence_embedding_dimension
            dim = getter()
            self.dimension = int(dim or 0)
            self.max_seq_length = int(model.max_seq_length or 256)
            self.tokenizer = model.tokenizer
        self._lock = threading.Lock()

    @property
    def model(self) -> Any:
        """The PyTorch ``SentenceTransformer`` of these weights (loaded on first use)."""
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(self.resolved.path, device=self.device)
        return self._model

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self._onnx is not None:  # ONNX Runtime sessions are safe to run concurrently
            return np.ascontiguousarray(self._onnx.encode(texts, batch_size), dtype=np.float32)
        with self._lock:
            vectors = self.model.encode(
                list(texts),
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Token counts without special tokens, as the model's tokenizer sees them."""
        if not texts:
            return []
        enc = self.tokenizer(list(texts), add_special_tokens=False, truncation=False)
        return [len(ids) for ids in enc["input_ids"]]

    def tokenize_offsets(self, text: str) -> list[tuple[int, int]]:
        enc = self.tokenizer(
            text, add_special_tokens=False, truncation=False, return_offsets_mapping=True
        )
        return [(int(a), int(b)) for a, b in enc["offset_mapping"]]


_CACHE: ModelCache[SentenceTransformerEmbedder] = ModelCache(
    lambda spec, device: SentenceTransformerEmbedder(spec, device=device)
)


def load_embedder(spec: str | None = None, device: str = "cpu") -> SentenceTransformerEmbedder:
    """Load (once per process) the embedder for ``spec``."""
    key = (spec or DEFAULT_EMBEDDER, device)
    return _CACHE.get(*key)

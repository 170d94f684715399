"""Embedders: text in, normalised vectors out."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from smallmodels.spec import DEFAULT_EMBEDDER, ResolvedModel, fingerprint, resolve


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
    """

    def __init__(self, spec: str | None = None, device: str = "cpu") -> None:
        from sentence_transformers import SentenceTransformer

        self.resolved: ResolvedModel = resolve(spec, DEFAULT_EMBEDDER)
        backend = self.resolved.options.get("backend", "torch")
        kwargs: dict[str, Any] = {"device": device}
        if backend.startswith("onnx"):
            kwargs["backend"] = "onnx"
        self.model = SentenceTransformer(self.resolved.path, **kwargs)
        self.name = self.resolved.name
        self.spec = self.resolved.spec
        getter = getattr(self.model, "get_embedding_dimension", None)
        getter = getter or self.model.get_sentence_embedding_dimension
        dim = getter()
        self.dimension = int(dim or 0)
        self.max_seq_length = int(self.model.max_seq_length or 256)
        self.fingerprint = fingerprint(self.resolved)
        self.tokenizer = self.model.tokenizer
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
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


_CACHE: dict[tuple[str, str], SentenceTransformerEmbedder] = {}
_CACHE_LOCK = threading.Lock()


def load_embedder(spec: str | None = None, device: str = "cpu") -> SentenceTransformerEmbedder:
    """Load (once per process) the embedder for ``spec``."""
    key = (spec or DEFAULT_EMBEDDER, device)
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = SentenceTransformerEmbedder(spec, device=device)
        return _CACHE[key]

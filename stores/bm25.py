"""The sparse side: a BM25 index (bm25s) stored beside the vectors."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import bm25s
import numpy as np

FOLDER = "bm25"
K1 = 0.9
B = 0.4

logging.getLogger("bm25s").setLevel(logging.ERROR)


def _stemmer() -> Any:
    try:
        import Stemmer

        return Stemmer.Stemmer("english")
    except ImportError:  # pragma: no cover - PyStemmer is a dependency
        return None


class BM25Index:
    def __init__(self, model: bm25s.BM25 | None = None, n_docs: int = 0) -> None:
        self.model = model
        self.n_docs = n_docs
        self.stemmer = _stemmer()

    @classmethod
    def build(cls, texts: Sequence[str], k1: float = K1, b: float = B) -> BM25Index:
        index = cls(None, len(texts))
        if texts:
            tokens = bm25s.tokenize(
                list(texts), stopwords="en", stemmer=index.stemmer, show_progress=False
            )
            model = bm25s.BM25(k1=k1, b=b)
            model.index(tokens, show_progress=False)
            index.model = model
        return index

    def save(self, folder: Path) -> None:
        path = Path(folder) / FOLDER
        path.mkdir(parents=True, exist_ok=True)
        if self.model is not None:
            self.model.save(str(path), show_progress=False)
        (path / "count.txt").write_text(str(self.n_docs))

    @classmethod
    def load(cls, folder: Path) -> BM25Index:
        path = Path(folder) / FOLDER
        n_docs = int((path / "count.txt").read_text())
        model = None
        if n_docs:
            model = bm25s.BM25.load(str(path), mmap=False, show_progress=False)
        return cls(model, n_docs)

    def search(
        self, queries: Sequence[str], k: int, allowed: np.ndarray | None = None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per query ``(rows, scores)``, best first; rows with score 0 are dropped."""
        if self.model is None or not queries:
            return [(np.zeros(0, np.int64), np.zeros(0, np.float32)) for _ in queries]
        k = max(1, min(k, self.n_docs))
        mask = None
        if allowed is not None:
            if len(allowed) == 0:
                return [(np.zeros(0, np.int64), np.zeros(0, np.float32)) for _ in queries]
            mask = np.zeros(self.n_docs, dtype=np.float32)
            mask[allowed] = 1.0
        tokens = bm25s.tokenize(
            list(queries),
            stopwords="en",
            stemmer=self.stemmer,
            show_progress=False,
            return_ids=False,
        )
        out = []
        for toks in tokens:
            toks = [t for t in toks if t in self.model.vocab_dict] or [""]
            if toks == [""]:
                out.append((np.zeros(0, np.int64), np.zeros(0, np.float32)))
                continue
            rows, scores = self.model.retrieve(
                [toks], k=k, show_progress=False, n_threads=1, weight_mask=mask
            )
            keep = scores[0] > 0
            out.append((rows[0][keep].astype(np.int64), scores[0][keep].astype(np.float32)))
        return out

    def params(self) -> dict[str, Any]:
        return {
            "library": "bm25s",
            "k1": K1,
            "b": B,
            "stopwords": "en",
            "stemmer": "snowball-english" if self.stemmer else None,
        }

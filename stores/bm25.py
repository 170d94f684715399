"""The sparse side: a BM25 index (bm25s) stored beside the vectors.

Two analyzers, recorded in ``bm25/analyzer.txt`` (and the manifest) so that an index is always
queried the way it was built:

* ``bm25s-en`` (indexes built before the file existed): bm25s's own tokenizer, English
  stopwords and Snowball stemmer. It sees a run of Chinese or Japanese characters as one
  "word", so no query term inside it is ever found.
* ``unicode-cjk-bigram`` (new indexes): NFKC, case folding, accents folded (``café`` and
  ``cafe`` are one term), English stopwords and stemmer on Latin words, and text without
  spaces between words (Han, Kana, Hangul) as overlapping character bigrams, as Lucene's
  ``CJKAnalyzer`` does (a lone character stays a unigram).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
from bm25s.stopwords import STOPWORDS_EN

FOLDER = "bm25"
K1 = 0.9
B = 0.4

LEGACY_ANALYZER = "bm25s-en"
ANALYZER = "unicode-cjk-bigram"
ANALYZER_FILE = "analyzer.txt"
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af\u1100-\u11ff"
_TOKENS = re.compile(f"([{_CJK}]+)|([^\\W{_CJK}]+)")
_STOP = frozenset(STOPWORDS_EN)

logging.getLogger("bm25s").setLevel(logging.ERROR)


def analyze(text: str, stemmer: Any = None) -> list[str]:
    """Terms of ``text`` under the ``unicode-cjk-bigram`` analyzer."""
    text = unicodedata.normalize("NFKC", text).casefold()
    out: list[str] = []
    words: list[str] = []
    for cjk, word in _TOKENS.findall(text):
        if cjk:
            out.extend(cjk[i : i + 2] for i in range(max(1, len(cjk) - 1)))
        else:
            if not word.isascii():
                word = "".join(
                    c for c in unicodedata.normalize("NFD", word) if not unicodedata.combining(c)
                )
            if (len(word) > 1 or word.isdigit()) and word not in _STOP:
                words.append(word)
    if stemmer is not None and words:
        words = stemmer.stemWords(words)
    return out + words


def _stemmer() -> Any:
    try:
        import Stemmer

        return Stemmer.Stemmer("english")
    except ImportError:  # pragma: no cover - PyStemmer is a dependency
        return None


class BM25Index:
    def __init__(
        self, model: bm25s.BM25 | None = None, n_docs: int = 0, analyzer: str = ANALYZER
    ) -> None:
        self.model = model
        self.n_docs = n_docs
        self.stemmer = _stemmer()
        self.analyzer = analyzer

    @classmethod
    def build(
        cls, texts: Sequence[str], k1: float = K1, b: float = B, analyzer: str = ANALYZER
    ) -> BM25Index:
        index = cls(None, len(texts), analyzer)
        if texts:
            model = bm25s.BM25(k1=k1, b=b)
            if analyzer == LEGACY_ANALYZER:
                tokens = bm25s.tokenize(
                    list(texts), stopwords="en", stemmer=index.stemmer, show_progress=False
                )
                model.index(tokens, show_progress=False)
            else:
                # an empty token list would leave a row with no terms; "" keeps rows aligned
                terms = [analyze(t, index.stemmer) or [""] for t in texts]
                model.index(terms, show_progress=False)
            index.model = model
        return index

    def _query_terms(self, queries: Sequence[str]) -> list[list[str]]:
        if self.analyzer == LEGACY_ANALYZER:
            return [
                list(t)
                for t in bm25s.tokenize(
                    list(queries),
                    stopwords="en",
                    stemmer=self.stemmer,
                    show_progress=False,
                    return_ids=False,
                )
            ]
        return [analyze(q, self.stemmer) for q in queries]

    def save(self, folder: Path) -> None:
        path = Path(folder) / FOLDER
        path.mkdir(parents=True, exist_ok=True)
        if self.model is not None:
            self.model.save(str(path), show_progress=False)
        (path / "count.txt").write_text(str(self.n_docs))
        (path / ANALYZER_FILE).write_text(self.analyzer)

    @classmethod
    def load(cls, folder: Path) -> BM25Index:
        path = Path(folder) / FOLDER
        n_docs = int((path / "count.txt").read_text())
        try:
            analyzer = (path / ANALYZER_FILE).read_text().strip() or LEGACY_ANALYZER
        except FileNotFoundError:  # built before analyzers were recorded
            analyzer = LEGACY_ANALYZER
        model = None
        if n_docs:
            model = bm25s.BM25.load(str(path), mmap=False, show_progress=False)
        return cls(model, n_docs, analyzer)

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
        out = []
        for toks in self._query_terms(queries):
            toks = [t for t in toks if t and t in self.model.vocab_dict]
            if not toks:
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
            "analyzer": self.analyzer,
        }

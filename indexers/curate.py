"""Curation: drop empty and boilerplate-only documents, exact and near-duplicate chunks."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

WORD_RE = re.compile(r"\w+", re.UNICODE)
MIN_WORDS = 12
BOILERPLATE_PHRASES = (
    "cookie",
    "cookies",
    "privacy policy",
    "terms of use",
    "terms of service",
    "all rights reserved",
    "subscribe",
    "sign in",
    "log in",
    "login",
    "newsletter",
    "copyright",
    "skip to content",
    "accept",
    "menu",
    "home",
    "contact us",
    "follow us",
)
NEAR_DUP_THRESHOLD = 0.8
NUM_PERM = 128
SHINGLE = 3


@dataclass
class CurationReport:
    empty: int = 0
    boilerplate: int = 0
    exact_duplicates: int = 0
    near_duplicates: int = 0
    dropped_documents: list[str] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        return self.exact_duplicates + self.near_duplicates

    def as_dict(self) -> dict[str, int]:
        return {
            "empty": self.empty,
            "boilerplate": self.boilerplate,
            "exact_duplicates": self.exact_duplicates,
            "near_duplicates": self.near_duplicates,
        }


def normalise(text: str) -> str:
    return " ".join(WORD_RE.findall(text.lower()))


def document_problem(text: str) -> str | None:
    """``'empty'``, ``'boilerplate'`` or ``None`` for a document worth indexing."""
    words = WORD_RE.findall(text.lower())
    if not words:
        return "empty"
    if len(words) < MIN_WORDS:
        joined = " ".join(words)
        hits = sum(joined.count(p) for p in BOILERPLATE_PHRASES)
        return "boilerplate" if hits or len(words) < 4 else None
    # Long enough: boilerplate only if navigation phrases make up most of it.
    joined = " ".join(words)
    phrase_words = sum(joined.count(p) * len(p.split()) for p in BOILERPLATE_PHRASES)
    return "boilerplate" if phrase_words / len(words) > 0.35 else None


def duplicate_mask(
    texts: Sequence[str], threshold: float = NEAR_DUP_THRESHOLD
) -> tuple[np.ndarray, int, int]:
    """A keep-mask over ``texts``: first occurrence kept; exact then MinHash near-duplicates.

    Returns ``(keep, exact_count, near_count)``.
    """
    from datasketch import MinHash, MinHashLSH

    keep = np.ones(len(texts), dtype=bool)
    seen: dict[str, int] = {}
    exact = 0
    norms = [normalise(t) for t in texts]
    for i, n in enumerate(norms):
        if n in seen:
            keep[i] = False
            exact += 1
        else:
            seen[n] = i
    near = 0
    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    sketches: dict[str, MinHash] = {}
    for i, n in enumerate(norms):
        if not keep[i]:
            continue
        words = n.split()
        if len(words) < 8:
            continue
        shingles = {" ".join(words[j : j + SHINGLE]).encode() for j in range(len(words) - 2)}
        mh = MinHash(num_perm=NUM_PERM, seed=1)
        mh.update_batch(list(shingles))
        # LSH gives candidates; the MinHash estimate confirms them (fewer false positives).
        if any(mh.jaccard(sketches[c]) >= threshold for c in lsh.query(mh)):
            keep[i] = False
            near += 1
        else:
            lsh.insert(str(i), mh)
            sketches[str(i)] = mh
    return keep, exact, near

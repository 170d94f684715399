"""Curation that never discards information.

* Empty documents and pages made only of navigation phrases ("Accept cookies", "Sign in")
  are dropped, and named. Data records (JSON lines, CSV rows) are never boilerplate, however
  short; a text with a digit in it is never boilerplate (a phone number, a date, a price).
* Identical chunks (same words, any case or spacing) are grouped: one copy is searched, the
  one from the most recently modified file; the others are *held* (kept in the version,
  not searched) and reported as merged into the kept file, so that the content survives for
  as long as any of the files does.
* Near-duplicate chunks (MinHash Jaccard >= 0.8) are only grouped: both stay searchable
  (they differ: a number, a name, a date), they share ``version_group`` in their metadata,
  and search puts the newest first.
"""

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


def document_problem(text: str, record: bool = False) -> str | None:
    """``'empty'``, ``'boilerplate'`` or ``None`` for a document worth indexing.

    Boilerplate: navigation phrases make up most of the words, and no digit anywhere; a data
    record is never boilerplate."""
    words = WORD_RE.findall(text.lower())
    if not words:
        return "empty"
    if record or any(ch.isdigit() for ch in text):
        return None
    joined = " ".join(words)
    phrase_words = sum(
        len(re.findall(rf"\b{re.escape(p)}\b", joined)) * len(p.split())
        for p in BOILERPLATE_PHRASES
    )
    share = phrase_words / len(words)
    return "boilerplate" if share >= (0.5 if len(words) < MIN_WORDS else 0.6) else None


def duplicate_groups(
    texts: Sequence[str], threshold: float = NEAR_DUP_THRESHOLD
) -> tuple[list[int], list[int]]:
    """``(exact, near)``: for each text, the index of the first text it is identical to
    (itself when none), and the first text it is a near-duplicate of (itself when none)."""
    from datasketch import MinHash, MinHashLSH

    norms = [normalise(t) for t in texts]
    exact = list(range(len(texts)))
    seen: dict[str, int] = {}
    for i, n in enumerate(norms):
        exact[i] = seen.setdefault(n, i)
    near = list(range(len(texts)))
    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    sketches: dict[str, MinHash] = {}
    for i, n in enumerate(norms):
        if exact[i] != i:
            continue
        words = n.split()
        if len(words) < 8:
            continue
        shingles = {" ".join(words[j : j + SHINGLE]).encode() for j in range(len(words) - 2)}
        mh = MinHash(num_perm=NUM_PERM, seed=1)
        mh.update_batch(list(shingles))
        match = [c for c in lsh.query(mh) if mh.jaccard(sketches[c]) >= threshold]
        if match:
            near[i] = min(int(c) for c in match)
        else:
            lsh.insert(str(i), mh)
            sketches[str(i)] = mh
    for i in range(len(texts)):
        near[i] = near[exact[i]]
    return exact, near


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

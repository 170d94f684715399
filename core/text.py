"""Text utilities every layer shares: sentences, SQuAD answer metrics, citation markers.

One of each (the checker, the reader, the trainers and the answer path all use these):

- :func:`sentence_bounds` / :func:`split_sentences`: the one sentence splitter. A sentence ends
  at terminal punctuation (``. ! ? …``, then closing quotes or brackets, then citation markers)
  followed by space and a capital letter or digit; abbreviations and initials do not end one.
  ``lines`` says what a line break is: ``"break"`` (every line is its own unit: list items,
  claims of an answer), ``"paragraph"`` (only a blank line ends a unit: hard-wrapped text) or
  ``"join"`` (line breaks are spaces).
- :func:`normalize_answer`, :func:`token_f1`, :func:`exact_match`, :func:`f1_score`,
  :func:`squad_scores`: the SQuAD v1.1 evaluation script's definitions (Rajpurkar et al. 2016):
  lowercase, drop punctuation and the articles a/an/the, compare tokens.
- :data:`MARKER_BODY`, :data:`MARKER_RE`, :func:`marker_numbers`, :func:`cited_passages`,
  :func:`strip_markers`: the citation-marker grammar (``[1]``, ``[2, 3]``, ``[1-3]``).
"""

from __future__ import annotations

import itertools
import re
import string
from collections import Counter
from collections.abc import Sequence
from typing import Literal

# --- citation markers -------------------------------------------------------------------------

#: The inside of a marker: passage numbers separated by ``,`` ``;`` or a range dash.
MARKER_BODY = r"\d+(?:\s*[,;\-–]\s*\d+)*"
#: One marker (each bracket of ``[1][2]`` on its own).
MARKER = r"\[" + MARKER_BODY + r"\]"
#: A marker with the space before it: group 1 the space, group 2 the body.
MARKER_RE = re.compile(r"(\s*)\[(" + MARKER_BODY + r")\]")
#: A marker's start that may still be completed by more text (streams hold it back).
PARTIAL_MARKER_RE = re.compile(r"\[[\d\s,;\-–]*")
#: A range marker expands to at most this many numbers (``[1-100000]`` is not a citation list).
MAX_RANGE = 50

_BARE_MARKER_RE = re.compile(MARKER)
_STRIP_MARKERS_RE = re.compile(r"\s*" + MARKER)


def marker_numbers(body: str) -> list[int]:
    """Passage numbers named by a marker's body (``"1, 3-4"`` -> ``[1, 3, 4]``), in order.

    A range longer than :data:`MAX_RANGE` or running backwards counts as its first number.
    """
    out: list[int] = []
    for part in re.split(r"\s*[,;]\s*", body.strip()):
        bounds = re.split(r"\s*[\-–]\s*", part)
        try:
            lo, hi = int(bounds[0]), int(bounds[-1])
        except ValueError:
            continue
        if hi < lo or hi - lo >= MAX_RANGE:
            hi = lo
        for n in range(lo, hi + 1):
            if n not in out:
                out.append(n)
    return out


def cited_passages(text: str) -> list[int]:
    """Zero-based passage indices named by the markers in ``text`` (``[1]`` -> 0), in order."""
    found: list[int] = []
    for marker in _BARE_MARKER_RE.findall(text):
        for n in marker_numbers(marker[1:-1]):
            if n >= 1 and n - 1 not in found:
                found.append(n - 1)
    return found


def strip_markers(text: str) -> str:
    """``text`` without its citation markers, whitespace collapsed."""
    return " ".join(_STRIP_MARKERS_RE.sub("", text).split())


# --- sentences --------------------------------------------------------------------------------

#: Words whose trailing period does not end a sentence (lowercase, without the last period).
ABBREVIATIONS = frozenset(
    [
        "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "etc", "inc", "ltd",
        "co", "corp", "no", "fig", "al", "approx", "dept", "est", "gen", "gov", "sen", "rep",
        "col", "lt", "sgt", "capt", "rev", "cf", "ca", "jan", "feb", "mar", "apr", "jun", "jul",
        "aug", "sep", "sept", "oct", "nov", "dec", "e.g", "i.e", "u.s", "u.k", "u.n", "a.m",
        "p.m",
    ]
)  # fmt: skip

# A sentence end: terminal punctuation, closing quotes/brackets, then markers, then space and
# the start of the next sentence (optionally opened by a quote or bracket).
_BOUNDARY_RE = re.compile(
    r"[.!?…]+[\"'”’)\]]*(?:\s*" + MARKER + r")*(?=\s+[\"'“‘(\[]?[A-Z0-9À-ÝΑ-ΩА-Я])"
)
# Sentence ends of scripts written without spaces (Chinese, Japanese): split right after.
_CJK_END_RE = re.compile(r"[。！？]+[」』”’)）]*")
_LINE_UNIT = {"break": re.compile(r"\n+"), "paragraph": re.compile(r"\n[ \t]*\n\s*")}

LineMode = Literal["break", "paragraph", "join"]


def _is_abbreviation(text: str, end: int) -> bool:
    """True when the period ending at ``end`` closes an abbreviation or an initial."""
    head = text[:end].rstrip(".")
    word = head.rsplit(None, 1)[-1] if head.split() else ""
    word = word.lstrip("(\"'“‘").lower()
    if not word:
        return False
    if len(word) == 1 and word.isalpha():
        return True  # an initial: "J. K. Rowling"
    if re.fullmatch(r"(?:[^\W\d_]\.)+[^\W\d_]", word):
        return True  # run-together initials: "J.R.R. Tolkien", "U.S.A."
    return word in ABBREVIATIONS


def _unit_bounds(text: str, lines: LineMode) -> list[tuple[int, int]]:
    """Spans of the units (lines, paragraphs, or the whole text) sentences never cross."""
    if lines == "join":
        return [(0, len(text))]
    spans, start = [], 0
    for m in _LINE_UNIT[lines].finditer(text):
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(text)))
    return spans


def sentence_bounds(text: str, lines: LineMode = "break") -> list[tuple[int, int]]:
    """``(start, end)`` character offsets of each sentence of ``text``, whitespace trimmed.

    ``lines``: ``"break"`` (default) makes every line a unit of its own, ``"paragraph"`` only
    blank lines, ``"join"`` none. A citation marker written after the period (``... capital.
    [1] It ...``) stays with the sentence before it. Offsets index ``text`` itself, so
    ``text[start:end]`` is the sentence as written (inner line breaks included).
    """
    cuts: list[tuple[int, int]] = []
    for u_start, u_end in _unit_bounds(text, lines):
        unit = text[u_start:u_end]
        pieces: list[int] = [0]
        for match in _BOUNDARY_RE.finditer(unit):
            punct_end = match.start() + len(match.group(0).split("[", 1)[0].rstrip())
            if unit[match.start()] == "." and _is_abbreviation(unit, punct_end):
                continue
            pieces.append(match.end())
        for match in _CJK_END_RE.finditer(unit):
            pieces.append(match.end())
        pieces = [*sorted(set(pieces)), len(unit)]
        for a, b in itertools.pairwise(pieces):
            seg = unit[a:b]
            s = a + (len(seg) - len(seg.lstrip()))
            e = b - (len(seg) - len(seg.rstrip()))
            if e > s:
                cuts.append((u_start + s, u_start + e))
    return cuts


def split_sentences(text: str, lines: LineMode = "break") -> list[str]:
    """The sentences of ``text`` (see :func:`sentence_bounds`), inner whitespace as written."""
    return [text[s:e] for s, e in sentence_bounds(text, lines)]


# --- SQuAD answer metrics ---------------------------------------------------------------------

_PUNCT = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """Lowercase, drop punctuation and articles (a/an/the), collapse whitespace (SQuAD v1.1)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def answer_tokens(text: str) -> list[str]:
    """The normalised tokens the F1 metric compares."""
    return normalize_answer(text).split()


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD token F1 (0..1) between one prediction and one reference."""
    pred = answer_tokens(prediction)
    ref = answer_tokens(reference)
    if not pred or not ref:
        return float(pred == ref)
    common = Counter(pred) & Counter(ref)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred)
    recall = same / len(ref)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, references: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals any normalised reference, else 0.0."""
    if not references:
        return 0.0
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(ref) for ref in references))


def f1_score(prediction: str, references: Sequence[str]) -> float:
    """Best token F1 (0..1) of the prediction over the references."""
    if not references:
        return 0.0
    return max(token_f1(prediction, ref) for ref in references)


def squad_scores(
    predictions: Sequence[str], references: Sequence[Sequence[str]]
) -> dict[str, float]:
    """Mean EM and F1 (0..1) of aligned predictions and reference lists.

    Raises ``ValueError`` when the two sequences differ in length.
    """
    if len(predictions) != len(references):
        raise ValueError("predictions and references differ in length")
    if not predictions:
        return {"exact_match": 0.0, "f1": 0.0, "questions": 0}
    em = sum(exact_match(p, r) for p, r in zip(predictions, references, strict=True))
    f1 = sum(f1_score(p, r) for p, r in zip(predictions, references, strict=True))
    n = len(predictions)
    return {"exact_match": em / n, "f1": f1 / n, "questions": n}

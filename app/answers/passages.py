"""Passages as prose: rejoined lines, headings set apart, and the kind of answer a question wants.

Chunks keep the layout of their source: PDF text is hard-wrapped (``When Jenner later`` ends a
line), words are hyphenated across lines (``immu-\\nnisation``), Markdown carries ``**`` and
``#``, and pages carry titles, section headings, running headers (``NICE(1) User Commands
NICE(1)``) and table-of-contents lines. An extractive answer cut from that layout is a line
fragment or a heading. :func:`rejoin` turns a passage into *units*: body sentences run
together across hard line breaks (hyphenation undone, inline Markdown dropped) and headings,
titles, page headers and contents lines marked as such, so that small mode draws its sentence
and span candidates from the body alone while the reader still sees the headings as context.

:func:`answer_kind` says what a "when / who / how many" question asks for and
:func:`has_kind` whether a text holds one: a span of the wanted kind wins over one that is not
where the passages hold one (small mode weighs the others down, it does not drop them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["date", "number", "person"]

_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+")
_MD_RULE = re.compile(r"^\s*([-*_=])(\s*\1){2,}\s*$")
_BULLET = re.compile(r"^\s*(?:[-*+•▪‣◦]|\(?\d{1,3}[.)]|\(?[a-z][.)])\s+")
# A running header or footer of a man page or report: "NICE(1)  User Commands  NICE(1)".
_PAGE_HEADER = re.compile(r"^\s*(\S+\(\w+\)).*\S\s+\1\s*$")
# A contents line: a title, a leader of dots (or wide space), a page number.
_TOC = re.compile(
    r"^\s*\S.{0,100}?(?:\s*\.{3,}\s*|\s*…+\s*|\s{3,}|\t+)(?:\d{1,4}|[ivxlc]{1,6})\s*$"
)
_PAGE_NUMBER = re.compile(r"^\s*(?:page\s+)?\d{1,4}(?:\s*(?:/|of)\s*\d{1,4})?\s*$", re.I)
_TERMINAL = re.compile(r"[.!?…:;,][\"'”’)\]]*$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # PDF debris: "\x7f" lines
_HYPHEN_BREAK = re.compile(r"(\w)-\n[ \t]*([a-zà-ÿ])")
_MD_INLINE = [
    (re.compile(r"!?\[([^\]\n]*)\]\([^)\n]*\)"), r"\1"),  # links and images: their text
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),
    (re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])"), r"\1"),
    (re.compile(r"`([^`\n]+)`"), r"\1"),
]
#: Words a title does not end with (a wrapped line that goes on does).
_CONTINUES_WORDS = """a an the of in on at to for from by with and or but nor as that which who
    whose than its their his her is are was were be"""
_CONTINUES = frozenset(_CONTINUES_WORDS.split())
#: A line of at most this many words with no closing punctuation, standing apart, is a heading.
HEADING_WORDS = 12


@dataclass(frozen=True)
class Unit:
    """One unit of a rejoined passage: body prose (a paragraph or list item) or a heading."""

    text: str
    heading: bool


@dataclass(frozen=True)
class Rejoined:
    """A passage as units; :attr:`text` is them joined by newlines (what the reader reads)."""

    units: list[Unit]

    @property
    def text(self) -> str:
        return "\n".join(u.text for u in self.units)

    def heading_ranges(self) -> list[tuple[int, int]]:
        """Character ranges of the headings in :attr:`text`."""
        out, pos = [], 0
        for u in self.units:
            if u.heading:
                out.append((pos, pos + len(u.text)))
            pos += len(u.text) + 1
        return out

    def body(self) -> list[str]:
        return [u.text for u in self.units if not u.heading]


def strip_inline_markdown(text: str) -> str:
    for pattern, repl in _MD_INLINE:
        text = pattern.sub(repl, text)
    return text


def _is_fixed_heading(line: str) -> bool:
    """Headings whatever their neighbours: Markdown ``#``, page headers, contents lines, short
    lines in capitals (a man page's ``DESCRIPTION``)."""
    letters = [c for c in line if c.isalpha()]
    return bool(
        (len(line.split()) <= 6 and len(letters) >= 3 and all(c.isupper() for c in letters))
        or _MD_HEADING.match(line)
        or _PAGE_HEADER.match(line)
        or _TOC.match(line)
        or _PAGE_NUMBER.match(line)
    )


def _looks_like_title(line: str) -> bool:
    words = line.split()
    if not words or len(words) > HEADING_WORDS or _TERMINAL.search(line):
        return False
    first = words[0].lstrip("\"'“‘(")
    if words[-1].lower() in _CONTINUES:  # "... named by" goes on on the next line
        return False
    return bool(first) and (first[0].isupper() or first[0].isdigit())


def _ends_sentence(line: str) -> bool:
    return bool(re.search(r"[.!?…:][\"'”’)\]]*$", line.rstrip()))


def rejoin(text: str) -> Rejoined:
    """``text`` as body units (hard line breaks joined, hyphenation undone, inline Markdown
    dropped) and heading units (titles, section headings, page headers, contents lines)."""
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _HYPHEN_BREAK.sub(r"\1\2", text)
    lines = text.split("\n")
    units: list[Unit] = []
    current: list[str] = []

    def flush() -> None:
        if current:
            body = " ".join(" ".join(current).split())
            if body:
                units.append(Unit(strip_inline_markdown(body), False))
            current.clear()

    for i, raw in enumerate(lines):
        line = raw.strip()
        if not line or _MD_RULE.match(line):
            flush()
            continue
        prev = lines[i - 1].strip() if i > 0 else ""
        nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
        starts_block = not current or _ends_sentence(current[-1])
        if _is_fixed_heading(line) or (
            starts_block
            and _looks_like_title(line)
            and (not nxt or not nxt[0].islower())
            and (not prev or _ends_sentence(prev) or not current or _looks_like_title(prev))
        ):
            flush()
            title = _MD_HEADING.sub("", line)
            units.append(Unit(strip_inline_markdown(" ".join(title.split())), True))
            continue
        if _BULLET.match(line):
            flush()
            line = _BULLET.sub("", line)
        current.append(line)
    flush()
    return Rejoined(units)


# -- the kind of answer a question wants -------------------------------------------------------
_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december|"
    "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
)
_DATE_RE = re.compile(
    r"\b(?:1\d{3}|20\d{2}|\d{1,2}(?:st|nd|rd|th)?\s+(?:" + _MONTHS + r")|(?:" + _MONTHS + r")"
    r"\s+\d{1,2}|\d{2,4}s|\d{1,2}(?:st|nd|rd|th)\s+century|(?:" + _MONTHS + r")\s+\d{4})\b"
    r"|\b(?:BC|BCE|AD|CE)\b",
    re.I,
)
_NUMBER_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
    "sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|"
    "hundred|hundreds|thousand|thousands|million|millions|billion|billions|dozen|dozens|half|"
    "once|twice|several|few"
)
_NUMBER_RE = re.compile(r"\d|\b(?:" + _NUMBER_WORDS + r")\b", re.I)
_NAME_RE = re.compile(
    r"\b[A-Z][a-zà-ÿ'’\-]+(?:\s+(?:[A-Z]\.\s*)*(?:von |van |de |da |)?[A-Z][\w'’\-]+)*"
)
_KIND_RULES: list[tuple[re.Pattern[str], Kind]] = [
    (re.compile(r"^\s*(?:when|since when|until when)\b", re.I), "date"),
    (
        re.compile(
            r"\b(?:what|which|in what|in which)\s+(?:year|date|day|month|decade|century|period)\b",
            re.I,
        ),
        "date",
    ),
    (
        re.compile(
            r"\bhow\s+(?:many|much|long|old|far|often|tall|high|big|large|deep|fast)\b", re.I
        ),
        "number",
    ),
    (
        re.compile(r"\b(?:what|which)\s+(?:percentage|percent|number|proportion|amount)\b", re.I),
        "number",
    ),
    (re.compile(r"^\s*(?:who|whom|whose)\b", re.I), "person"),
]


def answer_kind(question: str) -> Kind | None:
    """``date``, ``number`` or ``person`` for when / how many / who questions, else None."""
    for pattern, kind in _KIND_RULES:
        if pattern.search(question):
            return kind
    return None


def has_kind(text: str, kind: Kind | None) -> bool:
    """Whether ``text`` holds an answer of ``kind`` (always True for no kind)."""
    if kind is None:
        return True
    if kind == "date":
        return bool(_DATE_RE.search(text))
    if kind == "number":
        return bool(_NUMBER_RE.search(text))
    # A person (or a group of them): a capitalised name that is not a date or a bare number.
    stripped = _DATE_RE.sub(" ", text)
    return bool(_NAME_RE.search(stripped))


_STOP_WORDS = """a an the of in on at to for from by with and or is are was were be been being
    do does did
    what which who whom whose when where why how that this these those it its as into about than
    then there their they he she his her him them we you your our i me my not no can could would
    should will shall may might must has have had many much long often"""
_STOP = frozenset(_STOP_WORDS.split())
_WORD = re.compile(r"[^\W_]+", re.U)


def content_words(text: str) -> set[str]:
    """Lowercased words of ``text`` without function words, crudely stemmed ("landed" and
    "landing" meet)."""
    return {_stem(w) for w in (m.lower() for m in _WORD.findall(text)) if w not in _STOP}


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    return word[:6]


def overlap(question: str, text: str) -> float:
    """The share of the question's content words that ``text`` contains (0 for none)."""
    wanted = content_words(question)
    if not wanted:
        return 0.0
    return len(wanted & content_words(text)) / len(wanted)

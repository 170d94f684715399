"""Citation markers in an answer: parse them, drop the ones naming passages never given.

A marker is a bracket of passage numbers: ``[1]``, ``[2, 3]``, ``[1-3]`` (each bracket of
``[1][2]`` on its own). :func:`validate_citations` keeps the numbers of passages that were
given, removes the others from their bracket (the whole bracket, and the space before it, when
none is left) and reports them. :class:`MarkerFilter` does the same to a stream of text deltas
so that streamed tokens never show a marker the final answer does not have.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from core.text import MARKER_RE, MAX_RANGE, marker_numbers
from core.text import PARTIAL_MARKER_RE as _PARTIAL_RE

__all__ = [
    "MARKER_RE",
    "MAX_RANGE",
    "CitationReport",
    "MarkerFilter",
    "marker_numbers",
    "parse_markers",
    "validate_citations",
]

#: Longest text held back while a possible marker is still open in a stream.
MAX_PENDING = 40


def parse_markers(text: str) -> list[int]:
    """Every passage number cited in ``text``, in order of first appearance."""
    out: list[int] = []
    for m in MARKER_RE.finditer(text):
        for n in marker_numbers(m.group(2)):
            if n not in out:
                out.append(n)
    return out


@dataclass
class CitationReport:
    """An answer with its markers checked."""

    answer: str
    """The answer with markers to passages never given removed."""
    cited: list[int] = field(default_factory=list)
    """Valid passage numbers cited, in order of first appearance."""
    invalid: list[int] = field(default_factory=list)
    """Numbers cited that name no given passage (removed), ascending."""


def _valid_set(given: int | Collection[int]) -> set[int]:
    return set(range(1, given + 1)) if isinstance(given, int) else set(given)


def _rewrite(space: str, body: str, valid: set[int], invalid: list[int] | None = None) -> str:
    numbers = marker_numbers(body)
    keep = [n for n in numbers if n in valid]
    if invalid is not None:
        invalid.extend(n for n in numbers if n not in valid)
    if len(keep) == len(numbers):
        return f"{space}[{body}]"
    if not keep:
        return ""
    return f"{space}[{', '.join(str(n) for n in keep)}]"


def validate_citations(answer: str, given: int | Collection[int]) -> CitationReport:
    """Check the markers of ``answer`` against the passages given (a count n: 1..n)."""
    valid = _valid_set(given)
    invalid: list[int] = []
    cleaned = MARKER_RE.sub(lambda m: _rewrite(m.group(1), m.group(2), valid, invalid), answer)
    return CitationReport(
        answer=cleaned.strip(),
        cited=[n for n in parse_markers(cleaned) if n in valid],
        invalid=sorted(set(invalid)),
    )


class MarkerFilter:
    """Applies :func:`validate_citations`' marker rewriting to a stream of text deltas.

    Text is passed on as it comes, except trailing whitespace and a possibly unfinished
    ``[...``, which are held until the next delta decides them (at most :data:`MAX_PENDING`
    characters). The concatenated output equals ``validate_citations(full, given).answer`` up
    to surrounding whitespace.
    """

    def __init__(self, given: int | Collection[int]) -> None:
        self.valid = _valid_set(given)
        self._buf = ""
        self._started = False

    def feed(self, delta: str) -> str:
        self._buf += delta
        out: list[str] = []
        while self._buf:
            i = self._buf.find("[")
            if i == -1:
                keep = len(self._buf.rstrip())
                out.append(self._buf[:keep])
                self._buf = self._buf[keep:]
                break
            head = self._buf[:i]
            body_start = len(head.rstrip())
            m = MARKER_RE.match(self._buf, body_start)
            if m is not None and m.start(2) - 1 == i:
                out.append(head[:body_start] + _rewrite(m.group(1), m.group(2), self.valid))
                self._buf = self._buf[m.end() :]
                continue
            tail = self._buf[i:]
            if _PARTIAL_RE.fullmatch(tail) and len(self._buf) - body_start < MAX_PENDING:
                out.append(head[:body_start])
                self._buf = self._buf[body_start:]
                break
            out.append(self._buf[: i + 1])
            self._buf = self._buf[i + 1 :]
        return self._lstrip("".join(out))

    def flush(self) -> str:
        """What is still held back (call once the stream has ended)."""
        rest, self._buf = self._buf.rstrip(), ""
        return self._lstrip(rest)

    def _lstrip(self, text: str) -> str:
        if not self._started:
            text = text.lstrip()
            self._started = bool(text)
        return text

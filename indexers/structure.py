"""Text layout to structure: rejoin hard-wrapped lines, keep headings as section titles.

PDF pages, man pages and plain-text READMEs break lines at a fixed width and hyphenate words
at line ends; chunking them line by line cuts sentences in half. :func:`unwrap` rejoins the
lines of a paragraph (keeping list items, table rows and short lines that end a sentence on
their own lines) and rejoins ``decompres-`` + ``sion``. Headings become section titles
(:class:`Section`): the chunker stores them in chunk metadata, not as answerable sentences.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_BULLET = re.compile(r"^\s*(?:[-*+\u2022\u25e6\u2023\u2043\u00b7]|\(?\d{1,3}[.)]|[a-z][.)])\s+")
_HYPHEN_END = re.compile(r"(\w)[-\u2010\u00ad]$")
_SENTENCE_END = re.compile(r"[.!?:;\u3002\uff01\uff1f\"')\]]$")
_ATX = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_SETEXT = re.compile(r"^(=+|-+)\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_CJK_END = re.compile(r"[\u3000-\u9fff\uac00-\ud7af\uff00-\uffef]$")
_CJK_START = re.compile(r"^[\u3000-\u9fff\uac00-\ud7af\uff00-\uffef]")


@dataclass
class Section:
    title: str
    """Heading path, ``"Install > Linux"``; empty before the first heading."""
    text: str


def _keeps_break(line: str, nxt: str, width: int) -> bool:
    if not nxt.strip() or not line.strip():
        return True
    if _BULLET.match(nxt) or nxt.lstrip().startswith("|") or line.rstrip().endswith("|"):
        return True
    # A short line that ends a sentence ends its own paragraph (PDF paragraphs, addresses).
    return len(line.strip()) < 0.6 * width and bool(_SENTENCE_END.search(line.rstrip()))


def unwrap(text: str) -> str:
    """Rejoin hard-wrapped lines and end-of-line hyphenation; blank lines are kept."""
    lines = text.split("\n")
    if len(lines) < 2:
        return text.strip()
    width = max((len(x.strip()) for x in lines), default=0)
    out: list[str] = []
    cur = ""
    for i, line in enumerate(lines):
        piece = line.strip()
        if not cur:
            cur = piece
        elif piece:
            m = _HYPHEN_END.search(cur)
            if m and piece[:1].islower():
                cur = cur[:-1] + piece
            elif _CJK_END.search(cur) and _CJK_START.match(piece):
                cur += piece
            else:
                cur += " " + piece
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if i + 1 == len(lines) or _keeps_break(line, nxt, width):
            out.append(cur)
            if not nxt.strip() and i + 1 < len(lines):
                out.append("")
            cur = ""
    text = "\n".join(out)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _is_plain_heading(para: list[str]) -> bool:
    if len(para) != 1:
        return False
    line = para[0].strip()
    words = line.split()
    return (
        0 < len(words) <= 10
        and len(line) <= 80
        and not _SENTENCE_END.search(line)
        and not line.endswith(",")
        and (line[0].isupper() or line[0].isdigit())
        and not _BULLET.match(line)
        and any(ch.isalpha() for ch in line)
    )


def plain_sections(text: str) -> list[Section]:
    """Sections of a plain-text (or man-page, or PDF) layout; titles from heading lines.

    A heading is a paragraph of one short line that does not end a sentence, or an
    all-capitals line at the left margin followed by indented text (man pages)."""
    paras: list[list[str]] = [[]]
    for line in text.split("\n"):
        if line.strip():
            paras[-1].append(line)
        elif paras[-1]:
            paras.append([])
    sections: list[Section] = []
    title = ""
    body: list[str] = []

    def flush() -> None:
        joined = "\n\n".join(p for p in body if p)
        if joined.strip():
            sections.append(Section(title, joined))

    for para in paras:
        if not para:
            continue
        first = para[0]
        if (
            len(para) > 1
            and first == first.lstrip()
            and first.isupper()
            and len(first.split()) <= 6
        ):
            if all(x.startswith((" ", "\t")) for x in para[1:]):
                flush()
                title, body = first.strip(), []
                para = para[1:]
        elif _is_plain_heading(para) and len(paras) > 1:
            flush()
            title, body = first.strip(), []
            continue
        body.append(unwrap("\n".join(para)))
    flush()
    return sections or ([Section("", text.strip())] if text.strip() else [])


def markdown_sections(text: str) -> list[Section]:
    """Sections of Markdown: ATX (``#``) and setext headings, code fences kept verbatim."""
    lines = text.split("\n")
    stack: list[tuple[int, str]] = []
    sections: list[Section] = []
    body: list[str] = []
    fence = False

    def flush() -> None:
        content = _markdown_body(body)
        if content.strip():
            sections.append(Section(" > ".join(t for _, t in stack), content))

    i = 0
    while i < len(lines):
        line = lines[i]
        if _FENCE.match(line):
            fence = not fence
            body.append(line)
            i += 1
            continue
        heading: tuple[int, str] | None = None
        if not fence:
            m = _ATX.match(line)
            nxt = lines[i + 1] if i + 1 < len(lines) else ""
            if m:
                heading = (len(m.group(1)), m.group(2).strip())
            elif (
                line.strip()
                and nxt.strip()
                and not _BULLET.match(line)
                and _SETEXT.match(nxt.strip())
                and (not body or not body[-1].strip())
            ):
                heading = (1 if nxt.strip()[0] == "=" else 2, line.strip())
                i += 1
        if heading and heading[1]:
            flush()
            body = []
            level, title = heading
            stack = [(lv, t) for lv, t in stack if lv < level] + [(level, title)]
        else:
            body.append(line)
        i += 1
    flush()
    return sections


def _markdown_body(lines: list[str]) -> str:
    """Unwrap paragraphs of Markdown body text; fenced code stays as it is."""
    out: list[str] = []
    para: list[str] = []
    fence = False
    for line in lines:
        if _FENCE.match(line):
            if para:
                out.append(unwrap("\n".join(para)))
                para = []
            out.append(line)
            fence = not fence
            continue
        if fence:
            out.append(line)
            continue
        if line.strip():
            para.append(line)
        else:
            if para:
                out.append(unwrap("\n".join(para)))
                para = []
            out.append("")
    if para:
        out.append(unwrap("\n".join(para)))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()


def sections_text(sections: list[Section]) -> str:
    """The document text of ``sections`` (bodies only: titles live in metadata)."""
    return "\n\n".join(s.text for s in sections if s.text.strip())

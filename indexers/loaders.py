"""Load documents: text (any encoding), Markdown, reStructuredText, HTML, PDF, DOCX, JSON
lines, JSON and CSV; files without a known extension are sniffed.

Every function here works on one file (:func:`load_one`) or a batch (:func:`load_batch`)
and never raises for a bad file: what cannot be indexed comes back as a
:class:`~indexers.documents.Problem` with a plain reason (``failed``: could not be read;
``skipped``: not a supported format; ``dropped``: nothing to index, e.g. a PDF without a
text layer). Errors are never retried: a parser that fails once fails again.

Readers: text through :mod:`indexers.decode` (BOMs, charset-normalizer, NFC); HTML through
trafilatura on the page with scripts, styles, navigation and cookie banners removed, plus
every visible text block of the main content that trafilatura left out (it can drop short
blocks in ``<section>`` or ``<div>``); PDF through pypdf (OCR with rapidocr-onnxruntime when
that optional extra is installed); reStructuredText through docutils; DOCX through
llama-index's reader; CSV and JSON through the standard library.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import UsageError
from indexers.decode import Undecodable, looks_binary, read_text
from indexers.documents import LoadReport, Problem, SourceDocument
from indexers.structure import (
    Section,
    markdown_sections,
    plain_sections,
    sections_text,
    unwrap,
)

log = logging.getLogger(__name__)

TEXT_EXT = (".txt", ".text")
MARKDOWN_EXT = (".md", ".markdown")
HTML_EXT = (".html", ".htm", ".xhtml")
SUPPORTED = (
    *TEXT_EXT,
    *MARKDOWN_EXT,
    *HTML_EXT,
    ".rst",
    ".pdf",
    ".docx",
    ".jsonl",
    ".json",
    ".csv",
)
#: Removed from HTML before extraction.
HTML_DROP_TAGS = ("script", "style", "noscript", "template", "nav", "aside", "form", "iframe")
HTML_DROP_XPATH = (
    "//*[@role='navigation' or @role='banner' or @role='contentinfo' or @aria-hidden='true'"
    " or @hidden or contains(translate(@id,'COKIE','cokie'),'cookie')"
    " or contains(translate(@class,'COKIE','cokie'),'cookie')"
    " or contains(translate(@id,'CONSET','conset'),'consent')"
    " or contains(translate(@class,'CONSET','conset'),'consent')]"
)
HTML_BLOCKS = {
    "p", "div", "section", "article", "main", "li", "dd", "dt", "td", "th", "pre",
    "blockquote", "figcaption", "caption", "summary", "details", "address", "h1", "h2",
    "h3", "h4", "h5", "h6", "tr", "table", "ul", "ol", "dl", "body", "span", "label",
}  # fmt: skip
MAX_RECORD_KEY = 64


class FileProblem(Exception):
    """A file that cannot be indexed, with its kind (failed/skipped/dropped) and reason."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind, self.reason = kind, reason


@dataclass
class LoadedFile:
    """What one file gave: documents, problems (the file's or its lines'), PDF pages."""

    source: str
    documents: list[SourceDocument] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    pages: int = 0


# -- text ------------------------------------------------------------------------------------
def _text(raw: bytes) -> str:
    try:
        return read_text(raw)[0]
    except Undecodable as exc:
        raise FileProblem("failed", f"undecodable text: {exc}") from None


def _title_from(text: str, fallback: str) -> str:
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line[:120]
    return fallback


def _title_of(sections: list[Section], text: str, fallback: str) -> str:
    for s in sections:
        if s.title:
            return s.title.split(" > ")[0][:120]
    return _title_from(text, fallback)


# -- HTML ------------------------------------------------------------------------------------
def html_to_markdown(html: str) -> tuple[str, str]:
    """``(main text as Markdown-ish text with # headings, page title)``."""
    import lxml.html
    import trafilatura

    try:
        tree = lxml.html.document_fromstring(html)
    except Exception as exc:  # noqa: BLE001 - lxml's many parser errors
        raise FileProblem("failed", f"unreadable HTML: {exc}") from None
    title_el = tree.find(".//title")
    title = " ".join(title_el.text_content().split()) if title_el is not None else ""
    for el in tree.xpath("|".join(f"//{t}" for t in HTML_DROP_TAGS)) + tree.xpath(HTML_DROP_XPATH):
        if el.getparent() is not None:
            el.drop_tree()
    main = tree.xpath("//main|//*[@role='main']|//article")
    container = main[0] if main else tree.find(".//body")
    if container is None:
        container = tree
    if not main:  # page-level header and footer are outside the main content
        for el in container.xpath(".//header|.//footer"):
            if el.getparent() is not None:
                el.drop_tree()
    cleaned = lxml.html.tostring(tree, encoding="unicode")
    extracted = (
        trafilatura.extract(cleaned, favor_recall=True, include_tables=True, include_comments=False)
        or ""
    )
    if not title:
        meta = trafilatura.extract_metadata(cleaned)
        title = (meta.title or "") if meta else ""
    found = _norm(extracted)
    blocks: list[str] = []
    for tag, text, link_share in _html_blocks(container):
        n = _norm(text)
        if not n:
            continue
        kept = n in found or (link_share < 0.5 and len(n.split()) >= 2)
        if not kept:
            continue
        if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            blocks.append("#" * int(tag[1]) + " " + text)
        else:
            blocks.append(text)
    return "\n\n".join(blocks), title


def _norm(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def _html_blocks(root: Any) -> Iterator[tuple[str, str, float]]:
    """``(tag, text, share of the text inside links)`` of each text block, in page order."""
    out: list[tuple[str, str, float]] = []

    def flush(tag: str, buf: list[tuple[str, bool]]) -> None:
        text = " ".join("".join(t for t, _ in buf).split())
        if text:
            link = sum(len(t.strip()) for t, a in buf if a)
            out.append((tag, text, link / max(1, len(text))))
        buf.clear()

    def walk(el: Any, tag: str, buf: list[tuple[str, bool]], in_link: bool) -> None:
        buf.append((el.text or "", in_link))
        for child in el:
            if not isinstance(child.tag, str):
                buf.append((child.tail or "", in_link))
                continue
            if child.tag in HTML_BLOCKS and child.tag != "span":
                flush(tag, buf)
                inner: list[tuple[str, bool]] = []
                walk(child, child.tag, inner, in_link)
                flush(child.tag, inner)
            elif child.tag == "br":
                buf.append((" ", in_link))
            else:
                walk(child, tag, buf, in_link or child.tag == "a")
            buf.append((child.tail or "", in_link))

    top: list[tuple[str, bool]] = []
    walk(root, root.tag if isinstance(root.tag, str) else "div", top, False)
    flush(root.tag if isinstance(root.tag, str) else "div", top)
    yield from out


# -- PDF -------------------------------------------------------------------------------------
def ocr_available() -> bool:
    try:
        import rapidocr_onnxruntime  # noqa: F401
    except Exception:  # noqa: BLE001 - missing or broken optional extra
        return False
    return True


_OCR: Any = None


def _ocr_page(page: Any) -> str:
    global _OCR
    from rapidocr_onnxruntime import RapidOCR

    if _OCR is None:
        _OCR = RapidOCR()
    lines: list[str] = []
    for image in page.images:
        result, _ = _OCR(image.data)
        lines.extend(r[1] for r in result or [])
    return "\n".join(lines)


def read_pdf(raw: bytes, ocr: bool | None = None) -> tuple[list[str], str, bool]:
    """``(page texts, title, ocr_used)``; a :class:`FileProblem` with a plain reason."""
    import pypdf
    from pypdf.errors import FileNotDecryptedError, PdfReadError

    if not raw:
        raise FileProblem("failed", "empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = pypdf.PdfReader(io.BytesIO(raw))
            if reader.is_encrypted and not reader.decrypt(""):
                raise FileProblem("failed", "encrypted: a password is required")
            pages = [p.extract_text() or "" for p in reader.pages]
            title = ""
            if reader.metadata is not None and reader.metadata.title:
                title = str(reader.metadata.title).strip()
            used = False
            want_ocr = ocr if ocr is not None else ocr_available()
            if pages and want_ocr and not any(p.strip() for p in pages):
                pages = [_ocr_page(p) for p in reader.pages]
                used = True
    except FileProblem:
        raise
    except FileNotDecryptedError:
        raise FileProblem("failed", "encrypted: a password is required") from None
    except (PdfReadError, ValueError, KeyError, TypeError, IndexError, OSError) as exc:
        raise FileProblem("failed", f"damaged or truncated PDF ({exc})"[:200]) from None
    if not any(p.strip() for p in pages):
        hint = "OCR found no text" if used else "install tandem[ocr] to read it"
        raise FileProblem("dropped", f"no text layer: needs OCR ({hint})")
    return pages, title, used


# -- records ---------------------------------------------------------------------------------
def flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested objects as dotted keys; lists of scalars kept as lists (multi-valued fields);
    lists of objects as dotted lists; nulls dropped."""
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if value is None:
            continue
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        elif isinstance(value, list):
            scalars = [v for v in value if isinstance(v, str | int | float | bool)]
            if scalars:
                out[name] = scalars
            for item in value:
                if isinstance(item, dict):
                    for k, v in flatten(item, name + ".").items():
                        out.setdefault(k, [])
                        out[k].extend(v if isinstance(v, list) else [v])
        elif isinstance(value, str | int | float | bool):
            out[name] = value
    return {k: v for k, v in out.items() if len(k) <= MAX_RECORD_KEY}


def _record(
    source: str, mtime: float, n: int, row: dict[str, Any], text_field: str, stem: str
) -> SourceDocument:
    text = row.pop(text_field)
    meta = flatten(row)
    title = str(meta.pop("title", "") or _title_from(text, f"{stem}:{n}"))
    return SourceDocument(f"{source}#L{n}", source, text, title, mtime, meta, record=True)


def _jsonl(raw: bytes, source: str, mtime: float, text_field: str, stem: str) -> LoadedFile:
    out = LoadedFile(source)
    for n, line in enumerate(_text(raw).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            out.problems.append(Problem(f"{source}#L{n}", "failed", f"invalid JSON ({exc.msg})"))
            continue
        if not isinstance(row, dict) or not isinstance(row.get(text_field), str):
            reason = f"no string field {text_field!r}"
            out.problems.append(Problem(f"{source}#L{n}", "failed", reason))
            continue
        out.documents.append(_record(source, mtime, n, row, text_field, stem))
    return out


def _json(raw: bytes, source: str, mtime: float, text_field: str, stem: str) -> LoadedFile:
    try:
        data = json.loads(_text(raw))
    except json.JSONDecodeError as exc:
        raise FileProblem("failed", f"invalid JSON (line {exc.lineno}: {exc.msg})") from None
    out = LoadedFile(source)
    rows = data if isinstance(data, list) else [data]
    for n, row in enumerate(rows, start=1):
        if isinstance(row, dict) and isinstance(row.get(text_field), str):
            out.documents.append(_record(source, mtime, n, row, text_field, stem))
        elif isinstance(row, dict):  # no text field: the document is its fields
            flat = flatten(row)
            text = "\n".join(f"{k}: {_as_text(v)}" for k, v in flat.items())
            meta = {k: v for k, v in flat.items() if not isinstance(v, str) or len(v) <= 200}
            title = str(flat.get("title") or f"{stem}:{n}")
            doc = SourceDocument(f"{source}#L{n}", source, text, title, mtime, meta, record=True)
            out.documents.append(doc)
        else:
            out.problems.append(Problem(f"{source}#L{n}", "failed", "not a JSON object"))
    if not isinstance(data, list) and out.documents:
        out.documents[0].doc_id = source
    return out


def _as_text(v: Any) -> str:
    return ", ".join(map(str, v)) if isinstance(v, list) else str(v)


def _csv(raw: bytes, source: str, mtime: float, text_field: str, stem: str) -> LoadedFile:
    """One document per row: ``column: value`` lines, or the ``text_field`` column when
    there is one (the other columns then become metadata)."""
    text = _text(raw)
    try:
        dialect: Any = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    out = LoadedFile(source)
    for row in reader:
        n = reader.line_num
        row = {str(k).strip(): (v or "").strip() for k, v in row.items() if k is not None}
        if not any(row.values()):
            continue
        if isinstance(row.get(text_field), str) and row[text_field]:
            out.documents.append(_record(source, mtime, n, dict(row), text_field, stem))
            continue
        body = "\n".join(f"{k}: {v}" for k, v in row.items() if v)
        meta = {k: v for k, v in row.items() if v and len(v) <= 200 and len(k) <= 64}
        title = next(iter(row.values()), "") or f"{stem}:{n}"
        out.documents.append(
            SourceDocument(f"{source}#L{n}", source, body, title[:120], mtime, meta, record=True)
        )
    return out


# -- one file --------------------------------------------------------------------------------
def _rst_sections(text: str) -> list[Section]:
    import docutils.core
    import docutils.nodes as nodes

    doctree = docutils.core.publish_doctree(
        text, settings_overrides={"report_level": 5, "halt_level": 5, "file_insertion_enabled": 0}
    )
    sections: list[Section] = []

    def walk(node: Any, path: list[str]) -> None:
        body: list[str] = []
        for child in node.children:
            if isinstance(child, nodes.title):
                continue
            if isinstance(child, nodes.subtitle):  # docutils' promoted second-level title
                if body:
                    sections.append(Section(" > ".join(path), "\n\n".join(body)))
                    body = []
                path = [*path, child.astext()]
                continue
            if isinstance(child, nodes.section):
                if body:
                    sections.append(Section(" > ".join(path), "\n\n".join(body)))
                    body = []
                title = child.next_node(nodes.title)
                walk(child, [*path, title.astext() if title else ""])
            elif isinstance(child, nodes.system_message | nodes.comment):
                continue
            else:
                t = child.astext().strip()
                if t:
                    body.append(t if isinstance(child, nodes.literal_block) else unwrap(t))
        if body:
            sections.append(Section(" > ".join(path), "\n\n".join(body)))

    doc_title = doctree.get("title") or ""
    walk(doctree, [doc_title] if doc_title else [])
    return sections


def _sections_for(kind: str, text: str) -> list[Section]:
    if kind == "markdown":
        return markdown_sections(text)
    if kind == "rst":
        return _rst_sections(text)
    return plain_sections(text)


def sniff(raw: bytes) -> str | None:
    """``'text'`` for bytes that decode as text, else None (a binary file)."""
    if looks_binary(raw):
        return None
    try:
        read_text(raw[:65536])
    except Undecodable:
        return None
    except UnicodeDecodeError:  # cut inside a multi-byte character
        pass
    return "text"


def load_one(path: Path, root: Path, text_field: str = "text") -> LoadedFile:
    """Load one file; problems are returned, never raised."""
    source = path.relative_to(root).as_posix() if path != root else path.name
    try:
        return _load(path, source, text_field)
    except FileProblem as exc:
        return LoadedFile(source, problems=[Problem(source, exc.kind, exc.reason)])
    except Exception as exc:  # noqa: BLE001 - any parser failure skips the file
        reason = re.sub(r"\s+", " ", f"{type(exc).__name__}: {exc}")[:200]
        return LoadedFile(source, problems=[Problem(source, "failed", reason)])


def _load(path: Path, source: str, text_field: str) -> LoadedFile:
    suffix = path.suffix.lower()
    mtime = path.stat().st_mtime
    raw = path.read_bytes()
    stem = path.stem
    if suffix == ".jsonl":
        return _jsonl(raw, source, mtime, text_field, stem)
    if suffix == ".json":
        return _json(raw, source, mtime, text_field, stem)
    if suffix == ".csv":
        return _csv(raw, source, mtime, text_field, stem)
    if suffix == ".pdf":
        pages, title, _ = read_pdf(raw)
        page_texts = [unwrap(p) for p in pages]
        sections = plain_sections("\n\n".join(p for p in page_texts if p))
        text = sections_text(sections)
        title = title or _title_of(sections, text, stem)
        doc = SourceDocument(source, source, text, title, mtime, {}, sections, pages=len(pages))
        return LoadedFile(source, [doc], pages=len(pages))
    if suffix == ".docx":
        from llama_index.readers.file import DocxReader

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loaded = DocxReader().load_data(file=path)
        kind, body = "plain", "\n\n".join(d.text for d in loaded if d.text)
        title = ""
    elif suffix in HTML_EXT:
        html = _text(raw)
        body, title = html_to_markdown(html)
        kind = "markdown"
    else:
        if suffix not in SUPPORTED and sniff(raw) is None:
            label = suffix or "no extension"
            raise FileProblem("skipped", f"unsupported: not a text file ({label})")
        body = _text(raw)
        kind = {".md": "markdown", ".markdown": "markdown", ".rst": "rst"}.get(suffix, "plain")
        title = ""
    sections = _sections_for(kind, body)
    text = sections_text(sections)
    title = title or _title_of(sections, text, stem)
    return LoadedFile(source, [SourceDocument(source, source, text, title, mtime, {}, sections)])


def load_batch(files: Sequence[tuple[Path, Path]], text_field: str = "text") -> list[LoadedFile]:
    """:func:`load_one` over ``(file, root)`` pairs (a batch, for parallel engines)."""
    return [load_one(f, r, text_field) for f, r in files]


def load_file(path: Path, root: Path, text_field: str = "text") -> list[SourceDocument]:
    """Load one file; raises ``ValueError`` with the reason when it gives no documents."""
    loaded = load_one(path, root, text_field)
    if not loaded.documents and loaded.problems:
        raise ValueError(loaded.problems[0].reason)
    return loaded.documents


# -- files and roots -------------------------------------------------------------------------
def root_for(path: Path, roots: Sequence[str | Path] = ()) -> Path:
    """The source root of ``path``: the deepest remembered root that contains it, else the
    folder itself (or a file's folder)."""
    p = path.resolve()
    best: Path | None = None
    for r in roots:
        rp = Path(r)
        if (p == rp or rp in p.parents) and (best is None or len(rp.parts) > len(best.parts)):
            best = rp
    if best is not None and best != p:
        return best
    return p if p.is_dir() else p.parent


def iter_files(path: Path, roots: Sequence[str | Path] = ()) -> Iterable[tuple[Path, Path]]:
    """``(file, root)`` pairs under ``path``; hidden files and folders are left out."""
    root = root_for(path, roots)
    p = path.resolve()
    if p.is_file():
        yield p, root
        return
    for file in sorted(p.rglob("*")):
        if file.is_file():
            rel = file.relative_to(p)
            if any(part.startswith(".") for part in rel.parts):
                continue
            yield file, root


def check_paths(paths: Iterable[str | Path]) -> list[Path]:
    """The paths, each checked to exist (a :class:`UsageError` otherwise)."""
    resolved = [Path(p) for p in paths]
    for p in resolved:
        if not p.exists():
            raise UsageError(f"path not found: {p}")
    return resolved


def load_paths(
    paths: Iterable[str | Path], text_field: str = "text", roots: Sequence[str | Path] = ()
) -> LoadReport:
    """Load every file under ``paths``. Missing paths are a :class:`UsageError`."""
    report = LoadReport()
    for p in check_paths(paths):
        for loaded in load_batch(list(iter_files(p, roots)), text_field):
            report.documents.extend(loaded.documents)
            report.problems.extend(loaded.problems)
            report.pages += loaded.pages
    return report

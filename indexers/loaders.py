"""Load documents with llama-index readers: txt, md, html, pdf, docx and jsonl.

Each file is read by a llama-index ``BaseReader`` (the library's own PDF, DOCX and Markdown
readers; a boilerplate-stripping HTML reader and a JSON-lines reader written as llama-index
readers). A file that cannot be parsed is reported in ``failed`` and the build goes on.
"""

from __future__ import annotations

import json
import logging
import re
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from llama_index.core import Document
from llama_index.core.readers.base import BaseReader

from core.errors import UsageError
from indexers.documents import LoadReport, SourceDocument

log = logging.getLogger(__name__)

SUPPORTED = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx", ".jsonl")
BOILERPLATE_TAGS = ("script", "style", "nav", "footer", "header", "aside", "noscript", "form")


class HTMLArticleReader(BaseReader):
    """HTML to text, dropping scripts, navigation, headers and footers."""

    def load_data(self, file: Path, extra_info: dict[str, Any] | None = None) -> list[Document]:
        from bs4 import BeautifulSoup

        raw = Path(file).read_bytes()
        soup = BeautifulSoup(raw, "html.parser")
        title = soup.title.get_text(strip=True) if soup.title else ""
        for tag in soup(list(BOILERPLATE_TAGS)):
            tag.decompose()
        for tag in soup.select('[role="navigation"], [class*="cookie"], [id*="cookie"]'):
            tag.decompose()
        body = soup.find("main") or soup.find("article") or soup.body or soup
        blocks = [
            el.get_text(" ", strip=True)
            for el in body.find_all(["h1", "h2", "h3", "h4", "p", "li", "td", "pre", "blockquote"])
        ]
        text = "\n\n".join(b for b in blocks if b) or body.get_text("\n", strip=True)
        return [Document(text=text, metadata={"title": title, **(extra_info or {})})]


class JSONLinesReader(BaseReader):
    """One document per line; ``text_field`` holds the text, other fields become metadata."""

    def __init__(self, text_field: str = "text") -> None:
        self.text_field = text_field

    def load_data(self, file: Path, extra_info: dict[str, Any] | None = None) -> list[Document]:
        docs = []
        with Path(file).open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"line {lineno}: invalid JSON ({exc.msg})") from exc
                if not isinstance(row, dict) or not isinstance(row.get(self.text_field), str):
                    raise ValueError(f"line {lineno}: no string field {self.text_field!r}")
                text = row.pop(self.text_field)
                meta = {k: v for k, v in row.items() if isinstance(v, str | int | float | bool)}
                docs.append(Document(text=text, metadata={"line": lineno, **meta}))
        return docs


def _reader_for(suffix: str, text_field: str) -> BaseReader | None:
    from llama_index.readers.file import DocxReader, MarkdownReader, PDFReader

    if suffix in (".md", ".markdown"):
        return MarkdownReader(remove_hyperlinks=False, remove_images=True)
    if suffix == ".pdf":
        return PDFReader(return_full_document=True)
    if suffix == ".docx":
        return DocxReader()
    if suffix in (".html", ".htm"):
        return HTMLArticleReader()
    if suffix == ".jsonl":
        return JSONLinesReader(text_field)
    return None  # plain text


def _title_from(text: str, fallback: str) -> str:
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line[:120]
    return fallback


def load_file(path: Path, root: Path, text_field: str = "text") -> list[SourceDocument]:
    """Load one file; raises on a file that cannot be parsed."""
    source = path.relative_to(root).as_posix() if path != root else path.name
    suffix = path.suffix.lower()
    mtime = path.stat().st_mtime
    reader = _reader_for(suffix, text_field)
    if reader is None:
        raw = path.read_bytes()
        if b"\x00" in raw[:4096]:
            raise ValueError("binary file")
        text = raw.decode("utf-8", errors="replace")
        return [SourceDocument(source, source, text, _title_from(text, path.stem), mtime)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = reader.load_data(file=path)
    if suffix == ".jsonl":
        out = []
        for doc in loaded:
            meta = dict(doc.metadata)
            line = meta.pop("line")
            title = str(meta.pop("title", "") or _title_from(doc.text, f"{path.stem}:{line}"))
            out.append(SourceDocument(f"{source}#L{line}", source, doc.text, title, mtime, meta))
        return out
    if suffix == ".pdf" and not loaded:
        raise ValueError("no pages could be read")
    text = "\n\n".join(d.text for d in loaded if d.text)
    meta_title = next((d.metadata.get("title") for d in loaded if d.metadata.get("title")), "")
    title = str(meta_title or _title_from(text, path.stem))
    return [SourceDocument(source, source, text, title, mtime)]


def iter_files(path: Path) -> Iterable[tuple[Path, Path]]:
    """``(file, root)`` pairs under ``path``; a file given directly has its folder as root."""
    if path.is_file():
        yield path, path.parent
        return
    for file in sorted(path.rglob("*")):
        if file.is_file() and file.suffix.lower() in SUPPORTED:
            rel = file.relative_to(path)
            if any(part.startswith(".") for part in rel.parts):
                continue
            yield file, path


def load_paths(paths: Iterable[str | Path], text_field: str = "text") -> LoadReport:
    """Load every supported file under ``paths``. Missing paths are a :class:`UsageError`."""
    report = LoadReport()
    resolved = [Path(p) for p in paths]
    for p in resolved:
        if not p.exists():
            raise UsageError(f"path not found: {p}")
    for p in resolved:
        for file, root in iter_files(p):
            try:
                report.documents.extend(load_file(file, root, text_field))
            except Exception as exc:  # noqa: BLE001 - any parser failure skips the file
                reason = re.sub(r"\s+", " ", str(exc))[:200] or type(exc).__name__
                source = file.relative_to(root).as_posix()
                log.warning("skipped %s: %s", source, reason)
                report.failed.append((source, reason))
    return report

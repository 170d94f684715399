"""The document model shared by the loaders, curation and the builder."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from indexers.structure import Section

#: What happened to a file or document that is not (wholly) indexed: ``failed`` (could not be
#: read), ``skipped`` (not a supported format), ``dropped`` (nothing worth indexing in it),
#: ``merged`` (identical to content kept under another file), ``kept`` (failed now; its last
#: good content kept from the previous version).
KINDS = ("failed", "skipped", "dropped", "merged", "kept")


@dataclass
class SourceDocument:
    """One document as loaded: a file, or one record of a ``.jsonl``/``.csv``/``.json`` file."""

    doc_id: str
    """Stable id: the path relative to the index's source root (``#L<n>`` for records)."""
    source: str
    """The file's path relative to the index's source root."""
    text: str
    title: str
    mtime: float | None
    metadata: dict[str, Any] = field(default_factory=dict)
    sections: list[Section] = field(default_factory=list)
    """Titled parts of ``text``; empty: one untitled section, the whole text."""
    record: bool = False
    """A data record (a JSON line, a CSV row): short by nature, never boilerplate."""
    pages: int = 0
    """PDF pages read (0 for other formats)."""

    @property
    def content_hash(self) -> str:
        return text_hash(self.text)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


@dataclass
class Problem:
    """A file (or a line of one) that is not indexed as it is, and why, in plain words."""

    source: str
    kind: str
    reason: str
    kept: str | None = None
    """For ``merged``: the file whose copy of the content is kept."""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "reason": self.reason}
        if self.kept is not None:
            out["kept"] = self.kept
        return out


@dataclass
class LoadReport:
    documents: list[SourceDocument] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    pages: int = 0

    @property
    def failed(self) -> list[tuple[str, str]]:
        """``(source, reason)`` for each file (or line) that could not be read."""
        return [(p.source, p.reason) for p in self.problems if p.kind == "failed"]

    def of_kind(self, kind: str) -> list[Problem]:
        return [p for p in self.problems if p.kind == kind]

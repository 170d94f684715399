"""The document model shared by the loaders, curation and the builder."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any


@dataclass
class SourceDocument:
    """One document as loaded: a file, or one line of a ``.jsonl`` file."""

    doc_id: str
    """Stable id: the path relative to the build root (``#L<n>`` appended for jsonl lines)."""
    source: str
    """The file's path relative to the build root it was given with."""
    text: str
    title: str
    mtime: float | None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def content_hash(self) -> str:
        return text_hash(self.text)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


@dataclass
class LoadReport:
    documents: list[SourceDocument] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    """``(source, reason)`` for each file that could not be read."""

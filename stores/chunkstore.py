"""The chunk and metadata store: one SQLite file per index version.

Rows are numbered 0..n-1 in the same order as the vectors, so a vector id *is* a row id.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import UsageError

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    title TEXT,
    mtime REAL,
    content_hash TEXT NOT NULL,
    metadata TEXT NOT NULL,
    chunk_count INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    row INTEGER PRIMARY KEY,
    chunk_id TEXT NOT NULL UNIQUE,
    doc_id TEXT NOT NULL,
    source TEXT NOT NULL,
    position INTEGER NOT NULL,
    text TEXT NOT NULL,
    text_hash TEXT NOT NULL,
    metadata TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS held_documents (
    doc_id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    title TEXT,
    mtime REAL,
    content_hash TEXT NOT NULL,
    metadata TEXT NOT NULL,
    chunk_count INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS held_chunks (
    chunk_id TEXT NOT NULL UNIQUE,
    doc_id TEXT NOT NULL,
    source TEXT NOT NULL,
    position INTEGER NOT NULL,
    text TEXT NOT NULL,
    text_hash TEXT NOT NULL,
    metadata TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE INDEX IF NOT EXISTS chunks_hash ON chunks(text_hash);
"""

#: Filter keys that are columns rather than metadata fields.
COLUMN_KEYS = {"source", "doc_id", "chunk_id"}
FILTER_KEY_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


@dataclass
class DocumentRecord:
    doc_id: str
    source: str
    title: str
    mtime: float | None
    content_hash: str
    metadata: dict[str, Any]
    chunk_count: int = 0


@dataclass
class ChunkRecord:
    chunk_id: str
    doc_id: str
    source: str
    position: int
    text: str
    text_hash: str
    metadata: dict[str, Any] = field(default_factory=dict)
    row: int = -1


Filters = Mapping[str, Sequence[str]]


def normalise_filters(filters: Mapping[str, Any] | None) -> dict[str, list[str]]:
    """``{"topic": "a"}`` or ``{"topic": ["a", "b"]}`` -> ``{"topic": ["a", "b"]}``, checked."""
    out: dict[str, list[str]] = {}
    for key, value in (filters or {}).items():
        if not key or not set(key) <= FILTER_KEY_CHARS or len(key) > 64:
            raise UsageError(f"invalid filter field {key!r}")
        values = value if isinstance(value, list | tuple) else [value]
        if not values or len(values) > 100:
            raise UsageError(f"filter {key!r} needs 1 to 100 values")
        for v in values:
            if isinstance(v, dict | list):
                raise UsageError(f"filter {key!r}: values must be strings, numbers or booleans")
        out[key] = [_as_text(v) for v in values]
    return out


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class ChunkStore:
    """Read/write access to a version's ``chunks.sqlite``."""

    def __init__(self, path: str | Path, readonly: bool = False) -> None:
        self.path = Path(path)
        uri = f"file:{self.path}?mode=ro" if readonly else f"file:{self.path}"
        self._conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
        self._lock = threading.Lock()
        if not readonly:
            self._conn.executescript(SCHEMA)

    def close(self) -> None:
        self._conn.close()

    # -- writing ---------------------------------------------------------------------------
    def write(self, documents: Iterable[DocumentRecord], chunks: Sequence[ChunkRecord]) -> None:
        with self._lock, self._conn:
            self._conn.executemany(
                "INSERT INTO documents VALUES (?,?,?,?,?,?,?)",
                [
                    (
                        d.doc_id,
                        d.source,
                        d.title,
                        d.mtime,
                        d.content_hash,
                        json.dumps(d.metadata, ensure_ascii=False, default=str),
                        d.chunk_count,
                    )
                    for d in documents
                ],
            )
            self._conn.executemany(
                "INSERT INTO chunks VALUES (?,?,?,?,?,?,?,?)",
                [
                    (
                        row,
                        c.chunk_id,
                        c.doc_id,
                        c.source,
                        c.position,
                        c.text,
                        c.text_hash,
                        json.dumps(c.metadata, ensure_ascii=False, default=str),
                    )
                    for row, c in enumerate(chunks)
                ],
            )

    def write_held(
        self, documents: Iterable[DocumentRecord], chunks: Sequence[ChunkRecord]
    ) -> None:
        """Content not searched (identical to a kept copy) but kept for later versions: when
        the kept copy's file goes, this one takes its place."""
        with self._lock, self._conn:
            self._conn.executemany(
                "INSERT INTO held_documents VALUES (?,?,?,?,?,?,?)",
                [
                    (
                        d.doc_id,
                        d.source,
                        d.title,
                        d.mtime,
                        d.content_hash,
                        json.dumps(d.metadata, ensure_ascii=False, default=str),
                        d.chunk_count,
                    )
                    for d in documents
                ],
            )
            self._conn.executemany(
                "INSERT INTO held_chunks VALUES (?,?,?,?,?,?,?)",
                [
                    (
                        c.chunk_id,
                        c.doc_id,
                        c.source,
                        c.position,
                        c.text,
                        c.text_hash,
                        json.dumps(c.metadata, ensure_ascii=False, default=str),
                    )
                    for c in chunks
                ],
            )

    # -- reading ---------------------------------------------------------------------------
    def _has_table(self, name: str) -> bool:
        cur = self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", [name]
        )
        return cur.fetchone() is not None

    def held(self) -> tuple[list[DocumentRecord], list[ChunkRecord]]:
        """Held documents and chunks (none in versions built before they existed)."""
        with self._lock:
            if not self._has_table("held_chunks"):
                return [], []
            docs = [
                DocumentRecord(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6])
                for r in self._conn.execute(
                    "SELECT doc_id, source, title, mtime, content_hash, metadata, chunk_count "
                    "FROM held_documents ORDER BY doc_id"
                )
            ]
            chunks = [
                _chunk((-1, *r))
                for r in self._conn.execute(
                    "SELECT chunk_id, doc_id, source, position, text, text_hash, metadata "
                    "FROM held_chunks ORDER BY doc_id, position"
                )
            ]
        return docs, chunks

    def metadata_keys(self) -> frozenset[str]:
        """Every metadata field some chunk has (computed once per store)."""
        cached: frozenset[str] | None = getattr(self, "_keys", None)
        if cached is None:
            with self._lock:
                cur = self._conn.execute(
                    "SELECT DISTINCT j.key FROM chunks, json_each(chunks.metadata) AS j"
                )
                cached = frozenset(str(r[0]) for r in cur) | COLUMN_KEYS
            self._keys = cached
        return cached

    def count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])

    def count_documents(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0])

    def get(self, rows: Sequence[int]) -> list[ChunkRecord]:
        """Chunks for the given rows, in the same order."""
        if len(rows) == 0:
            return []
        ids = [int(r) for r in rows]
        marks = ",".join("?" * len(ids))
        with self._lock:
            cur = self._conn.execute(
                "SELECT row, chunk_id, doc_id, source, position, text, text_hash, metadata "
                f"FROM chunks WHERE row IN ({marks})",
                ids,
            )
            found = {r[0]: r for r in cur.fetchall()}
        return [_chunk(found[i]) for i in ids if i in found]

    def all_chunks(self) -> list[ChunkRecord]:
        with self._lock:
            cur = self._conn.execute(
                "SELECT row, chunk_id, doc_id, source, position, text, text_hash, metadata "
                "FROM chunks ORDER BY row"
            )
            return [_chunk(r) for r in cur.fetchall()]

    def documents(self) -> list[DocumentRecord]:
        with self._lock:
            cur = self._conn.execute(
                "SELECT doc_id, source, title, mtime, content_hash, metadata, chunk_count "
                "FROM documents ORDER BY doc_id"
            )
            return [
                DocumentRecord(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6])
                for r in cur.fetchall()
            ]

    def texts(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._conn.execute("SELECT text FROM chunks ORDER BY row")]

    def rows_matching(self, filters: Filters) -> np.ndarray:
        """Rows whose metadata match every filter: equality with one of the values; a list
        field (``"tags": ["a", "b"]``) matches when any of its values does."""
        clauses: list[str] = []
        params: list[Any] = []
        for key, values in filters.items():
            marks = ",".join("?" * len(values))
            if key in COLUMN_KEYS:
                clauses.append(f"{key} IN ({marks})")
            else:
                # CAST keeps numbers and strings comparable: year=2020 matches 2020 and "2020".
                # json booleans come back as 1/0; map them to true/false.
                # json_each walks a list's values, and gives a scalar as its only value.
                clauses.append(
                    "EXISTS (SELECT 1 FROM json_each(chunks.metadata, ?) AS j WHERE "
                    "(CASE j.type WHEN 'true' THEN 'true' WHEN 'false' "
                    f"THEN 'false' ELSE CAST(j.value AS TEXT) END) IN ({marks}))"
                )
                params.append("$." + json.dumps(key))
            params.extend(values)
        where = " AND ".join(clauses) or "1"
        with self._lock:
            cur = self._conn.execute(f"SELECT row FROM chunks WHERE {where} ORDER BY row", params)
            return np.fromiter((r[0] for r in cur), dtype=np.int64)


def _chunk(r: tuple[Any, ...]) -> ChunkRecord:
    return ChunkRecord(
        chunk_id=r[1],
        doc_id=r[2],
        source=r[3],
        position=r[4],
        text=r[5],
        text_hash=r[6],
        metadata=json.loads(r[7]),
        row=r[0],
    )

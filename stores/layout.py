"""On-disk layout of indexes and atomic publication of versions.

::

    <data_dir>/indexes/<name>/
        current            # text file "v3", replaced atomically (os.replace)
        .lock              # build lock (flock)
        v2/ v3/            # published versions, manifest.json written last in each
        .build-v4-<pid>/   # a build in progress; never read, removed on the next build

A version directory is renamed into place only after its manifest is written, and the
``current`` pointer is switched after that, so a reader never sees a half-written version.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from stores.errors import IndexBusy, IndexNotFound, InvalidIndexName

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MANIFEST = "manifest.json"
KEEP_VERSIONS = 2


def check_name(name: str) -> str:
    if not NAME_RE.match(name) or ".." in name:
        raise InvalidIndexName(
            f"invalid index name {name!r}: use 1-64 letters, digits, '.', '_' or '-'"
        )
    return name


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, ensure_ascii=False, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class IndexLayout:
    """Paths and version bookkeeping of one named index."""

    def __init__(self, data_dir: str | Path, name: str) -> None:
        self.name = check_name(name)
        self.data_dir = Path(data_dir)
        self.root = self.data_dir / "indexes" / name

    # -- reading ---------------------------------------------------------------------------
    def exists(self) -> bool:
        return self.current_version() is not None

    def current_version(self) -> int | None:
        try:
            text = (self.root / "current").read_text().strip()
        except FileNotFoundError:
            return None
        match = re.fullmatch(r"v(\d+)", text)
        if not match:
            return None
        version = int(match.group(1))
        return version if (self.version_dir(version) / MANIFEST).is_file() else None

    def require_current(self) -> int:
        version = self.current_version()
        if version is None:
            raise IndexNotFound(f"index {self.name!r} not found in {self.data_dir}")
        return version

    def version_dir(self, version: int) -> Path:
        return self.root / f"v{version}"

    def versions(self) -> list[int]:
        if not self.root.is_dir():
            return []
        found = []
        for child in self.root.iterdir():
            m = re.fullmatch(r"v(\d+)", child.name)
            if m and (child / MANIFEST).is_file():
                found.append(int(m.group(1)))
        return sorted(found)

    def manifest(self, version: int | None = None) -> dict[str, Any]:
        version = self.require_current() if version is None else version
        path = self.version_dir(version) / MANIFEST
        try:
            data: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise IndexNotFound(f"index {self.name!r} has no version {version}") from exc
        return data

    # -- writing ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, wait: bool = False) -> Iterator[None]:
        """Hold the index's build lock; :class:`IndexBusy` if another build holds it."""
        self.root.mkdir(parents=True, exist_ok=True)
        fh = (self.root / ".lock").open("a+")
        try:
            flags = fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB)
            try:
                fcntl.flock(fh.fileno(), flags)
            except BlockingIOError as exc:
                raise IndexBusy(f"index {self.name!r} is being built by another job") from exc
            yield
        finally:
            fh.close()

    def next_version(self) -> int:
        existing = self.versions()
        return (max(existing) if existing else 0) + 1

    def staging_dir(self, version: int) -> Path:
        """A fresh private folder for building ``version``; stale ones are cleared."""
        self.root.mkdir(parents=True, exist_ok=True)
        for stale in self.root.glob(".build-*"):
            shutil.rmtree(stale, ignore_errors=True)
        path = self.root / f".build-v{version}-{os.getpid()}"
        path.mkdir()
        return path

    def publish(self, staging: Path, version: int, manifest: dict[str, Any]) -> Path:
        """Write the manifest last, move the version into place, switch ``current``."""
        write_json_atomic(staging / MANIFEST, manifest)
        _fsync_dir(staging)
        final = self.version_dir(version)
        os.replace(staging, final)
        _fsync_dir(self.root)
        pointer = self.root / ".current.tmp"
        pointer.write_text(f"v{version}\n")
        os.replace(pointer, self.root / "current")
        _fsync_dir(self.root)
        self.prune()
        return final

    def prune(self, keep: int = KEEP_VERSIONS) -> None:
        current = self.current_version()
        for version in self.versions()[:-keep]:
            if version != current:
                shutil.rmtree(self.version_dir(version), ignore_errors=True)

    def remove(self) -> None:
        if not self.root.exists():
            raise IndexNotFound(f"index {self.name!r} not found in {self.data_dir}")
        shutil.rmtree(self.root)


def list_indexes(data_dir: str | Path) -> list[str]:
    root = Path(data_dir) / "indexes"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if IndexLayout(data_dir, p.name).exists())

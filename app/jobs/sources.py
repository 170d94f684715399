"""Which files a job may read.

* **Paths** are relative to ``TANDEM_SOURCES_ROOT``. An absolute path is a 400
  (``invalid_source``); a ``..`` component, or a path or a file under it that is a symlink
  leading outside the root, is a 403 (``source_forbidden``). The check runs when the job is
  submitted (so the caller hears at once) and again in the worker right before the build.
* **Uploads** (``multipart/form-data``) are streamed to ``<upload_dir>/<job_id>/`` and never
  held in memory: at most ``TANDEM_UPLOAD_MAX_FILES`` files of supported types and
  ``TANDEM_UPLOAD_MAX_BYTES`` in all, else 413 (``payload_too_large``) and the folder is removed.
  The folder is removed when the job ends, whatever the outcome. A file keeps its base name
  (what follows the last ``/`` or ``\\``), in Unicode NFC; a name with a control or bidi
  character, an empty or hidden one (``.x``), or one of an unsupported type is a 400
  (``invalid_source``), and so is an upload with two files of the same name: names are compared
  case-insensitively, so ``a/README.txt`` and ``b/readme.TXT`` are refused, never one silently
  written over the other. Form fields are bounded (:data:`MAX_FIELD_BYTES`) as they stream in,
  and so are each part's headers (the multipart parser's limits).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import unicodedata
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import anyio.to_thread

from app.errors import PayloadTooLarge
from app.jobs.errors import InvalidSource, SourceForbidden, SourcesDisabled
from app.settings import Settings

#: Longest non-file form field (action, options).
MAX_FIELD_BYTES = 64 * 1024
#: Form fields an upload may carry besides its files.
FORM_FIELDS = ("action", "options")
#: Bytes of multipart framing allowed on top of TANDEM_UPLOAD_MAX_BYTES of file content.
FRAMING_SLACK = 1024 * 1024


def _relative(source: str) -> PurePosixPath:
    if "\x00" in source or not source.strip():
        raise InvalidSource(f"invalid source {source!r}")
    text = source.replace("\\", "/")
    path = PurePosixPath(text)
    if path.is_absolute() or text.startswith("~") or (len(text) > 1 and text[1] == ":"):
        raise InvalidSource(f"source {source!r}: give a path relative to the sources root")
    if ".." in path.parts:
        raise SourceForbidden(f"source {source!r}: '..' is not allowed")
    return path


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def _check_tree(folder: Path, root: Path, shown: str) -> None:
    """403 if any symlink under ``folder`` leads outside ``root``."""
    for current, dirs, files in os.walk(folder, followlinks=False):
        for name in (*dirs, *files):
            entry = Path(current) / name
            if entry.is_symlink() and not _inside(entry.resolve(), root):
                rel = entry.relative_to(folder).as_posix()
                raise SourceForbidden(
                    f"source {shown!r}: {rel} is a symlink leading outside the sources root"
                )


def resolve_sources(root: Path | None, sources: Sequence[str], max_sources: int) -> list[Path]:
    """The real paths of ``sources`` under ``root``; raises 400/403 as described above."""
    if root is None:
        raise SourcesDisabled(
            "this server takes no source paths (TANDEM_SOURCES_ROOT is not set): upload the "
            "files as multipart/form-data instead"
        )
    if not sources:
        raise InvalidSource("give at least one source")
    if len(sources) > max_sources:
        raise InvalidSource(f"at most {max_sources} sources per job")
    try:
        real_root = Path(root).resolve(strict=True)
    except OSError as exc:
        raise InvalidSource(f"the sources root {root} does not exist") from exc
    out: list[Path] = []
    for source in sources:
        rel = _relative(source)
        real = (real_root / rel).resolve()
        if not _inside(real, real_root):
            raise SourceForbidden(f"source {source!r} leads outside the sources root")
        if not real.exists():
            raise InvalidSource(f"source {source!r} not found under the sources root")
        if real.is_dir():
            _check_tree(real, real_root, source)
        out.append(real)
    return out


def check_remove_sources(sources: Sequence[str], max_sources: int) -> list[str]:
    """Sources or document ids to remove: plain strings, checked for size and NUL bytes."""
    if not sources:
        raise InvalidSource("give at least one source to remove")
    if len(sources) > max_sources:
        raise InvalidSource(f"at most {max_sources} sources per job")
    for s in sources:
        if "\x00" in s or not s.strip():
            raise InvalidSource(f"invalid source {s!r}")
    return [s.strip() for s in sources]


def missing_from_index(data_dir: Path, index: str, names: Sequence[str]) -> list[str]:
    """The names of ``names`` that match no document of the index's current version (by doc id,
    source, or a folder of sources: the builder's rule); [] when the index has no version."""
    from stores.chunkstore import ChunkStore
    from stores.errors import IndexNotFound
    from stores.layout import IndexLayout

    layout = IndexLayout(data_dir, index)
    try:
        version = layout.current_version()
    except IndexNotFound:
        return []
    if version is None:
        return []
    store = ChunkStore(layout.version_dir(version) / "chunks.sqlite", readonly=True)
    try:
        docs = store.documents()
    finally:
        store.close()
    ids = {d.doc_id for d in docs}
    sources = {d.source for d in docs}
    missing = []
    for name in names:
        n = name.strip("/")
        if n in ids or n in sources or any(s.startswith(n + "/") for s in sources):
            continue
        missing.append(name)
    return missing


# -- uploads ---------------------------------------------------------------------------------
def upload_root(settings: Settings) -> Path:
    """Where uploads wait for their jobs: ``TANDEM_UPLOAD_DIR`` or ``<data_dir>/uploads``."""
    return Path(settings.upload_dir or Path(settings.data_dir) / "uploads")


def upload_folder(settings: Settings, job_id: str) -> Path:
    return upload_root(settings) / job_id


@dataclass
class UploadLimits:
    max_bytes: int
    max_files: int


@dataclass
class Upload:
    """What an upload brought: the files written and the other form fields."""

    folder: Path
    files: list[str] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)
    size: int = 0


def safe_filename(name: str | None) -> str:
    """The base name of an uploaded file, if it is one Tandem can read; else 400."""
    from indexers.loaders import SUPPORTED  # llama-index: imported on first use only

    base = unicodedata.normalize("NFC", (name or "").replace("\\", "/").rsplit("/", 1)[-1].strip())
    if not base or base in (".", "..") or base.startswith("."):
        raise InvalidSource(f"invalid file name {name!r}")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") for ch in base):
        raise InvalidSource(f"invalid file name {name!r}: control or invisible characters")
    if len(base.encode()) > 255:
        raise InvalidSource(f"file name too long: {base[:40]}...")
    if Path(base).suffix.lower() not in SUPPORTED:
        raise InvalidSource(
            f"{base}: unsupported file type; supported: {', '.join(sorted(SUPPORTED))}"
        )
    return base


async def receive_upload(
    chunks: AsyncIterator[bytes], boundary: str, folder: Path, limits: UploadLimits
) -> Upload:
    """Stream a ``multipart/form-data`` body into ``folder`` within ``limits``.

    Raises :class:`PayloadTooLarge` (413) past a limit and :class:`InvalidSource` (400) on a bad
    file name or a malformed body; the caller removes ``folder`` on error.
    """
    from multipart import ParserError, ParserLimitReached, PushMultipartParser

    upload = Upload(folder)
    await anyio.to_thread.run_sync(lambda: folder.mkdir(parents=True, exist_ok=False))
    received = 0
    handle = None
    field_name: str | None = None
    field_value = bytearray()
    seen: set[str] = set()
    try:
        with PushMultipartParser(
            boundary, max_segment_count=limits.max_files + len(FORM_FIELDS) + 1
        ) as parser:
            async for chunk in chunks:
                received += len(chunk)
                if received > limits.max_bytes + FRAMING_SLACK:
                    raise PayloadTooLarge(_too_large(limits))
                for event in parser.parse(chunk):
                    if event is None:  # end of a segment
                        if handle is not None:
                            await anyio.to_thread.run_sync(handle.close)
                            handle = None
                        elif field_name is not None:
                            upload.fields[field_name] = field_value.decode("utf-8", "replace")
                            field_name, field_value = None, bytearray()
                    elif isinstance(event, bytes | bytearray):
                        if handle is not None:
                            upload.size += len(event)
                            if upload.size > limits.max_bytes:
                                raise PayloadTooLarge(_too_large(limits))
                            await anyio.to_thread.run_sync(handle.write, event)
                        else:
                            field_value.extend(event)
                            if len(field_value) > MAX_FIELD_BYTES:
                                raise InvalidSource(f"form field {field_name!r} is too long")
                    elif event.filename is not None:
                        name = safe_filename(event.filename)
                        if name.casefold() in seen:
                            raise InvalidSource(
                                f"two files are named {name!r} (names are compared without "
                                "folders or case): rename one"
                            )
                        seen.add(name.casefold())
                        if len(upload.files) >= limits.max_files:
                            raise PayloadTooLarge(
                                f"too many files: at most {limits.max_files} per upload"
                            )
                        upload.files.append(name)
                        target = folder / name
                        handle = await anyio.to_thread.run_sync(target.open, "wb")
                    else:
                        if event.name not in FORM_FIELDS:
                            raise InvalidSource(
                                f"unknown form field {event.name!r}: send files, 'action' and "
                                "'options'"
                            )
                        field_name = event.name
    except ParserLimitReached as exc:
        raise PayloadTooLarge(f"too many parts: at most {limits.max_files} files") from exc
    except ParserError as exc:
        raise InvalidSource(f"malformed multipart/form-data body: {exc}") from exc
    finally:
        if handle is not None:
            with contextlib.suppress(OSError):
                handle.close()
    if not upload.files:
        raise InvalidSource("the upload carries no file")
    return upload


def _too_large(limits: UploadLimits) -> str:
    return f"upload too large: at most {limits.max_bytes} bytes of files per job"


def remove_folder(folder: Path | None) -> None:
    """Remove an upload folder (no error when it is already gone)."""
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)

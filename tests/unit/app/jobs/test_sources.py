"""Job sources: paths stay under the sources root; uploads are bounded and streamed to disk."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.errors import PayloadTooLarge
from app.jobs.errors import InvalidSource, SourceForbidden, SourcesDisabled
from app.jobs.progress import ProgressTracker
from app.jobs.sources import (
    UploadLimits,
    check_remove_sources,
    receive_upload,
    resolve_sources,
    safe_filename,
)

BOUNDARY = "tandemboundary42"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    base = tmp_path / "root"
    (base / "docs" / "sub").mkdir(parents=True)
    (base / "docs" / "a.md").write_text("# A\nalpha")
    (base / "docs" / "sub" / "b.txt").write_text("beta")
    (tmp_path / "secret.txt").write_text("do not index me")
    return base


def test_relative_paths_resolve_under_the_root(root: Path) -> None:
    got = resolve_sources(root, ["docs", "docs/sub/b.txt", "./docs/a.md"], 10)
    assert got == [
        (root / "docs").resolve(),
        (root / "docs/sub/b.txt").resolve(),
        (root / "docs/a.md").resolve(),
    ]


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("../secret.txt", SourceForbidden),
        ("docs/../../secret.txt", SourceForbidden),
        ("docs/..", SourceForbidden),
        ("/etc/passwd", InvalidSource),
        ("C:\\Windows", InvalidSource),
        ("~/notes", InvalidSource),
        ("nope.md", InvalidSource),
        ("docs\x00x", InvalidSource),
        ("  ", InvalidSource),
    ],
)
def test_paths_outside_the_root_are_refused(root: Path, source: str, error: type) -> None:
    with pytest.raises(error):
        resolve_sources(root, [source], 10)


def test_status_codes_are_400_and_403() -> None:
    assert InvalidSource.status == 400 and SourceForbidden.status == 403


def test_a_symlink_out_of_the_root_is_refused(root: Path, tmp_path: Path) -> None:
    os.symlink(tmp_path / "secret.txt", root / "docs" / "sub" / "leak.txt")
    with pytest.raises(SourceForbidden, match=r"leak\.txt"):
        resolve_sources(root, ["docs"], 10)
    os.symlink(tmp_path, root / "outside")
    with pytest.raises(SourceForbidden):
        resolve_sources(root, ["outside/secret.txt"], 10)


def test_a_symlink_inside_the_root_is_fine(root: Path) -> None:
    os.symlink(root / "docs" / "a.md", root / "docs" / "sub" / "again.md")
    assert resolve_sources(root, ["docs"], 10) == [(root / "docs").resolve()]


def test_no_root_no_paths_and_bounded_count(root: Path) -> None:
    with pytest.raises(SourcesDisabled):
        resolve_sources(None, ["docs"], 10)
    with pytest.raises(InvalidSource, match="at most 2"):
        resolve_sources(root, ["docs", "docs", "docs"], 2)
    assert check_remove_sources([" a.md ", "docs.jsonl#L3"], 5) == ["a.md", "docs.jsonl#L3"]
    with pytest.raises(InvalidSource):
        check_remove_sources([], 5)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("notes.md", "notes.md"), ("dir/sub/report.PDF", "report.PDF"), ("c:\\x\\y.txt", "y.txt")],
)
def test_upload_names_keep_the_base_name(name: str, expected: str) -> None:
    assert safe_filename(name) == expected


@pytest.mark.parametrize("name", ["", "..", ".hidden.md", "run.exe", "a/b/", None])
def test_bad_upload_names_are_refused(name: str | None) -> None:
    with pytest.raises(InvalidSource):
        safe_filename(name)


def multipart(files: dict[str, bytes], fields: dict[str, str] | None = None) -> bytes:
    out = bytearray()
    for key, value in (fields or {}).items():
        out += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n'.encode()
        out += value.encode() + b"\r\n"
    for name, data in files.items():
        out += (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; '
            f'filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        out += data + b"\r\n"
    out += f"--{BOUNDARY}--\r\n".encode()
    return bytes(out)


async def chunks(body: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for i in range(0, len(body), size):
        yield body[i : i + size]


async def test_an_upload_is_streamed_to_its_folder(tmp_path: Path) -> None:
    body = multipart(
        {"a.md": b"# A\n" + b"x" * 5000, "b.txt": b"bee"}, {"action": "add", "options": "{}"}
    )
    up = await receive_upload(chunks(body), BOUNDARY, tmp_path / "job", UploadLimits(10_000, 5))
    assert up.files == ["a.md", "b.txt"] and up.fields == {"action": "add", "options": "{}"}
    assert (tmp_path / "job" / "a.md").read_bytes() == b"# A\n" + b"x" * 5000
    assert (tmp_path / "job" / "b.txt").read_bytes() == b"bee"
    assert up.size == 5004 + 3


async def test_an_upload_over_the_byte_limit_is_refused(tmp_path: Path) -> None:
    body = multipart({"a.txt": b"y" * 3000, "b.txt": b"z" * 3000})
    with pytest.raises(PayloadTooLarge, match="at most 5000 bytes"):
        await receive_upload(chunks(body), BOUNDARY, tmp_path / "j", UploadLimits(5000, 5))


async def test_an_upload_over_the_file_count_is_refused(tmp_path: Path) -> None:
    body = multipart({f"f{i}.txt": b"t" for i in range(4)})
    with pytest.raises(PayloadTooLarge, match="at most 3 per upload"):
        await receive_upload(chunks(body), BOUNDARY, tmp_path / "j", UploadLimits(10_000, 3))


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (multipart({}, {"action": "build"}), "no file"),
        (multipart({"a.txt": b"1", "dir/a.txt": b"2"}), "two files"),
        (multipart({"a.txt": b"1"}, {"sources": "x"}), "unknown form field"),
        (multipart({"a.txt": b"1"})[:-20], "malformed"),
    ],
)
async def test_malformed_uploads_are_400(tmp_path: Path, body: bytes, match: str) -> None:
    with pytest.raises(InvalidSource, match=match):
        await receive_upload(chunks(body), BOUNDARY, tmp_path / "j", UploadLimits(10_000, 5))


def test_progress_tracker_estimates_the_time_left() -> None:
    now = [100.0]
    tracker = ProgressTracker(clock=lambda: now[0])
    tracker.update({"documents": 10, "chunks_total": 0, "chunks_done": 0})
    assert tracker.snapshot().eta_s is None
    tracker.update({"documents": 9, "chunks_total": 1000, "chunks_done": 0})
    now[0] = 104.0
    tracker.update({"documents": 9, "chunks_total": 1000, "chunks_done": 200})
    p = tracker.snapshot()
    assert (p.documents, p.chunks_total, p.chunks_done) == (9, 1000, 200)
    assert p.eta_s == pytest.approx(16.0)  # 200 chunks in 4 s: 800 more in 16 s
    # a pipelined build may report out of order: what is shown never goes back
    tracker.update({"chunks_total": 1000, "chunks_done": 150})
    assert tracker.snapshot().chunks_done == 200 and tracker.snapshot().documents == 9
    tracker.update({"chunks_total": 150, "chunks_done": 300})  # duplicates dropped
    assert (tracker.snapshot().chunks_total, tracker.snapshot().chunks_done) == (150, 150)
    assert tracker.snapshot().eta_s == 0.0
    tracker.update({"chunks_total": 1000})
    version = tracker.version
    tracker.finish()
    assert tracker.version > version and tracker.snapshot().eta_s == 0.0
    assert tracker.snapshot().chunks_done == 1000

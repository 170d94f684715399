"""Builds that never lose, corrupt or hide content (issue 13): real model, real stores."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from indexers.builder import BuildOptions, run_build
from indexers.errors import EmptyBuild, StrictBuildFailed
from retrievers.errors import UnknownFilterField
from retrievers.retriever import Retriever
from stores.layout import IndexLayout
from stores.snapshot import IndexSnapshot
from tests.serving import cli_env, tandem

ROWS = [
    {"text": "Solar panels cover the north roof of the depot.", "meta": {"site": "north"},
     "tags": ["solar", "roof"]},
    {"text": "Wind turbines are serviced every month by the crew.", "meta": {"site": "south"},
     "tags": ["wind"]},
    {"text": "The battery bank stores energy for two days.", "tags": ["storage"]},
]  # fmt: skip


def _write(path: Path, data: str | bytes, mtime: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8")
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def _docs(data_dir: Path, name: str) -> dict[str, str]:
    snap = IndexSnapshot.open(IndexLayout(data_dir, name))
    out: dict[str, str] = {}
    for c in snap.chunks.all_chunks():
        out[c.doc_id] = out.get(c.doc_id, "") + c.text
    snap.close()
    return out


def test_encodings_jsonl_lines_filters_and_a_bad_rebuild(tmp_path: Path) -> None:
    src, data = tmp_path / "src", tmp_path / "data"
    _write(src / "gare.txt", "Le café de la gare ouvre à sept heures.".encode("cp1252"))
    _write(src / "unicode.txt", "Horaires\n\nLa boulangerie ferme à midi.".encode("utf-16"))
    _write(src / "rows.jsonl", b"\xef\xbb\xbf" + "\n".join(map(json.dumps, ROWS)).encode())
    first = run_build(data, "t", [src])
    assert (first.documents, first.failed) == (5, 0)
    r = Retriever(data, "t")
    assert r.search("café", mode="bm25", top_k=1).hits[0].doc_id == "gare.txt"
    assert "café" in r.search("café", mode="bm25", top_k=1).hits[0].text
    assert r.search("boulangerie", mode="bm25", top_k=1).hits[0].doc_id == "unicode.txt"
    hits = r.search("energy", filters={"tags": "solar"}).hits
    assert {h.doc_id for h in hits} == {"rows.jsonl#L1"}
    assert {h.doc_id for h in r.search("roof", filters={"meta.site": "south"}).hits} == {
        "rows.jsonl#L2"
    }
    with pytest.raises(UnknownFilterField, match="'topic'") as info:
        r.search("roof", filters={"topic": "solar"})
    assert (info.value.status, info.value.exit_code) == (400, 2)
    r.close()

    # A row without text appears, and gare.txt turns into bytes nothing can decode.
    _write(src / "rows.jsonl", "\n".join(map(json.dumps, [*ROWS, {"title": "x"}])))
    _write(src / "gare.txt", bytes(range(128, 256)) * 8)
    second = run_build(data, "t", [src])
    report = second.as_dict()
    assert second.documents == 5 and second.removed == 0
    assert report["failed_files"][0]["source"] in ("gare.txt", "rows.jsonl#L4")
    assert {f["source"] for f in report["failed_files"]} == {"gare.txt", "rows.jsonl#L4"}
    assert report["kept_files"][0]["source"] == "gare.txt"
    assert "café" in _docs(data, "t")["gare.txt"]
    manifest = IndexLayout(data, "t").manifest()
    assert manifest["counts"]["kept"] == 1 and manifest["bm25"]["analyzer"]
    with pytest.raises(StrictBuildFailed):
        run_build(data, "t", [src], options=BuildOptions(strict=True))
    assert IndexLayout(data, "t").current_version() == 2


def test_zero_documents_never_publish(tmp_path: Path) -> None:
    src, data = tmp_path / "scans", tmp_path / "data"
    _write(src / "blank.pdf", b"")
    _write(src / "logo.bin", b"\x00\x01\x02" * 100)
    with pytest.raises(EmptyBuild, match="no documents") as info:
        run_build(data, "s", [src])
    assert info.value.exit_code == 1 and "empty file" in info.value.message
    assert not IndexLayout(data, "s").exists()
    proc = subprocess.run(
        tandem("--data-dir", str(data), "index", "rm", "nope"),
        env=cli_env(),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1 and "not found" in proc.stderr


def test_add_replaces_the_same_document_and_versions_prefer_the_newest(tmp_path: Path) -> None:
    src, data = tmp_path / "dir", tmp_path / "data"
    old = time.time() - 86400
    _write(src / "policies/refunds.md", "# Refunds\n\nRefunds are paid within 30 days.", old)
    _write(
        src / "policy-2023.md",
        "Customers may return unused items within 30 days of delivery for a full refund "
        "of the price paid, shipping excluded.",
        old,
    )
    _write(
        src / "policy-2024.md",
        "Customers may return unused items within 14 days of delivery for a full refund "
        "of the price paid, shipping excluded.",
    )
    _write(src / "archive/wifi.md", "The guest wifi password is orange-kettle-42.", old)
    _write(src / "wifi.md", "The guest wifi password is orange-kettle-42.")
    res = run_build(data, "p", [src])
    merged = res.as_dict()["merged_files"]
    assert merged == [
        {"source": "archive/wifi.md", "reason": "identical content", "kept": "wifi.md"}
    ]
    r = Retriever(data, "p")
    hit = r.search("how many days to return unused items for a refund", top_k=1).hits[0]
    assert hit.source == "policy-2024.md" and "14 days" in hit.text
    assert {"policy-2023.md", "policy-2024.md"} <= set(_docs(data, "p"))  # nothing dropped
    wifi = r.search("guest wifi password", top_k=1).hits[0]
    assert wifi.source == "wifi.md"
    assert r.search("refunds paid", top_k=1).hits[0].metadata.get("section") == "Refunds"
    r.close()

    _write(src / "policies/refunds.md", "# Refunds\n\nRefunds are paid within 10 days.")
    run_build(data, "p", [src / "policies/refunds.md"], action="add")
    docs = _docs(data, "p")
    assert "refunds.md" not in docs and "10 days" in docs["policies/refunds.md"]

    (src / "wifi.md").unlink()
    run_build(data, "p", ["wifi.md"], action="remove")
    assert "orange-kettle-42" in _docs(data, "p")["archive/wifi.md"]


def test_rebuilding_an_unchanged_tree_reports_the_same_counts(tmp_path: Path) -> None:
    """A held copy is not "removed", and a document with one duplicated chunk keeps counting
    it: the second build of the same files reports what the first did."""
    src, data = tmp_path / "src", tmp_path / "data"
    shared = "The guest wifi password is orange-kettle-42 and it changes every spring."
    _write(src / "wifi.md", shared)
    _write(src / "archive/wifi.md", shared, time.time() - 86400)
    # one chunk per section: the second document repeats the first one's text in full
    _write(
        src / "handbook.md",
        "# Wifi\n\n" + shared + "\n\n# Parking\n\nVisitors park behind the depot after six.",
    )
    counts = []
    for _ in range(2):
        res = run_build(data, "u", [src])
        counts.append(
            (res.documents, res.removed, res.duplicates, len(res.as_dict()["merged_files"]))
        )
    assert counts[0] == counts[1], counts
    assert counts[0][1] == 0 and counts[0][2] >= 1 and counts[0][3] >= 1


def test_cli_build_reports_everything_in_json(tmp_path: Path) -> None:
    src, data = tmp_path / "docs", tmp_path / "data"
    _write(src / "README", "Tandem\n\nRun make demo to try it out today.\n")
    _write(src / "NEWS", "Version 2 adds OCR for scanned PDFs.\n")
    _write(src / "image.png", b"\x89PNG\r\n\x1a\n\x00\x00" * 50)
    proc = subprocess.run(
        tandem("--json", "--data-dir", str(data), "index", "build", "d", str(src)),
        env=cli_env(),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["documents"] == 2 and out["failed"] == 0 and out["skipped"] == 1
    assert out["skipped_files"][0]["source"] == "image.png"
    for key in ("index", "version", "chunks", "embedded", "reused", "removed", "duplicates"):
        assert key in out
    strict = subprocess.run(
        tandem("--data-dir", str(data), "index", "build", "d", str(src), "--strict"),
        env=cli_env(),
        capture_output=True,
        text=True,
    )
    assert strict.returncode == 1 and "image.png" in strict.stderr


def test_removing_a_source_the_index_lacks_exits_1_like_the_api_404(tmp_path: Path) -> None:
    from app.cli import main

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("The reading room closes at eight.\n", encoding="utf-8")
    data = str(tmp_path / "data")
    try:
        main(["--data-dir", data, "index", "build", "idx", str(docs)])
    except SystemExit as exc:  # a clean exit is fine; a failure is not
        assert exc.code in (0, None)
    with pytest.raises(SystemExit) as removed:
        main(["--data-dir", data, "index", "remove", "idx", "nosuch.md"])
    assert removed.value.code == 1

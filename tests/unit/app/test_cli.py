"""The CLI contract: --json keys, exit codes, one-line errors, kill safety, its layout."""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import app.cli.root as cli_root
from app.cli import main
from core.errors import NotConfigured
from indexers.builder import run_build

APP = Path(__file__).resolve().parents[3] / "app"

BUILD_KEYS = {
    "index",
    "version",
    "documents",
    "chunks",
    "embedded",
    "reused",
    "removed",
    "duplicates",
    "failed",
    "seconds",
}
HIT_KEYS = {"rank", "score", "text", "source", "doc_id", "chunk_id", "metadata"}


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_build_search_show_list_rm_json(
    capsys: pytest.CaptureFixture[str], corpus: Path, data_dir: Path
) -> None:
    d = ["--json", "--data-dir", str(data_dir)]
    code, out, _ = run(capsys, *d, "index", "build", "demo", str(corpus))
    assert code == 0
    built = json.loads(out)
    assert set(built) >= BUILD_KEYS  # the documented keys stay; reports are added beside them
    assert built["version"] == 1 and built["documents"] == 7
    code, out, _ = run(capsys, *d, "search", "demo", "Who discovered penicillin?", "--top-k", "2")
    res = json.loads(out)
    assert {"index", "version", "hits", "timings_ms"} <= set(res)
    assert set(res["hits"][0]) == HIT_KEYS and res["hits"][0]["source"] == "briefs.jsonl"
    code, out, _ = run(
        capsys, *d, "search", "demo", "tea", "--filter", "topic=food", "--mode", "bm25"
    )
    assert [h["doc_id"] for h in json.loads(out)["hits"]] == ["briefs.jsonl#L1"]
    code, out, _ = run(capsys, *d, "index", "show", "demo")
    assert json.loads(out)["version"] == 1
    code, out, _ = run(capsys, *d, "index", "list")
    assert [r["index"] for r in json.loads(out)["indexes"]] == ["demo"]
    queries = data_dir.parent / "q.jsonl"
    queries.write_text('{"id": "a", "query": "moon landing"}\n{"id": "b", "query": "tea"}\n')
    code, out, _ = run(capsys, *d, "search", "demo", "--queries", str(queries), "--top-k", "1")
    lines = [json.loads(line) for line in out.splitlines()]
    assert [r["id"] for r in lines] == ["a", "b"]
    assert lines[0]["hits"][0]["doc_id"] == "space/moon.md"
    code, out, _ = run(capsys, *d, "index", "add", "demo", str(corpus / "bees.txt"))
    assert json.loads(out)["embedded"] == 0
    code, out, _ = run(capsys, *d, "index", "remove", "demo", "bees.txt")
    assert json.loads(out)["removed"] == 1
    code, out, _ = run(capsys, *d, "index", "rm", "demo")
    assert code == 0
    code, _, err = run(capsys, *d, "search", "demo", "x")
    assert code == 1 and err.count("\n") == 1 and "not found" in err


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["index", "build", "x", "/nonexistent/path"], 2, "path not found"),
        (["search", "nope", "query"], 1, "index 'nope' not found"),
        (["search", "nope"], 2, "give either QUERY or --queries"),
        (["search", "nope", "q", "--filter", "novalue"], 2, "key=value"),
        (["search", "nope", "q", "--filter", "topic="], 2, "empty value"),
        (["search", "nope", "q", "--filter", " =x"], 2, "key=value"),
        (["ask", "nope", "q", "--filter", "topic=  "], 2, "empty value"),
        (["index", "build", "bad/name", "."], 2, "invalid index name"),
        (["index", "frobnicate"], 2, "No such command"),
        (["search", "x", "q", "--top-k", "0"], 2, "top-k"),
        (["index", "build", "x", ".", "--store", "mongo"], 2, "unknown store"),
        (["index", "build", "x", ".", "--model", "no/such-model"], 1, "no/such-model"),
    ],
)
def test_bad_input_gives_one_line_and_exit_code(
    capsys: pytest.CaptureFixture[str], data_dir: Path, args: list[str], code: int, message: str
) -> None:
    got, _out, err = run(capsys, "--data-dir", str(data_dir), *args)
    assert got == code
    assert message in err
    assert "Traceback" not in err and err.strip().count("\n") == 0


def test_killed_build_leaves_previous_version_serving(
    corpus: Path, data_dir: Path, tmp_path: Path
) -> None:
    run_build(data_dir, "k", [corpus])
    big = tmp_path / "big"
    big.mkdir()
    for i in range(60):
        (big / f"doc{i}.txt").write_text(
            " ".join(f"Document {i} sentence {j} mentions river number {i * j}." for j in range(40))
        )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app.cli",
            "--data-dir",
            str(data_dir),
            "index",
            "build",
            "k",
            str(big),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    root = data_dir / "indexes" / "k"
    deadline = time.time() + 300
    while time.time() < deadline and not list(root.glob(".build-*")) and proc.poll() is None:
        time.sleep(0.1)
    assert list(root.glob(".build-*")), "the build never started writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (root / "current").read_text().strip() == "v1"
    from retrievers.retriever import Retriever

    r = Retriever(data_dir, "k")
    assert r.version == 1
    assert r.search("Apollo 11 Moon", top_k=1).hits[0].doc_id == "space/moon.md"
    # The next build clears the half-written staging folder and publishes v2.
    res = run_build(data_dir, "k", [corpus])
    assert res.version == 2 and not list(root.glob(".build-*"))


# -- layout: one package, an explicit list of groups, plugins, one error mapper ------------------
def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports (``from a import b`` gives ``a`` and ``a.b``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def test_every_command_comes_from_the_explicit_group_list() -> None:
    import typer

    names = set(typer.main.get_command(cli_root.cli).commands)  # type: ignore[attr-defined]
    assert {m.__name__.rsplit(".", 1)[1] for m in cli_root.GROUPS} == names - {"bench"}
    assert names == {
        *("index", "search", "serve", "ask", "worker", "reranker", "reader", "checker", "mcp"),
        "bench",
    }


def test_the_product_never_imports_bench_and_commands_never_import_the_root() -> None:
    for path in APP.rglob("*.py"):
        imported = _imports(path)
        assert not {n for n in imported if n == "bench" or n.startswith("bench.")}, path
        if path.parent.name == "cli" and path.name not in ("__init__.py", "__main__.py", "root.py"):
            assert not {"app.cli", "app.cli.root"} & imported, f"{path} imports the CLI root"


def test_only_the_mapper_catches_tandem_errors() -> None:
    for path in (APP / "cli").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "fail(" not in text, path
        if path.name != "common.py":
            assert "except TandemError" not in text, path


class _EntryPoint:
    def __init__(self, name: str, module: str, error: BaseException | None = None) -> None:
        self.name, self.module, self.error = name, module, error
        self.registered: list[object] = []

    def load(self) -> object:
        if self.error is not None:
            raise self.error
        return self.registered.append


def test_plugins_missing_modules_are_skipped_other_errors_propagate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gone = _EntryPoint("gone", "nobench.cli", ModuleNotFoundError("x", name="nobench"))
    also_gone = _EntryPoint("also", "bench.cli", ModuleNotFoundError("x", name="bench.cli"))
    ok = _EntryPoint("ok", "fine.cli")
    eps = [gone, also_gone, ok]
    monkeypatch.setattr(cli_root, "entry_points", lambda group: eps)
    target = object()
    cli_root.register_plugins(target)  # type: ignore[arg-type]
    assert ok.registered == [target]
    broken = _EntryPoint("broken", "fine.cli", ModuleNotFoundError("x", name="matplotlib"))
    monkeypatch.setattr(cli_root, "entry_points", lambda group: [broken])
    with pytest.raises(ModuleNotFoundError):
        cli_root.register_plugins(target)  # type: ignore[arg-type]
    bad = _EntryPoint("bad", "fine.cli", ImportError("cannot import name"))
    monkeypatch.setattr(cli_root, "entry_points", lambda group: [bad])
    with pytest.raises(ImportError):
        cli_root.register_plugins(target)  # type: ignore[arg-type]


def test_the_mapper_prints_one_line_with_the_errors_exit_code(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, data_dir: Path
) -> None:
    def boom(*_args: object, **_kwargs: object) -> None:
        raise NotConfigured("nothing configured here")

    monkeypatch.setattr("stores.layout.list_indexes", boom)
    code, out, err = run(capsys, "--data-dir", str(data_dir), "index", "list")
    assert (code, out, err) == (1, "", "error: nothing configured here\n")


def test_a_low_confidence_answer_says_so() -> None:
    from app.cli.ask import format_answer

    base = {"served_by": "small", "reason": "requested", "answer": "Melvin Calvin [1]"}
    low = format_answer({**base, "confidence": 0.04, "extract": {"found": True}})
    assert "low confidence: check the sources" in low.splitlines()[0]
    high = format_answer({**base, "confidence": 0.9, "extract": {"found": True}})
    assert "low confidence" not in high
    none = format_answer({**base, "confidence": 0.0, "extract": {"found": False}})
    assert "low confidence" not in none

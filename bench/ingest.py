"""Ingestion throughput: documents/s and PDF pages/s of ``run_build`` on a generated corpus.

The corpus mixes the supported formats (UTF-8 and cp1252 text, Markdown, HTML, JSON lines,
CSV, multi-page PDFs, Chinese text). ``--before`` also builds the same corpus with the
committed code (``git archive HEAD`` unpacked in a temporary folder, run by this interpreter
in a subprocess), so the two figures compare the same input on the same machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TOPICS = ("harbour", "library", "orchard", "railway", "observatory", "bakery", "glacier")


def _sentence(i: int, j: int) -> str:
    t = TOPICS[(i + j) % len(TOPICS)]
    return f"The {t} record {i}-{j} notes that visitors arrive at {7 + j % 5} o'clock on day {i}."


def make_corpus(folder: Path, docs: int = 120, pdfs: int = 12, pages: int = 3) -> dict[str, int]:
    """Write the corpus; returns ``{"files": n, "pdf_pages": m}``."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    folder.mkdir(parents=True, exist_ok=True)
    files = 0
    for i in range(docs):
        body = " ".join(_sentence(i, j) for j in range(12))
        kind = i % 6
        if kind == 0:
            (folder / f"note{i}.txt").write_text(body)
        elif kind == 1:
            (folder / f"page{i}.md").write_text(f"# Section {i}\n\n{body}\n\n## More\n\n{body}")
        elif kind == 2:
            html = f"<html><head><title>T{i}</title></head><body><nav>Home</nav><main>"
            html += "".join(f"<p>{_sentence(i, j)}</p>" for j in range(12)) + "</main></body>"
            (folder / f"web{i}.html").write_text(html)
        elif kind == 3:
            rows = [{"text": _sentence(i, j), "meta": {"n": j}} for j in range(5)]
            (folder / f"rows{i}.jsonl").write_text("\n".join(map(json.dumps, rows)))
        elif kind == 4:
            (folder / f"latin{i}.txt").write_bytes(("Café à l'heure. " + body).encode("cp1252"))
        else:
            (folder / f"zh{i}.txt").write_text("龙井茶产自杭州西湖，" * 10 + body)
        files += 1
    for i in range(pdfs):
        c = canvas.Canvas(str(folder / f"doc{i}.pdf"), pagesize=A4)
        for p in range(pages):
            y = 800
            for j in range(20):
                c.drawString(40, y, _sentence(i * 100 + p, j))
                y -= 16
            c.showPage()
        c.save()
        files += 1
    return {"files": files, "pdf_pages": pdfs * pages}


_RUN = """
import json, sys, time
from indexers.builder import run_build
t = time.perf_counter()
r = run_build(sys.argv[1], "bench", [sys.argv[2]])
print(json.dumps({"seconds": time.perf_counter() - t, "documents": r.documents,
                  "chunks": r.chunks, "failed": r.failed}))
"""


def _build_in(code_root: Path, data: Path, corpus: Path) -> dict[str, Any]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env["PYTHONPATH"] = str(code_root)
    out = subprocess.run(
        [sys.executable, "-c", _RUN, str(data), str(corpus)],
        cwd=code_root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def run_ingest(docs: int = 120, pdfs: int = 12, pages: int = 3, before: bool = True) -> dict:
    """Throughput after (this checkout) and, with ``before``, of the committed code."""
    with tempfile.TemporaryDirectory(prefix="tandem-ingest-") as tmp:
        root = Path(tmp)
        corpus = root / "corpus"
        sizes = make_corpus(corpus, docs, pdfs, pages)
        # PDF pages/s: the same PDFs alone, so the figure is about PDFs.
        pdf_only = root / "pdfs"
        pdf_only.mkdir()
        for f in corpus.glob("*.pdf"):
            (pdf_only / f.name).write_bytes(f.read_bytes())
        result: dict[str, Any] = {"corpus": sizes}
        variants = {"after": REPO}
        if before:
            head = root / "head"
            head.mkdir()
            archive = subprocess.run(
                ["git", "-C", str(REPO), "archive", "HEAD"], capture_output=True, check=True
            ).stdout
            subprocess.run(["tar", "-x", "-C", str(head)], input=archive, check=True)
            variants = {"before": head, "after": REPO}
        for label, code in variants.items():
            t = time.perf_counter()
            mixed = _build_in(code, root / f"data-{label}", corpus)
            pdf = _build_in(code, root / f"pdf-{label}", pdf_only)
            result[label] = {
                "documents": mixed["documents"],
                "chunks": mixed["chunks"],
                "failed": mixed["failed"],
                "seconds": round(mixed["seconds"], 2),
                "documents_per_s": round(sizes["files"] / mixed["seconds"], 1),
                "pdf_pages_per_s": round(sizes["pdf_pages"] / pdf["seconds"], 1),
                "wall_s": round(time.perf_counter() - t, 1),
            }
        if before:
            b, a = result["before"], result["after"]
            result["slowdown_pct"] = round(
                100 * (b["documents_per_s"] / a["documents_per_s"] - 1), 1
            )
        return result

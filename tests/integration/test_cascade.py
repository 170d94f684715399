"""``tandem bench cascade`` end to end against a real OpenAI-compatible server on 127.0.0.1
(``fake_llm``): the oracle table, its reuse, and the figures of ``--json``."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from fake_llm import FakeLLM

from tests.serving import REPO, cli_env, tandem

ARTICLES = {
    "Apollo": [
        ("Apollo 11 landed on the Moon on 20 July 1969. Neil Armstrong stepped out first.",
         [("When did Apollo 11 land on the Moon?", "20 July 1969"),
          ("Who stepped out first?", "Neil Armstrong")]),
    ],
    "Printing": [
        ("Johannes Gutenberg developed a printing press with movable metal type around 1440.",
         [("Who developed the printing press with movable type?", "Johannes Gutenberg"),
          ("Around what year was the movable-type press developed?", "1440")]),
    ],
    "Bees": [
        ("Honeybees communicate the location of flowers with the waggle dance.",
         [("How do honeybees communicate where flowers are?", "the waggle dance")]),
    ],
    "Tea": [
        ("Tea was first drunk in China and reached Europe with Dutch traders.",
         [("Who brought tea to Europe?", "Dutch traders")]),
    ],
}  # fmt: skip


def squad_file(path: Path) -> Path:
    data = []
    n = 0
    for title, paragraphs in ARTICLES.items():
        paras = []
        for context, qas in paragraphs:
            items = []
            for question, answer in qas:
                n += 1
                start = context.index(answer)
                items.append(
                    {"id": f"q{n}", "question": question,
                     "answers": [{"text": answer, "answer_start": start}]}
                )  # fmt: skip
            paras.append({"context": context, "qas": items})
        data.append({"title": title, "paragraphs": paras})
    path.write_text(json.dumps({"version": "1.1", "data": data}))
    return path


def run(*args: str, checker: str = "none") -> dict:
    env = cli_env(TANDEM_READER="none", TANDEM_CHECKER=checker, TANDEM_LLM_RETRIES="0")
    proc = subprocess.run(
        tandem("--json", "bench", "cascade", *args),
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_cascade_builds_a_table_reuses_it_and_reports(tmp_path: Path) -> None:
    squad = squad_file(tmp_path / "tiny.json")
    table = tmp_path / "table.jsonl"
    with FakeLLM(answer="Apollo 11 landed on 20 July 1969 [1].") as llm:
        out = run(
            "--squad", str(squad), "--llm-url", llm.url, "--llm-model", "fake-llm",
            "--max-questions", "6", "--table", str(table),
        )  # fmt: skip
        asked = len(llm.requests)
        assert asked == 6  # one LLM answer per question (small mode asks no LLM)
        for key in ("n", "table", "always_small", "always_llm", "random", "auto", "apgr",
                    "llm_share_for_95"):  # fmt: skip
            assert key in out
        assert out["n"] == 6 and out["table"] == str(table)
        for key in ("always_small", "always_llm", "random"):
            assert set(out[key]) >= {"f1", "cost_s"}
        assert set(out["auto"]) >= {"threshold", "f1", "cost_s", "llm_share"}
        rows = [json.loads(line) for line in table.read_text().splitlines()]
        assert len(rows) == 6
        apollo = next(r for r in rows if r["question"].startswith("When did Apollo"))
        assert apollo["llm"]["right"] and apollo["llm"]["f1"] == 0.6  # a sentence holding it
        assert apollo["llm"]["prompt_tokens"] > 0 and apollo["llm"]["wall_s"] > 0
        assert apollo["llm"]["messages"][-1]["content"].endswith(apollo["question"])
        others = [r for r in rows if r is not apollo]
        assert all(not r["llm"]["right"] for r in others if "1969" not in r["golds"][0])
        # The always-LLM F1 is what the table says, and the chart was drawn.
        mean = sum(r["llm"]["f1"] for r in rows) / 6
        assert abs(out["all"]["always_llm"]["f1"] - round(mean, 4)) < 1e-4
        assert Path(out["chart"]).read_bytes()[:4] == b"\x89PNG"
        # A second run over the same table answers nothing again.
        again = run(
            "--squad", str(squad), "--llm-url", llm.url, "--max-questions", "6",
            "--table", str(table),
        )  # fmt: skip
        assert len(llm.requests) == asked
        assert again["all"] == out["all"]
    # --refresh with a checker now configured: the LLM answers are kept (no LLM at all) and
    # checked, the small side answered again.
    assert all(r["llm"]["check_score"] is None for r in rows)
    refreshed = run(
        "--squad", str(squad), "--max-questions", "6", "--table", str(table), "--refresh",
        checker=str(tiny_checker(tmp_path)),
    )  # fmt: skip
    rows2 = [json.loads(line) for line in table.read_text().splitlines()]
    assert [r["llm"]["answer"] for r in rows2] == [r["llm"]["answer"] for r in rows]
    assert all(0.0 <= r["llm"]["check_score"] <= 1.0 for r in rows2)
    assert all(r["llm"]["ce_score"] is not None for r in rows2)
    assert refreshed["checker"]["answers"] == 6 and refreshed["checker"]["check_auc"] is not None


def tiny_checker(tmp_path: Path) -> Path:
    """A real cross-encoder checker folder (MiniLM with an untrained one-logit head)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from smallmodels.spec import DEFAULT_EMBEDDER, resolve

    base = resolve(DEFAULT_EMBEDDER, DEFAULT_EMBEDDER).path
    out = tmp_path / "checker-tiny"
    AutoModelForSequenceClassification.from_pretrained(base, num_labels=1).save_pretrained(out)
    AutoTokenizer.from_pretrained(base).save_pretrained(out)
    return out

"""``tandem bench retrieval`` end to end on a tiny SQuAD-format file: every method, every set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import main

PARAGRAPHS = {
    "bees": "Honeybees tell each other where flowers are with the waggle dance inside the hive.",
    "apollo": "Apollo 11 landed on the Moon on 20 July 1969 with Neil Armstrong and Buzz Aldrin.",
    "press": "Johannes Gutenberg built a printing press with movable metal type in Mainz.",
    "tea": "Tea was first drunk in China and reached Europe with Dutch traders.",
    "volcano": "A volcano erupts when magma rises through the crust and escapes at the surface.",
    "bread": "Sourdough bread rises because wild yeast and bacteria ferment the dough.",
}
QUESTIONS = {
    "bees": "How do honeybees tell each other where flowers are?",
    "apollo": "When did Apollo 11 land on the Moon?",
    "press": "Where did Gutenberg build his printing press?",
    "tea": "Who brought tea to Europe?",
    "volcano": "Why does a volcano erupt?",
    "bread": "What makes sourdough bread rise?",
}


def _squad(path: Path, prefix: str) -> Path:
    data = [
        {
            "title": key,
            "paragraphs": [
                {
                    "context": text,
                    "qas": [{"id": f"{prefix}-{key}", "question": QUESTIONS[key], "answers": []}],
                }
            ],
        }
        for key, text in PARAGRAPHS.items()
    ]
    path.write_text(json.dumps({"version": "1.1", "data": data}), encoding="utf-8")
    return path


@pytest.mark.slow
def test_bench_retrieval_reports_every_method_per_set_and_the_mean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _squad(tmp_path / "a.json", "a")
    b = _squad(tmp_path / "b.json", "b")
    try:
        main(["--json", "bench", "retrieval", "--squad", str(a), "--squad", str(b)])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    out = json.loads(captured.out)
    sets = out["sets"]
    assert "hybrid" in json.dumps(out["mean"])
    assert [s["set"] for s in sets] == ["a.json", "b.json"]
    for s in sets:
        assert set(s["methods"]) >= {"bm25", "dense", "hybrid", "hybrid-rrf"}
        for method, figures in s["methods"].items():
            assert 0.0 <= figures["ndcg@10"] <= 1.0, method
        # Six easy questions over six paragraphs: every method finds nearly all of them first.
        assert s["methods"]["hybrid"]["ndcg@10"] > 0.9
        assert s["methods"]["hybrid-rrf"]["ndcg@10"] > 0.9
        assert s["build"]["chunks"] == len(PARAGRAPHS)

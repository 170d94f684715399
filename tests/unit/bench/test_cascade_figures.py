"""The cascade's figures from an oracle table: routing, baselines, APGR, threshold, policies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.cascade import (
    TABLE_VERSION,
    analyse,
    apgr,
    baseline,
    bootstrap,
    chart,
    choose_threshold,
    llm_share_for,
    policy_figures,
    random_router,
    read_table,
    route_figures,
    served_prediction,
    share_curve,
)


def row(
    i: int,
    conf: float,
    small_f1: float,
    llm_f1: float,
    *,
    found: bool = True,
    check: float | None = 0.9,
    title: str | None = None,
    llm_answer: str | None = None,
    sentences: list[list[Any]] | None = None,
) -> dict[str, Any]:
    answer = llm_answer or ("gold [1]." if llm_f1 else "something else [1].")
    return {
        "v": TABLE_VERSION,
        "id": f"q{i}",
        "title": title or f"article {i}",
        "question": f"question {i}?",
        "golds": ["gold"],
        "passages": ["gold is here."],
        "small": {
            "answer": "gold [1]" if small_f1 else "other [1]",
            "span": ("gold" if small_f1 else "other") if found else "",
            "found": found,
            "confidence": conf,
            "f1": small_f1,
            "em": small_f1,
            "right": bool(small_f1),
            "wall_s": 0.1,
            "cpu_s": 0.1,
        },
        "llm": {
            "answer": answer,
            "served_by": "llm",
            "reason": "requested",
            "model": "m",
            "abstained": False,
            "f1": llm_f1,
            "em": llm_f1,
            "right": bool(llm_f1),
            "wall_s": 2.0,
            "check_s": 0.1,
            "prompt_tokens": 100 + 10 * i,
            "completion_tokens": 10,
            "check_score": check,
            "ce_score": check,
            "blend_score": check,
            "reader_score": None,
            "sentences": sentences or [[answer, check if check is not None else 1.0]],
        },
    }


@pytest.fixture
def rows() -> list[dict[str, Any]]:
    # Low confidence: the small answer is wrong and the LLM right; high: the reverse.
    out = [row(i, 0.1 * i, 0.0, 1.0) for i in range(5)]
    out += [row(i, 0.1 * i, 1.0, 0.0, check=0.2) for i in range(5, 10)]
    return out


def test_baselines_and_routing(rows: list[dict[str, Any]]) -> None:
    assert baseline(rows, "small") == {"f1": 0.5, "em": 0.5, "right": 0.5, "cost_s": 0.1}
    assert baseline(rows, "llm")["f1"] == 0.5
    assert baseline(rows, "llm")["cost_s"] == pytest.approx(2.1)
    # Threshold 0.5: the five low-confidence questions go to the LLM, all right.
    auto = route_figures(rows, 0.5)
    assert auto["f1"] == 1.0 and auto["llm_share"] == 0.5
    assert auto["cost_s"] == pytest.approx(0.1 + 0.5 * 2.1)
    # The random router at the same share does no better than the mix.
    assert random_router(rows, 0.5)["f1"] == 0.5
    assert choose_threshold(rows) == pytest.approx(0.4001, abs=1e-3)


def test_apgr_and_share_for_95() -> None:
    # The LLM is better: a perfect router recovers everything early, APGR > 0.5.
    rows = [row(i, 0.1 * i, 0.0, 1.0) for i in range(4)] + [
        row(i, 0.1 * i, 1.0, 1.0) for i in range(4, 10)
    ]
    curve = share_curve(rows)
    assert curve[0] == (0.0, 0.6) and curve[-1] == (1.0, 1.0)
    a = apgr(rows)
    assert a is not None and 0.7 < a <= 1.0
    assert llm_share_for(rows, 0.95) == pytest.approx(0.4)
    # The reverse ranking (the router escalates the questions the LLM cannot help): lower.
    flipped = [row(i, 1 - 0.1 * i, 0.0, 1.0) for i in range(4)] + [
        row(i, 1 - 0.1 * i, 1.0, 1.0) for i in range(4, 10)
    ]
    b = apgr(flipped)
    assert b is not None and b < a


def test_apgr_is_none_when_the_small_answer_wins() -> None:
    rows = [row(i, 0.5, 1.0, 0.0) for i in range(6)]
    assert apgr(rows) is None
    assert llm_share_for(rows, 0.95) == 0.0


def test_abstentions_are_escalated_first() -> None:
    rows = [row(0, 0.9, 0.0, 1.0, found=False), row(1, 0.1, 1.0, 0.0)]
    assert share_curve(rows)[1] == (0.5, 1.0)


def test_bootstrap_intervals_hold_the_point(rows: list[dict[str, Any]]) -> None:
    ci = bootstrap(rows, 0.5, 0.5, n=200)
    assert ci["auto"][0] <= 1.0 <= ci["auto"][1]
    assert ci["always_small"][0] < 0.5 < ci["always_small"][1]
    assert ci["auto_minus_random"][0] > 0


def test_policies() -> None:
    two = [["gold is right [1].", 0.9], ["and invented [2].", 0.1]]
    r = row(0, 0.0, 1.0, 0.5, check=0.1, llm_answer="gold is right [1]. and invented [2].")
    r["llm"]["sentences"] = two
    assert served_prediction(r, True, "flag", 0.5)[0].startswith("gold is right. and invented")
    assert served_prediction(r, True, "drop", 0.5) == ("gold is right.", False)
    assert served_prediction(r, True, "fallback", 0.5) == ("gold", True)
    assert served_prediction(r, False, "fallback", 0.5) == ("gold", False)
    wrong = row(1, 0.0, 1.0, 0.0, check=0.2)
    figures = policy_figures([wrong], 0.5, 0.5)
    assert figures["always_llm/flag"]["wrong_served"] == 1
    assert figures["always_llm/fallback"] == {
        "f1": 1.0, "served": 1, "wrong_served": 0, "small_instead": 1,
    }  # fmt: skip


def test_analyse_and_chart(rows: list[dict[str, Any]], tmp_path: Path) -> None:
    result = analyse(rows)
    for key in ("n", "always_small", "always_llm", "random", "auto", "apgr", "llm_share_for_95"):
        assert key in result
    assert set(result["auto"]) >= {"threshold", "f1", "cost_s", "llm_share"}
    assert result["n"] == 10 and result["n_cal"] + result["n_test"] == 10
    assert result["checker"]["answers"] == 10
    # The checker scores right LLM answers 0.9 and wrong ones 0.2: perfect separation.
    assert result["checker"]["check_auc"] == 1.0
    assert result["checker"]["flag_precision"] == 1.0
    assert result["cost_model"]["seconds_per_prompt_token"] == 0.0
    png = chart(result, tmp_path / "c.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_read_table_skips_other_versions(tmp_path: Path) -> None:
    f = tmp_path / "t.jsonl"
    f.write_text(json.dumps(row(0, 0.5, 1, 1)) + "\n" + json.dumps({"v": 0, "id": "x"}) + "\n")
    assert [r["id"] for r in read_table(f)] == ["q0"]
    assert read_table(tmp_path / "absent.jsonl") == []


# -- HaluEval dialogue and summarization rows (bench faithfulness) --------------------------------
def test_halueval_rows_are_told_apart_by_their_fields() -> None:
    from bench.faithfulness import halueval_kind
    from core.errors import UsageError

    assert halueval_kind({"knowledge": "", "question": "", "right_answer": "",
                          "hallucinated_answer": ""}) == "qa"  # fmt: skip
    assert halueval_kind({"knowledge": "", "dialogue_history": "", "right_response": "",
                          "hallucinated_response": ""}) == "dialogue"  # fmt: skip
    assert halueval_kind({"document": "", "right_summary": "",
                          "hallucinated_summary": ""}) == "summarization"  # fmt: skip
    with pytest.raises(UsageError):
        halueval_kind({"text": "x"})


def test_dialogue_question_is_the_last_human_turn() -> None:
    from bench.faithfulness import last_turn

    history = "[Human]: Do you like Iron Man [Assistant]: Sure! [Human]: Was he in Zodiac? "
    assert last_turn(history) == "Was he in Zodiac?"
    assert last_turn("no markers here") == "no markers here"


def test_long_documents_are_checked_against_their_best_windows() -> None:
    from bench.faithfulness import best_windows

    filler = " ".join(f"Sentence {i} is about nothing in particular here." for i in range(40))
    document = (
        f"{filler} The prosecutor said no videos were used in the crash investigation. {filler}"
    )
    [window] = best_windows("No videos were used in the investigation.", document, k=1)
    assert "no videos were used" in window
    assert len(best_windows("anything", document, k=3)) == 3


# -- the service side: draft options, the ungrounded policy, the cost estimate --------------------
def test_draft_options_and_cost_estimate() -> None:
    from app.answers.router import draft_options
    from app.answers.service import estimate_llm_seconds
    from app.settings import Settings

    plain = Settings(_env_file=None)  # type: ignore[call-arg]
    assert plain.llm_draft == "none" and draft_options(plain) is None
    on = Settings(_env_file=None, llm_draft="prompt-lookup", llm_draft_tokens=6)  # type: ignore[call-arg]
    config = draft_options(on)
    assert config is not None and config.draft_tokens == 6
    model = {"model": "m", "seconds_base": 1.0, "seconds_per_prompt_token": 0.01}
    assert estimate_llm_seconds(model, [0.0, 0.0], 100, "m") == pytest.approx(2.0)
    # Another LLM answered here: its own calls (4 s for 200 prompt tokens) are the estimate.
    assert estimate_llm_seconds(model, [4.0, 200.0], 100, "other") == pytest.approx(2.0)
    assert estimate_llm_seconds({}, [0.0, 0.0], 100, "m") is None
    assert estimate_llm_seconds(model, [0.0, 0.0], 100, "other") is None  # not measured here


def test_ungrounded_action() -> None:
    from app.answers.service import ungrounded_action
    from smallmodels.checker import Groundedness, SentenceCheck

    good = SentenceCheck("Right [1].", 0.9, True, [0])
    bad = SentenceCheck("Invented [2].", 0.1, False, [])
    mixed = Groundedness(0.1, [good, bad], ["Invented [2]."])
    assert ungrounded_action("flag", mixed, 0.5) == ("flagged", [])
    assert ungrounded_action("drop", mixed, 0.5) == ("dropped", [good])
    assert ungrounded_action("fallback", mixed, 0.5) == ("fallback", [])
    assert ungrounded_action("drop", Groundedness(0.1, [bad], ["x"]), 0.5) == ("fallback", [])
    assert ungrounded_action("fallback", Groundedness(0.9, [good], []), 0.5) == ("none", [])
    assert ungrounded_action("fallback", None, 0.5) == ("none", [])

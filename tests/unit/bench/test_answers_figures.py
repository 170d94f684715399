"""The answers benchmark's figures: splits, rightness, wrong-entity answers, calibration."""

from __future__ import annotations

import random

from bench.answers import (
    calibration_table,
    choose_threshold,
    fit_calibration,
    in_split,
    is_right,
    wrong_entity,
)


def test_the_splits_halve_and_never_overlap() -> None:
    keys = [f"article-{i}" for i in range(400)]
    cal = {k for k in keys if in_split(k, "cal")}
    test = {k for k in keys if in_split(k, "test")}
    assert not cal & test and cal | test == set(keys)
    assert 150 < len(cal) < 250
    assert all(in_split(k, "all") for k in keys)


def test_rightness_and_wrong_entities() -> None:
    assert is_right("20 July 1969", ("20 July 1969",))
    assert is_right("It landed on 20 July 1969 in the Sea.", ("20 July 1969",))  # contained
    assert not is_right("16 July 1969", ("20 July 1969", "July 20"))
    assert not is_right("", ("x",))
    read = ["Alexander Fleming discovered penicillin; Melvin Calvin traced carbon."]
    q = "Who discovered penicillin?"
    assert wrong_entity(q, "Melvin Calvin", ("Alexander Fleming",), read) is True
    assert wrong_entity(q, "Alexander Fleming", ("Alexander Fleming",), read) is False
    assert wrong_entity(q, "Fleming", ("Alexander Fleming",), read) is False  # partly right
    assert wrong_entity("What is penicillin?", "a drug", ("an antibiotic",), read) is None
    assert wrong_entity(q, "Melvin Calvin", ("Louis Pasteur",), read) is None  # gold not read


def _records(n: int = 300) -> list[dict]:
    rng = random.Random(1)
    out = []
    for i in range(n):
        answerable = i % 2 == 0
        sim = rng.gauss(0.6 if answerable else 0.2, 0.12)
        right = answerable and rng.random() < sim
        out.append(
            {
                "answerable": answerable,
                "found": True,
                "right": right,
                "confidence": max(0.0, min(1.0, sim)),
                "features": {"score": sim, "sim": sim, "retrieval": sim, "overlap": sim},
            }
        )
    return out


def test_calibration_table_counts_answers_by_bin() -> None:
    rows = _records()
    table = calibration_table(rows)
    assert sum(b["answers"] for b in table["bins"]) == len(rows)
    high = [r for r in rows if r["confidence"] >= 0.8]
    assert table["at_0.8"]["answers"] == len(high)
    empty = calibration_table([])
    assert empty["at_0.8"] == {"answers": 0, "right": None}


def test_a_fit_keeps_answering_and_abstains_on_the_rest() -> None:
    result = {"rows": _records(), "set": "x.json", "split": "cal", "unanswerable": {"set": "y"}}
    cal = fit_calibration(result, "sentence", {"reader": None})
    assert cal.fitted_on["split"] == "cal" and cal.fitted_on["answered_on_split"] >= 0.9
    assert cal.fitted_on["abstained_unanswerable_on_split"] > 0.5
    assert cal.answerable.prob({"score": 0.7, "sim": 0.7, "retrieval": 0.7, "overlap": 0.7}) > 0.5


def test_the_threshold_answers_most_while_abstaining_on_nine_in_ten() -> None:
    answerable = [0.2 + 0.008 * i for i in range(100)]  # 0.2 .. 0.992
    unanswerable = [0.001 * i for i in range(100)]  # 0 .. 0.099
    t = choose_threshold(answerable, unanswerable)
    assert sum(p >= t for p in unanswerable) == 10  # abstains on exactly 90%
    assert all(p >= t for p in answerable)  # and answers everything it can
    # where abstaining on 90% would drop below 90% answered, the answered share wins
    t = choose_threshold([0.01 * i for i in range(100)], [0.5 + 0.005 * i for i in range(100)])
    assert sum(p >= t for p in [0.01 * i for i in range(100)]) == 90

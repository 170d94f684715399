"""Calibrated abstention and confidence: the logistic models, their file, and the labels."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from app.answers.calibration import (
    FEATURE_SETS,
    Calibration,
    Logistic,
    load_calibrations,
    save_calibration,
)
from app.answers.prompt import Passage
from app.answers.service import small_grounded
from app.answers.small import NO_ANSWER, SmallAnswer, SmallAnswerer


def _data(n: int = 400) -> tuple[list[dict[str, float]], list[int]]:
    rng = random.Random(0)
    rows, labels = [], []
    for _ in range(n):
        y = rng.random() < 0.5
        rows.append({"sim": rng.gauss(0.6 if y else 0.2, 0.1), "overlap": rng.random()})
        labels.append(int(y))
    return rows, labels


def test_logistic_fit_separates_and_round_trips() -> None:
    rows, labels = _data()
    model = Logistic.fit(rows, labels, ("sim", "overlap"))
    assert model.prob({"sim": 0.7, "overlap": 0.5}) > 0.9
    assert model.prob({"sim": 0.1, "overlap": 0.5}) < 0.1
    again = Logistic.from_dict(json.loads(json.dumps(model.as_dict())))
    assert again.prob({"sim": 0.4, "overlap": 0.2}) == pytest.approx(
        model.prob({"sim": 0.4, "overlap": 0.2}), abs=1e-4
    )
    # A missing feature counts as its mean (no crash, no extreme).
    assert 0.0 < model.prob({"overlap": 0.5}) < 1.0


def test_cross_validated_strength_shrinks_noise_towards_the_base_rate() -> None:
    # Labels unrelated to the features: C=1 alone over-fits a little; the cross-validated
    # strength picks heavy shrinkage, so no answer gets a confident probability.
    rng = random.Random(3)
    rows = [{"sim": rng.random(), "overlap": rng.random()} for _ in range(120)]
    labels = [int(rng.random() < 0.6) for _ in rows]
    loose = Logistic.fit(rows, labels, ("sim", "overlap"))
    tuned = Logistic.fit(rows, labels, ("sim", "overlap"), c_grid=(0.001, 0.01, 1.0, 100.0))
    spread = [abs(m.coef[0]) + abs(m.coef[1]) for m in (loose, tuned)]
    assert spread[1] < spread[0] / 5
    assert all(0.45 < tuned.prob(r) < 0.75 for r in rows)
    # Real signal survives the selection.
    rows, labels = _data()
    model = Logistic.fit(rows, labels, ("sim", "overlap"), c_grid=(0.001, 0.01, 1.0, 100.0))
    assert model.prob({"sim": 0.7, "overlap": 0.5}) > 0.9
    # One class only: one C, no cross-validation (and scikit-learn's own error).
    with pytest.raises(ValueError):
        Logistic.fit(rows[:5], [1] * 5, ("sim", "overlap"), c_grid=(0.1, 1.0))


def test_calibrations_are_saved_per_feature_set(tmp_path: Path) -> None:
    rows, labels = _data()
    model = Logistic.fit(rows, labels, ("sim", "overlap"))
    path = tmp_path / "calibration.json"
    save_calibration(Calibration("sentence", model, 0.4, model, {"split": "cal"}), path)
    save_calibration(Calibration("reader", model, 0.3, model, {"split": "cal"}), path)
    loaded = load_calibrations(path)
    assert set(loaded) == {"sentence", "reader"} and loaded["reader"].threshold == 0.3
    ok, p, conf = loaded["sentence"].judge({"sim": 0.05, "overlap": 0.0})
    assert not ok and p < 0.4 and 0.0 <= conf <= 1.0
    assert load_calibrations(tmp_path / "missing.json") == {}


def test_the_shipped_calibration_covers_its_feature_sets() -> None:
    for name, cal in load_calibrations().items():
        assert set(cal.answerable.features) == set(FEATURE_SETS[name])
        assert 0.0 < cal.threshold < 1.0
        assert cal.fitted_on.get("split") == "cal"  # never fit on the test split


def _passage() -> Passage:
    return Passage(1, "Honeybees dance to tell where flowers are.", "bees.md", "bees", "bees::0")


def test_labels_say_who_checked() -> None:
    base = dict(found=True, answer="x [1]", confidence=0.9, span="x", passage=_passage())
    checked = SmallAnswer(
        method="reader", checked_by="checker", check_score=0.2, checker_name="c", **base
    )
    g = small_grounded(checked)
    assert g["method"] == "checker" and g["score"] == 0.2 and g["unsupported"] == ["x [1]"]
    reader = SmallAnswer(method="reader", checked_by="reader", check_score=0.7, **base)
    assert small_grounded(reader)["method"] == "reader"
    nobody = SmallAnswer(method="embedder", **base)
    g = small_grounded(nobody)
    assert g["method"] == "unchecked" and g["score"] is None and "no checker" in g["reason"]
    none = SmallAnswer(False, NO_ANSWER, 0.1, "reader", why="the passages do not answer it")
    assert small_grounded(none) == {
        "score": None,
        "unsupported": [],
        "method": "none",
        "reason": "the passages do not answer it",
    }


def test_a_calibration_decides_abstention_and_confidence() -> None:
    from smallmodels.embedder import load_embedder

    rows, labels = _data()
    # "answerable" here grows with the question's similarity to the passage.
    model = Logistic.fit(rows, labels, ("sim", "overlap"))
    cal = Calibration("sentence", model, 0.5, model, {"split": "cal"})
    small = SmallAnswerer(embedder=load_embedder(None), calibrations={"sentence": cal})
    assert small.feature_set == "sentence" and small.calibration is cal
    on_topic = small.answer("How do honeybees tell where flowers are?", [_passage()])
    off_topic = small.answer("What is the capital of Australia?", [_passage()])
    assert on_topic.found and on_topic.calibration == "sentence"
    assert on_topic.answer.endswith("[1]") and on_topic.confidence > off_topic.confidence
    assert not off_topic.found and off_topic.answer == NO_ANSWER
    assert "do not seem to answer" in off_topic.why
    uncalibrated = SmallAnswerer(embedder=load_embedder(None), calibrations={})
    assert uncalibrated.calibration is None
    assert "uncalibrated" in uncalibrated.describe()

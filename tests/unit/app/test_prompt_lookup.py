"""The n-gram proposer of prompt-lookup decoding and when a request may use it, without
llama.cpp (issue 16)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from app.generators.prompt_lookup import LookupConfig, NgramIndex, eligible, propose


def test_the_continuation_of_the_suffix_is_proposed() -> None:
    # "... Neil Armstrong landed ..." in the passage; the answer has just written "Neil".
    passage = [10, 11, 12, 13, 14, 15, 16]
    assert propose([*passage, 99, 12], 3) == [13, 14, 15]
    assert propose([*passage, 99, 12], 10) == [13, 14, 15, 16, 99, 12]  # up to the end


def test_the_longest_matching_ngram_wins_over_a_later_shorter_one() -> None:
    tokens = [1, 2, 3, 50, 9, 3, 60, 1, 2, 3]
    # 3-gram (1, 2, 3) occurred at 0 and was followed by 50; the 1-gram (3) later by 60.
    assert propose(tokens, 1) == [50]
    assert propose(tokens, 1, max_ngram=1) == [60]  # the latest occurrence of a 1-gram


def test_no_draft_without_an_earlier_occurrence_or_below_min_ngram() -> None:
    assert propose([1, 2, 3, 4], 5) == []
    assert propose([], 5) == []
    assert propose([7, 8, 7], 2) == [8, 7]
    assert propose([7, 8, 7], 2, max_ngram=3, min_ngram=2) == []  # only a 1-gram matches
    assert propose([7, 8, 7], 0) == []


def test_the_index_grows_with_the_generated_tokens() -> None:
    index = NgramIndex([5, 6, 7, 8], max_ngram=2, min_ngram=1)
    assert index.propose(2) == []
    index.append(6)  # the answer copies "6"
    assert index.propose(2) == [7, 8]
    index.extend([7, 9])  # ... then leaves the passage
    assert index.propose(2) == []
    index.append(5)
    assert index.propose(3) == [6, 7, 8] and len(index) == 8


def test_config_and_index_refuse_impossible_ngrams() -> None:
    with pytest.raises(ValueError):
        LookupConfig(draft_tokens=0)
    with pytest.raises(ValueError):
        LookupConfig(max_ngram=2, min_ngram=3)
    with pytest.raises(ValueError):
        NgramIndex(max_ngram=1, min_ngram=0)


def test_only_plain_greedy_requests_are_drafted() -> None:
    llama = SimpleNamespace(
        draft_model=None, _logits_all=False, _is_recurrent=False, _is_hybrid=False
    )
    greedy = {"temp": 0.0, "grammar": None, "logits_processor": None, "stopping_criteria": None}
    assert eligible(llama, greedy)
    assert not eligible(llama, {**greedy, "temp": 0.8})  # sampling: llama_cpp's own path
    assert not eligible(llama, {**greedy, "grammar": object()})
    assert not eligible(llama, {**greedy, "logits_processor": [abs]})
    assert not eligible(SimpleNamespace(**{**vars(llama), "_logits_all": True}), greedy)
    assert not eligible(SimpleNamespace(**{**vars(llama), "_is_recurrent": True}), greedy)

"""training.reader_groups: distractor groups, their windows and the shared-normalization loss."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from training.reader_groups import (
    collate_groups,
    distractor_groups,
    group_features,
    shared_norm_loss,
)
from training.squad import SquadQuestion, load_squad, normalize_answer

VOLCANO = "Mount Ember erupted in 1821 and buried the village of Sorrel under grey ash."
RIVER = "The river Lune floods each spring; its bridge at Carrow was built by Ada Finch."
MARKET = "Carrow holds a cattle market on Tuesdays, and its bakers sell oat bread."
OTHER = "Mount Ember's eruption is described in an article that no question is about."


def _q(i: int, question: str, context: str, answer: str, title: str = "vale") -> SquadQuestion:
    return SquadQuestion(
        id=str(i),
        question=question,
        context=context,
        answers=(answer,),
        answer_starts=(context.index(answer),),
        title=title,
        paragraph=i,
    )


QUESTIONS = [
    _q(0, "When did Mount Ember erupt?", VOLCANO, "1821"),
    _q(1, "Who built the bridge at Carrow?", RIVER, "Ada Finch"),
    _q(2, "On which day is the Carrow cattle market held?", MARKET, "Tuesdays"),
    _q(3, "What does this say?", OTHER, "article", title="elsewhere"),
]


def test_groups_take_bm25_distractors_from_the_same_article_only() -> None:
    groups = distractor_groups(QUESTIONS, k=1, no_answer_share=0.0, seed=0)
    assert len(groups) == len(QUESTIONS)
    for g in groups[:3]:
        assert g.gold is not None and g.contexts[g.gold] == g.question.context
        assert len(g.contexts) == 2 and OTHER not in g.contexts  # another article's paragraph
    # "Carrow" ties the bridge question to the market paragraph, not the volcano one.
    assert MARKET in groups[1].contexts
    # An article of one paragraph: the question is read alone.
    assert groups[3].contexts == [OTHER] and groups[3].gold == 0


def test_no_answer_groups_drop_the_gold_paragraph() -> None:
    groups = distractor_groups(QUESTIONS[:3], k=2, no_answer_share=1.0, seed=0)
    for g in groups:
        assert g.gold is None
        assert g.question.context not in g.contexts and len(g.contexts) == 2


def test_windows_label_the_answer_or_no_answer() -> None:
    from transformers import AutoTokenizer

    from smallmodels.spec import resolve

    tokenizer = AutoTokenizer.from_pretrained(resolve(None).path)
    groups = distractor_groups(QUESTIONS[:3], k=2, no_answer_share=0.0, seed=1)
    groups += distractor_groups(QUESTIONS[:3], k=2, no_answer_share=1.0, seed=1)[:1]
    features = group_features(tokenizer, groups, max_seq_len=64, doc_stride=16)
    for g, f in zip(groups[:3], features[:3], strict=True):
        labelled = [
            (ids, s, e) for ids, s, e in zip(f.input_ids, f.starts, f.ends, strict=True) if s
        ]
        assert labelled, "the gold paragraph's window holds the answer"
        for ids, s, e in labelled:
            text = tokenizer.decode(ids[s : e + 1])
            assert normalize_answer(text) == normalize_answer(g.question.answers[0])
        assert len(f.input_ids) == 3  # three passages, one window each
    assert not any(features[3].starts)

    batch = collate_groups(features, tokenizer.pad_token_id)
    windows = sum(len(f.input_ids) for f in features)
    assert batch["inputs"]["input_ids"].shape[0] == windows
    assert batch["start_target"].sum().item() == 3 + len(features[3].input_ids)
    no_answer_rows = batch["group"] == 3
    assert batch["start_target"][no_answer_rows, 0].all()  # [CLS] of every window
    assert not batch["valid"][:, 1:][batch["inputs"]["attention_mask"][:, 1:] == 0].any()


def test_shared_norm_loss_is_one_softmax_over_the_group() -> None:
    import torch

    valid = torch.tensor([[True, True, True], [True, True, False]])
    target = torch.tensor([[False, False, True], [False, False, False]])
    logits = torch.tensor([[0.0, 1.0, 2.0], [0.5, 3.0, 9.0]])  # 9.0 is padding: not counted
    batch = {
        "valid": valid,
        "start_target": target,
        "end_target": target,
        "group": torch.tensor([0, 0]),
        "groups": 1,
    }
    loss = shared_norm_loss(logits, logits, batch).item()
    one = math.log(sum(math.exp(x) for x in (0.0, 1.0, 2.0, 0.5, 3.0))) - 2.0
    assert loss == pytest.approx(2 * one, rel=1e-5)
    better = torch.tensor([[0.0, 1.0, 5.0], [0.5, 3.0, 9.0]])
    assert shared_norm_loss(better, better, batch).item() < loss


@pytest.mark.slow
def test_train_with_distractors_writes_a_reader(tmp_path: Path) -> None:
    from training.reader import train_reader

    rows = [(q.title, q.context, q.question, q.answers[0]) for q in QUESTIONS]
    data = []
    for title in dict.fromkeys(r[0] for r in rows):
        paragraphs = [
            {
                "context": c,
                "qas": [
                    {
                        "id": f"{title}-{i}",
                        "question": q,
                        "answers": [{"text": a, "answer_start": c.index(a)}],
                    }
                ],
            }
            for i, (t, c, q, a) in enumerate(rows)
            if t == title
        ]
        data.append({"title": title, "paragraphs": paragraphs})
    path = tmp_path / "vale.json"
    path.write_text(json.dumps({"version": "1.1", "data": data}))
    assert len(load_squad(path)) == 4
    figures = train_reader(
        tmp_path / "reader",
        [path],
        steps=2,
        batch_size=2,
        max_seq_len=64,
        heldout_questions=0,
        progress=False,
        distractors=2,
        seed=0,
    )
    assert figures["distractors"] == 2 and figures["steps"] == 2
    assert figures["features"] > figures["examples"]  # windows of every passage of each group
    assert math.isfinite(figures["final_loss"]) and figures["final_loss"] > 0
    assert (tmp_path / "reader" / "config.json").is_file()

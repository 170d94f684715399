"""Multi-passage reader training: each question read with distractor passages, one softmax.

Small mode reads a question against several retrieved passages at once and ranks every span of
every passage in one softmax with a "no answer" option (:mod:`smallmodels.reader`). A reader
trained on SQuAD's gold paragraphs alone never sees a passage without the answer: its span
logits are not comparable across passages, and its [CLS] ("no answer") logit is untrained.
Here each training question becomes a *group*: its gold paragraph and up to ``k`` distractor
paragraphs of the same article (the ones BM25 ranks highest for the question, the hard
negatives retrieval gives at serving time); some groups drop the gold paragraph (no answer).
The loss is the *shared-normalization* objective of Clark & Gardner, "Simple and Effective
Multi-Paragraph Reading Comprehension" (ACL 2018, section 2.3): start (and end) logits of every
window of a group share one softmax over context tokens and [CLS]; the target is the answer's
start (end) token in every window that holds it, or [CLS] of every window when none does.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from smallmodels.reader import pad_width
from training.reader import answer_tokens, encode_windows, length_batches
from training.squad import SquadQuestion


@dataclass
class Group:
    """One question with its passages; ``gold`` indexes the one holding the answer (or None)."""

    question: SquadQuestion
    contexts: list[str]
    gold: int | None


@dataclass
class GroupFeature:
    """The windows of one group: token ids, segment ids, start/end labels (0 = [CLS] when the
    window does not hold the answer) and which tokens are context."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]]
    starts: list[int]
    ends: list[int]
    context: list[list[bool]]

    @property
    def width(self) -> int:
        return max(len(ids) for ids in self.input_ids)


def distractor_groups(
    questions: Sequence[SquadQuestion],
    k: int = 2,
    no_answer_share: float = 0.15,
    seed: int = 0,
) -> list[Group]:
    """A :class:`Group` per question: its paragraph and the ``k`` other paragraphs of its
    article (``title``, from ``questions`` only, so held-out paragraphs stay unseen) BM25 ranks
    best for the question, in random order; a ``no_answer_share`` of the groups (drawn with
    ``seed``) lose the gold paragraph (``gold`` None). A question whose article has no other
    paragraph gets a group of one."""
    from stores.bm25 import BM25Index

    rng = random.Random(seed)
    by_title: dict[str, list[str]] = defaultdict(list)
    for q in questions:
        if q.context not in by_title[q.title]:
            by_title[q.title].append(q.context)
    indexes = {t: BM25Index.build(texts) for t, texts in by_title.items() if len(texts) > 1}
    groups: list[Group] = []
    for q in questions:
        texts = by_title[q.title]
        others: list[str] = []
        if q.title in indexes and k > 0:
            rows, _ = indexes[q.title].search([q.question], k + 1)[0]
            others = [texts[int(r)] for r in rows if texts[int(r)] != q.context][:k]
            if len(others) < k:  # BM25 found too few: fill at random from the article
                rest = [t for t in texts if t != q.context and t not in others]
                others += rng.sample(rest, min(k - len(others), len(rest)))
        if others and rng.random() < no_answer_share:
            groups.append(Group(q, others, None))
            continue
        contexts = [q.context, *others]
        order = list(range(len(contexts)))
        rng.shuffle(order)
        groups.append(Group(q, [contexts[i] for i in order], order.index(0)))
    return groups


def group_features(
    tokenizer: Any, groups: Sequence[Group], max_seq_len: int = 256, doc_stride: int = 128
) -> list[GroupFeature]:
    """Tokenise each group's (question, passage) pairs into windows with span labels."""
    out: list[GroupFeature] = []
    for g in groups:
        enc = encode_windows(
            tokenizer, [g.question.question] * len(g.contexts), g.contexts, max_seq_len, doc_stride
        )
        feature = GroupFeature([], [], [], [], [])
        answer = (g.question.answer_starts[0], len(g.question.answers[0]))
        for w, sample in enumerate(enc["overflow_to_sample_mapping"]):
            start_tok, end_tok = answer_tokens(enc, w, *answer) if sample == g.gold else (0, 0)
            feature.input_ids.append(list(enc["input_ids"][w]))
            types = enc["token_type_ids"][w] if "token_type_ids" in enc else []
            feature.token_type_ids.append(list(types))
            feature.starts.append(start_tok)
            feature.ends.append(end_tok)
            feature.context.append([s == 1 for s in enc.sequence_ids(w)])
        out.append(feature)
    return out


def group_batches(
    features: Sequence[GroupFeature], groups_per_batch: int, rng: random.Random
) -> Iterator[list[GroupFeature]]:
    """Shuffled batches of groups of similar width (less padding), forever."""
    return length_batches(features, groups_per_batch, rng, lambda f: f.width)


def collate_groups(batch: Sequence[GroupFeature], pad_id: int) -> dict[str, Any]:
    """Model inputs for every window of the batch's groups, and the loss's masks:
    ``valid`` (context tokens and [CLS]), ``start_target`` / ``end_target`` and ``group``
    (the group index of each window)."""
    import torch

    windows = [
        (g, ids, types, s, e, ctx)
        for g, f in enumerate(batch)
        for ids, types, s, e, ctx in zip(
            f.input_ids, f.token_type_ids, f.starts, f.ends, f.context, strict=True
        )
    ]
    width = pad_width(max(len(w[1]) for w in windows), 32)
    n = len(windows)
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    types = torch.zeros((n, width), dtype=torch.long)
    valid = torch.zeros((n, width), dtype=torch.bool)
    start_target = torch.zeros((n, width), dtype=torch.bool)
    end_target = torch.zeros((n, width), dtype=torch.bool)
    group = torch.tensor([w[0] for w in windows])
    answered = {w[0] for w in windows if w[3] > 0}
    for row, (g, w_ids, w_types, s, e, ctx) in enumerate(windows):
        k = len(w_ids)
        ids[row, :k] = torch.tensor(w_ids)
        mask[row, :k] = 1
        if w_types:
            types[row, :k] = torch.tensor(w_types)
        valid[row, :k] = torch.tensor(ctx)
        valid[row, 0] = True
        if g in answered:
            if s > 0:
                start_target[row, s] = True
                end_target[row, e] = True
        else:  # no window holds the answer: "no answer" ([CLS]) is right in every window
            start_target[row, 0] = True
            end_target[row, 0] = True
    inputs: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
    if batch[0].token_type_ids and batch[0].token_type_ids[0]:
        inputs["token_type_ids"] = types
    return {
        "inputs": inputs,
        "valid": valid,
        "start_target": start_target,
        "end_target": end_target,
        "group": group,
        "groups": len(batch),
    }


def shared_norm_loss(start_logits: Any, end_logits: Any, batch: dict[str, Any]) -> Any:
    """Mean over groups of ``-log P(start) - log P(end)``, each a softmax over the valid tokens
    of all the group's windows, marginalised over the target positions. Tensors are
    ``(windows, width)``; returns a scalar tensor."""
    import torch

    losses = []
    neg = torch.finfo(torch.float32).min
    for logits, target in (
        (start_logits, batch["start_target"]),
        (end_logits, batch["end_target"]),
    ):
        logits = logits.float()
        for g in range(batch["groups"]):
            rows = batch["group"] == g
            lg = logits[rows]
            all_lse = torch.logsumexp(lg.masked_fill(~batch["valid"][rows], neg).flatten(), 0)
            gold_lse = torch.logsumexp(lg.masked_fill(~target[rows], neg).flatten(), 0)
            losses.append(all_lse - gold_lse)
    return torch.stack(losses).sum() / max(1, batch["groups"])

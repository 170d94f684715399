"""Fine-tune and evaluate the extractive reader (:mod:`smallmodels.reader`).

Training starts from an encoder (by default the packaged all-MiniLM-L6-v2 weights), adds a newly
initialised span head (``AutoModelForQuestionAnswering``), and trains on SQuAD-format files with
the standard preprocessing: (question, context) pairs cut into overlapping windows by the fast
tokenizer's offset mapping, answer start/end tokens as labels, [CLS] for windows that do not
hold the answer. The loop is plain torch (AdamW, linear warmup and decay, a larger learning rate
for the new head, bf16 autocast where the CPU multiplies bfloat16 natively).
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from smallmodels.hardware import cpu_has_fast_bf16
from smallmodels.reader import (
    ExtractiveReader,
    TransformersReader,
    load_reader,
    pad_width,
    window_limits,
)
from smallmodels.spec import resolve
from training.device import check_device
from training.squad import (
    SquadDataError,
    SquadQuestion,
    load_squad,
    sample_questions,
    split_heldout,
    squad_scores,
)


@dataclass
class _Feature:
    input_ids: list[int]
    token_type_ids: list[int]
    start: int
    end: int


def load_training_questions(squad_files: Sequence[Path | str]) -> list[SquadQuestion]:
    """All answerable questions of the files (raises SquadDataError on a bad file)."""
    if not squad_files:
        raise SquadDataError("no SQuAD file given")
    questions: list[SquadQuestion] = []
    for path in squad_files:
        loaded = load_squad(path)
        answerable = [q for q in loaded if q.answers]
        if not answerable:
            raise SquadDataError(f"{path} holds no answerable question")
        questions.extend(answerable)
    return questions


def _trim_questions(tokenizer: Any, texts: list[str], max_tokens: int) -> list[str]:
    enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
    out = []
    for text, offsets in zip(texts, enc["offset_mapping"], strict=True):
        if len(offsets) > max_tokens:
            text = text[: offsets[max_tokens - 1][1]]
        out.append(text)
    return out


def make_features(
    tokenizer: Any,
    questions: Sequence[SquadQuestion],
    max_seq_len: int = 256,
    doc_stride: int = 128,
) -> list[_Feature]:
    """SQuAD training windows with start/end token labels ([CLS] = 0 when not in the window)."""
    if not questions:
        return []
    enc = encode_windows(
        tokenizer, [q.question for q in questions], [q.context for q in questions], max_seq_len,
        doc_stride,
    )  # fmt: skip
    features: list[_Feature] = []
    for w, sample in enumerate(enc["overflow_to_sample_mapping"]):
        q = questions[sample]
        start_tok, end_tok = answer_tokens(enc, w, q.answer_starts[0], len(q.answers[0]))
        types = enc["token_type_ids"][w] if "token_type_ids" in enc else []
        features.append(_Feature(list(enc["input_ids"][w]), list(types), start_tok, end_tok))
    return features


def encode_windows(
    tokenizer: Any,
    questions: Sequence[str],
    contexts: Sequence[str],
    max_seq_len: int,
    doc_stride: int,
) -> Any:
    """(question, context) pairs as a fast tokenizer's overflowing windows (offsets kept), the
    questions trimmed to leave the context room, as :mod:`smallmodels.reader` reads them."""
    max_query, doc_stride = window_limits(max_seq_len, doc_stride)
    texts = _trim_questions(tokenizer, [" ".join(q.split()) for q in questions], max_query)
    return tokenizer(
        texts,
        list(contexts),
        truncation="only_second",
        max_length=max_seq_len,
        stride=doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding=False,
    )


def answer_tokens(enc: Any, window: int, answer_start: int, answer_chars: int) -> tuple[int, int]:
    """The (start, end) token labels of an answer at ``answer_start`` (``answer_chars`` long)
    in window ``window`` of a fast tokenizer's overflowing encoding, or (0, 0) ([CLS]) when
    the window does not hold the whole answer."""
    answer_end = answer_start + answer_chars
    offsets = enc["offset_mapping"][window]
    ctx = [i for i, s in enumerate(enc.sequence_ids(window)) if s == 1]
    if not ctx or offsets[ctx[0]][0] > answer_start or offsets[ctx[-1]][1] < answer_end:
        return 0, 0
    start_tok = next(i for i in ctx if offsets[i][1] > answer_start)
    end_tok = next(i for i in reversed(ctx) if offsets[i][0] < answer_end)
    return (0, 0) if end_tok < start_tok else (start_tok, end_tok)


T = TypeVar("T")


def length_batches(
    items: Sequence[T], batch_size: int, rng: random.Random, length: Callable[[T], int]
) -> Iterator[list[T]]:
    """Shuffled batches of items of similar ``length`` (less padding), forever."""
    while True:
        order = list(range(len(items)))
        rng.shuffle(order)
        pool = batch_size * 50
        batches: list[list[T]] = []
        for p in range(0, len(order), pool):
            chunk = sorted(order[p : p + pool], key=lambda i: length(items[i]))
            batches.extend(
                [items[i] for i in chunk[b : b + batch_size]]
                for b in range(0, len(chunk), batch_size)
            )
        rng.shuffle(batches)
        yield from batches


def _batches(
    features: Sequence[_Feature], batch_size: int, rng: random.Random
) -> Iterator[list[_Feature]]:
    """Shuffled batches of windows of similar length, forever."""
    return length_batches(features, batch_size, rng, lambda f: len(f.input_ids))


def _collate(batch: Sequence[_Feature], pad_id: int) -> dict[str, Any]:
    import torch

    # Few distinct shapes keep oneDNN's per-shape caches (and memory) small.
    width = pad_width(max(len(f.input_ids) for f in batch), 32)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    types = torch.zeros((len(batch), width), dtype=torch.long)
    for row, f in enumerate(batch):
        n = len(f.input_ids)
        ids[row, :n] = torch.tensor(f.input_ids)
        mask[row, :n] = 1
        if f.token_type_ids:
            types[row, :n] = torch.tensor(f.token_type_ids)
    inputs = {
        "input_ids": ids,
        "attention_mask": mask,
        "start_positions": torch.tensor([f.start for f in batch]),
        "end_positions": torch.tensor([f.end for f in batch]),
    }
    if batch[0].token_type_ids:  # models without segment embeddings (DistilBERT) take none
        inputs["token_type_ids"] = types
    return inputs


def evaluate_questions(
    reader: ExtractiveReader, questions: Sequence[SquadQuestion]
) -> dict[str, float]:
    """SQuAD EM/F1 (0..1) of the reader's best span, reading each question's gold paragraph."""
    started = time.perf_counter()
    predictions = []
    for q in questions:
        spans = reader.read(q.question, [q.context], top_n=1)
        predictions.append(spans[0].text if spans else "")
    scores = squad_scores(predictions, [q.answers for q in questions])
    seconds = time.perf_counter() - started
    scores["seconds"] = round(seconds, 2)
    scores["questions_per_second"] = round(len(questions) / seconds, 2) if seconds else 0.0
    return scores


def evaluate_reader(
    spec: str | None, squad_file: Path | str, max_questions: int | None = 500, seed: int = 0
) -> dict[str, Any]:
    """EM/F1 of the reader ``spec`` on ``max_questions`` random questions of ``squad_file``.

    Each question is read against its own (gold) paragraph; answerless questions are skipped.
    Returns ``{"spec", "file", "questions", "exact_match", "f1", "seconds",
    "questions_per_second"}`` with EM and F1 in 0..1.
    """
    questions = [q for q in load_squad(squad_file) if q.answers]
    picked = sample_questions(questions, max_questions, seed)
    reader = load_reader(spec)
    scores = evaluate_questions(reader, picked)
    return {"spec": reader.name, "file": str(squad_file), **scores}


def train_reader(
    out_dir: Path | str,
    squad_files: Sequence[Path | str],
    *,
    base: str | None = None,
    epochs: float = 2,
    steps: int | None = None,
    max_questions: int | None = None,
    batch_size: int = 32,
    lr: float = 1e-4,
    head_lr_scale: float | None = None,
    warmup: float = 0.06,
    max_seq_len: int = 256,
    doc_stride: int = 128,
    heldout_questions: int = 300,
    seed: int = 0,
    heldout_seed: int = 0,
    max_seconds: float | None = None,
    precision: str = "auto",
    threads: int = 2,
    progress: bool = True,
    device: str = "cpu",
    distractors: int = 0,
    no_answer_share: float = 0.15,
) -> dict[str, Any]:
    """Fine-tune an extractive reader and save it (transformers folder + README.md) to ``out_dir``.

    Up to ``heldout_questions`` questions (whole paragraphs, at most a fifth of the data) are
    held out from the training files and scored (EM/F1) after training; ``heldout_seed`` picks
    them, so runs with different ``seed`` (shuffling, head initialisation) hold out the same
    paragraphs. The span head learns at ``head_lr_scale`` times ``lr`` (default 10 for a new
    head, 1 when ``base`` already has one). ``steps`` overrides
    ``epochs``; ``max_questions`` caps the training questions. Returns the figures written to
    the model card.

    ``max_seconds`` bounds the training loop's wall time: the learning rate then decays
    linearly with whichever runs out first, steps or time, and training stops there. A
    ``base`` that is already a QA model (a folder written by this function) is trained further
    with its head kept. ``device`` is a torch device (``cpu``, ``cuda``, ``cuda:N``): on a GPU
    ``precision`` ``auto`` means bfloat16 autocast; the held-out scoring and the saved model are
    on the CPU either way. Raises :class:`SquadDataError` for a bad device or bad files.

    ``distractors`` > 0 trains on multi-passage groups (:mod:`training.reader_groups`): each
    question with that many distractor paragraphs of its article, a ``no_answer_share`` of
    the groups without their gold paragraph, under the shared-normalization loss;
    ``batch_size`` then counts groups.
    """
    import torch
    from transformers import AutoConfig, AutoModelForQuestionAnswering, AutoTokenizer
    from transformers.utils import logging as hf_logging

    device_type = check_device(device, SquadDataError)
    started = time.perf_counter()
    torch.set_num_threads(max(1, threads))
    random.seed(seed)
    torch.manual_seed(seed)
    paths = [Path(p) for p in squad_files]
    questions = load_training_questions(paths)
    resolved = resolve(base)

    n_held = min(heldout_questions, len(questions) // 5)
    train_qs, held_qs = split_heldout(questions, n_held, heldout_seed)
    train_qs = sample_questions(train_qs, max_questions, seed)
    if not train_qs:
        raise SquadDataError("no training question left after holding out evaluation questions")

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    if not progress:
        hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(resolved.path, use_fast=True)
        has_head = any(
            a.endswith("ForQuestionAnswering")
            for a in (AutoConfig.from_pretrained(resolved.path).architectures or [])
        )
        model = AutoModelForQuestionAnswering.from_pretrained(resolved.path)
    finally:
        hf_logging.set_verbosity(verbosity)
    if head_lr_scale is None:
        head_lr_scale = 1.0 if has_head else 10.0
    if distractors > 0:
        from training.reader_groups import (
            collate_groups,
            distractor_groups,
            group_batches,
            group_features,
            shared_norm_loss,
        )

        groups = distractor_groups(train_qs, distractors, no_answer_share, seed)
        features: Sequence[Any] = group_features(tokenizer, groups, max_seq_len, doc_stride)
    else:
        features = make_features(tokenizer, train_qs, max_seq_len, doc_stride)
    batches_per_epoch = math.ceil(len(features) / batch_size)
    total_steps = steps if steps is not None else max(1, math.ceil(epochs * batches_per_epoch))
    if precision == "auto":
        precision = "bf16" if device_type == "cuda" or cpu_has_fast_bf16() else "fp32"
    model.to(device)

    head = [p for n, p in model.named_parameters() if n.startswith("qa_outputs")]
    body_decay = [
        p
        for n, p in model.named_parameters()
        if not n.startswith("qa_outputs") and not n.endswith("bias") and "LayerNorm" not in n
    ]
    body_no_decay = [
        p
        for n, p in model.named_parameters()
        if not n.startswith("qa_outputs") and (n.endswith("bias") or "LayerNorm" in n)
    ]
    optimizer = torch.optim.AdamW(
        [
            {"params": body_decay, "lr": lr, "weight_decay": 0.01},
            {"params": body_no_decay, "lr": lr, "weight_decay": 0.0},
            {"params": head, "lr": lr * head_lr_scale, "weight_decay": 0.0},
        ]
    )
    warmup_steps = max(1, int(warmup * total_steps))
    base_lrs = [group["lr"] for group in optimizer.param_groups]

    def set_lr(step: int, elapsed: float) -> bool:
        """Linear warmup, then linear decay with steps or time; False when done."""
        done = step / total_steps
        if max_seconds:
            done = max(done, elapsed / max_seconds)
        if done >= 1.0:
            return False
        warm = min(1.0, (step + 1) / warmup_steps)
        tail = (1.0 - done) / (1.0 - min(warmup, 0.99))
        factor = min(warm, tail)
        for group, base_lr in zip(optimizer.param_groups, base_lrs, strict=True):
            group["lr"] = base_lr * factor
        return True

    pad_id = tokenizer.pad_token_id or 0
    batches: Iterator[Any] = (
        group_batches(features, batch_size, random.Random(seed))
        if distractors > 0
        else _batches(features, batch_size, random.Random(seed))
    )
    bar = _progress(total_steps, progress)
    model.train()
    losses: list[float] = []
    loop_started = time.perf_counter()
    done_steps = 0
    for step in range(total_steps):
        if not set_lr(step, time.perf_counter() - loop_started):
            break
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            if distractors > 0:
                grouped = collate_groups(next(batches), pad_id)
                for key in ("valid", "start_target", "end_target", "group"):
                    grouped[key] = grouped[key].to(device)
                out = model(**{k: v.to(device) for k, v in grouped["inputs"].items()})
                loss = shared_norm_loss(out.start_logits, out.end_logits, grouped)
            else:
                inputs = _collate(next(batches), pad_id)
                if device_type != "cpu":
                    inputs = {k: v.to(device) for k, v in inputs.items()}
                loss = model(**inputs).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        done_steps = step + 1
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{sum(losses[-50:]) / len(losses[-50:]):.3f}")
    if bar is not None:
        bar.close()
    model.eval()
    model.to("cpu")
    train_seconds = time.perf_counter() - started

    reader = TransformersReader.from_model(model, tokenizer, name=Path(out_dir).name)
    heldout = evaluate_questions(reader, held_qs) if held_qs else {}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    figures: dict[str, Any] = {
        "out": str(out),
        "base": resolved.name,
        "head": "continued" if has_head else "new",
        "squad_files": [str(p) for p in paths],
        "examples": len(train_qs),
        # windows (a multi-passage group holds several)
        "features": sum(len(f.input_ids) for f in features) if distractors > 0 else len(features),
        "steps": done_steps,
        "planned_steps": total_steps,
        "epochs": round(done_steps / batches_per_epoch, 3),
        "batch_size": batch_size,
        "lr": lr,
        "head_lr": lr * head_lr_scale,
        "max_seq_len": max_seq_len,
        "doc_stride": doc_stride,
        "precision": precision,
        "device": device,
        "seed": seed,
        "distractors": distractors,
        "no_answer_share": no_answer_share if distractors > 0 else 0.0,
        "final_loss": round(sum(losses[-50:]) / max(1, len(losses[-50:])), 4),
        "train_seconds": round(train_seconds, 1),
        "max_seconds": max_seconds,
        "seconds": round(time.perf_counter() - started, 1),
        "heldout": {
            "questions": int(heldout.get("questions", 0)),
            "exact_match": round(float(heldout.get("exact_match", 0.0)), 4),
            "f1": round(float(heldout.get("f1", 0.0)), 4),
        },
    }
    (out / "training.json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    (out / "README.md").write_text(_model_card(figures), encoding="utf-8")
    return figures


def _progress(total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc="reader", unit="step", file=sys.stderr)


def _model_card(f: dict[str, Any]) -> str:
    held = f["heldout"]
    head = (
        "the span head was newly initialised"
        if f["head"] == "new"
        else "training continued with its span head"
    )
    files = "\n".join(f"- `{p}`" for p in f["squad_files"])
    budget = f"time budget {f['max_seconds']:g} s" if f["max_seconds"] else "no time budget"
    return f"""---
library_name: transformers
pipeline_tag: question-answering
base_model: {f["base"]}
---

# Tandem extractive reader

An extractive question-answering model (``BertForQuestionAnswering``) fine-tuned by
`tandem reader train` from `{f["base"]}`; {head}.

## Training data

{files}

- training questions: {f["examples"]} ({f["features"]} windows of at most {f["max_seq_len"]}
  tokens, stride {f["doc_stride"]})
- held out for evaluation: {held["questions"]} questions (whole paragraphs of the same files)

## Training

- steps: {f["steps"]} of {f["planned_steps"]} planned (about {f["epochs"]} epochs; {budget}),
  batch size {f["batch_size"]}
- learning rate: {f["lr"]} (encoder), {f["head_lr"]} (span head); AdamW, linear warmup and decay
- precision: {f["precision"]} autocast; seed {f["seed"]}
- final training loss: {f["final_loss"]}
- wall time: {f["seconds"]} s on CPU

## Held-out evaluation (gold paragraph, best span)

| questions | exact match | token F1 |
| --- | --- | --- |
| {held["questions"]} | {held["exact_match"]:.3f} | {held["f1"]:.3f} |
"""

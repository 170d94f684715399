"""Train the groundedness checker: a cross-encoder that says whether a passage supports an
answer *to this question*.

Training data comes in *groups*: one question, one passage, one right answer and its hard wrong
answers. Wrong answers are

* ``hallucinated``: HaluEval's hallucinated answer (``--halueval``);
* ``other_question``: the answer to another question about the same passage (SQuAD);
* ``same_type``: a span of the passage of the same type as the right answer (a number or date
  for a number, a capitalised phrase for a name, a phrase of the same length otherwise);
* ``swapped``: the right answer with one number or name swapped for another.

The last three appear in the passage (or nearly), so style cannot tell them apart: only the
question can. The loss is listwise (softmax cross-entropy over each group: the right answer must
beat its own wrong ones) plus pointwise binary cross-entropy (so that 0.5 stays a meaningful
threshold across questions); ``loss="listwise"`` or ``"pointwise"`` keeps one of them.
"""

from __future__ import annotations

import json
import math
import random
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import UsageError
from smallmodels.checker import (
    CONFIG_FILE,
    DEFAULT_READER_MAX_WORDS,
    best_window,
    pair_text,
    split_sentences,
    use_bf16,
)
from smallmodels.spec import DEFAULT_EMBEDDER, resolve
from training.device import check_device
from training.halueval import (
    HaluEvalDataError,
    check_kind,
    dialogue_groups,
    load_file,
    read_records,
    summary_groups,
)

LOSSES = ("both", "listwise", "pointwise")


class CheckerDataError(UsageError):
    """A training or benchmark file for the checker is missing or malformed."""

    code = "bad_checker_data"


# --- HaluEval -------------------------------------------------------------------------------


@dataclass(frozen=True)
class HaluRow:
    """One HaluEval QA row."""

    knowledge: str
    question: str
    right_answer: str
    hallucinated_answer: str


_HALU_KEYS = ("knowledge", "question", "right_answer", "hallucinated_answer")


def parse_rows(text: str | int | slice | None) -> slice:
    """``None`` -> all rows, ``N`` -> the first N, ``"A:B"`` -> rows A..B-1, a slice as is."""
    if text is None:
        return slice(None)
    if isinstance(text, slice):
        return text
    if isinstance(text, int):
        if text < 0:
            raise CheckerDataError(f"row count must be >= 0, not {text}")
        return slice(0, text)
    raw = text.strip()
    try:
        if ":" in raw:
            lo, _, hi = raw.partition(":")
            return slice(int(lo) if lo.strip() else None, int(hi) if hi.strip() else None)
        return parse_rows(int(raw))
    except ValueError:
        raise CheckerDataError(f"rows must be N or A:B, not {text!r}") from None


def load_halueval(path: str | Path, rows: str | int | slice | None = None) -> list[HaluRow]:
    """Read HaluEval QA rows (JSON lines, or one JSON list) and keep ``rows`` of them.

    Raises :class:`CheckerDataError` (one line) when the file is missing, is not JSON, or a row
    lacks one of knowledge, question, right_answer, hallucinated_answer.
    """
    file = Path(path)
    try:
        records = read_records(file)
        check_kind(records, "qa", file)
    except HaluEvalDataError as exc:
        raise CheckerDataError(str(exc)) from None
    if not records:
        raise CheckerDataError(f"{file} holds no HaluEval rows")
    return halu_rows(records)[parse_rows(rows)]


def halu_rows(records: Sequence[dict[str, Any]]) -> list[HaluRow]:
    """HaluEval QA records (checked by :func:`training.halueval.check_kind`) as :class:`HaluRow`."""
    return [HaluRow(*(str(r[k]) for k in _HALU_KEYS)) for r in records]


# --- groups ---------------------------------------------------------------------------------


@dataclass
class Group:
    """A question about a passage, its right answer first, then hard wrong answers."""

    question: str
    passage: str
    answers: list[str]
    kinds: list[str] = field(default_factory=list)
    source: str = ""

    def pairs(self) -> list[tuple[str, str]]:
        """Cross-encoder inputs, the passage cut to the window that best fits each answer."""
        return [
            (pair_text(self.question, a), best_window(self.passage, self.question, a))
            for a in self.answers
        ]


_MONTHS = (
    "January|February|March|April|May|June|July|August|September|October|November|December|"
    "Jan\\.?|Feb\\.?|Mar\\.?|Apr\\.?|Jun\\.?|Jul\\.?|Aug\\.?|Sept?\\.?|Oct\\.?|Nov\\.?|Dec\\.?"
)
_NUMBER_RE = re.compile(
    rf"(?:(?:{_MONTHS})\s+)?(?:\d{{1,2}},?\s+)?\$?\d[\d,.]*(?:\s*(?:%|percent|million|billion|"
    r"thousand|hundred|years?|months?|days?|hours?|minutes?|km|miles?|feet|meters?|"
    r"people|points|times))?|"
    rf"\b(?:{_MONTHS})\s+\d{{4}}"
)
_CONNECT = r"(?:of|the|de|du|la|le|von|van|der|and|for|&)"
_NAME_RE = re.compile(
    rf"\b[A-Z][\w'’.-]*[\w](?:\s+(?:{_CONNECT}\s+)?[A-Z][\w'’.-]*[\w]|\s+[A-Z]\b)*"
)
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z'-]+")
_STOP = frozenset(
    [
        "the",
        "a",
        "an",
        "of",
        "and",
        "or",
        "in",
        "on",
        "at",
        "to",
        "for",
        "from",
        "by",
        "with",
        "as",
        "is",
        "was",
        "were",
        "are",
        "be",
        "been",
        "that",
        "this",
        "which",
        "who",
        "whom",
        "what",
        "when",
        "where",
        "why",
        "how",
        "it",
        "its",
        "their",
        "his",
        "her",
        "they",
        "he",
        "she",
    ]
)


def answer_type(answer: str) -> str:
    """``number`` (has a digit), ``name`` (starts with a capital) or ``phrase``."""
    if re.search(r"\d", answer):
        return "number"
    stripped = answer.strip()
    if stripped[:1].isupper():
        return "name"
    return "phrase"


def _typed_spans(context: str, kind: str, length: int, rng: random.Random) -> list[str]:
    if kind == "number":
        return [m.group(0).strip(" ,.") for m in _NUMBER_RE.finditer(context)]
    if kind == "name":
        spans = []
        for m in _NAME_RE.finditer(context):
            before = context[: m.start()].rstrip()
            sentence_start = not before or before[-1] in '.!?"“'
            text = m.group(0).strip(" ,.")
            if sentence_start and " " not in text:
                continue  # a sentence's first word is capitalised for grammar, not as a name
            spans.append(text)
        return spans
    words = context.split()
    if len(words) <= length:
        return []
    starts = rng.sample(range(len(words) - length), min(8, len(words) - length))
    return [" ".join(words[s : s + length]).strip(" ,.;:()\"'") for s in starts]


def _far_from(candidate: str, golds: Sequence[str], f1: Callable[[str, str], float]) -> bool:
    low = candidate.lower().strip()
    if len(low) < 2:
        return False
    for gold in golds:
        g = gold.lower().strip()
        if low in g or g in low or f1(candidate, gold) >= 0.2:
            return False
    return True


def same_type_span(
    context: str, golds: Sequence[str], rng: random.Random, f1: Callable[[str, str], float]
) -> str | None:
    """A span of ``context`` of the same type as ``golds[0]`` that overlaps no gold answer."""
    kind = answer_type(golds[0])
    length = max(1, min(6, len(golds[0].split())))
    spans = [s for s in _typed_spans(context, kind, length, rng) if _far_from(s, golds, f1)]
    return rng.choice(spans) if spans else None


def swap_one(answer: str, names: Sequence[str], words: Sequence[str], rng: random.Random) -> str:
    """``answer`` with one number, or else one name, or else one content word replaced."""
    number = re.search(r"\d[\d,]*", answer)
    if number:
        raw = number.group(0).replace(",", "")
        value = int(raw) if raw.isdigit() else 0
        if 1000 <= value <= 2100 and len(raw) == 4:
            new = value + rng.choice([-1, 1]) * rng.randint(1, 30)
        else:
            delta = max(1, round(value * rng.uniform(0.2, 0.9)))
            new = value + delta if value < 2 or rng.random() < 0.5 else value - delta
        return answer[: number.start()] + str(new) + answer[number.end() :]
    name = _NAME_RE.search(answer)
    if name and names:
        other = rng.choice(names)
        return answer[: name.start()] + other + answer[name.end() :]
    content = [m for m in _WORD_RE.finditer(answer) if m.group(0).lower() not in _STOP]
    if content and words:
        m = rng.choice(content)
        return answer[: m.start()] + rng.choice(words) + answer[m.end() :]
    return answer


def sentence_group(group: Group, max_words: int = 45) -> Group | None:
    """The same question with whole-sentence answers, so that answer length and style tell
    nothing: the passage sentence holding the right answer (supported) against that sentence
    with the right answer replaced by each wrong short answer (unsupported).

    None when the right answer is not in one sentence of the passage or there is no wrong
    short answer to put in its place.
    """
    right = group.answers[0]
    holder = next(
        (s for s in split_sentences(group.passage) if right in s and len(s.split()) <= max_words),
        None,
    )
    if holder is None:
        return None
    answers, kinds = [holder], ["right_sentence"]
    for answer, kind in zip(group.answers[1:], group.kinds[1:], strict=True):
        if kind == "hallucinated" or not answer.strip():
            continue
        replaced = holder.replace(right, answer, 1)
        if replaced != holder and replaced not in answers:
            answers.append(replaced)
            kinds.append(f"{kind}_sentence")
    if len(answers) < 2:
        return None
    return Group(group.question, group.passage, answers, kinds, f"{group.source}_sentences")


def _with_sentences(groups: list[Group], share: float, rng: random.Random) -> list[Group]:
    out = list(groups)
    for group in groups:
        if share > 0 and rng.random() < share:
            extra = sentence_group(group)
            if extra is not None:
                out.append(extra)
    return out


def halueval_groups(
    rows: Sequence[HaluRow],
    rng: random.Random,
    span_negatives: bool = True,
    sentence_share: float = 0.0,
) -> list[Group]:
    """(right, hallucinated) per row; plus a same-type span of the knowledge for short answers,
    and for ``sentence_share`` of the rows a whole-sentence group (:func:`sentence_group`)."""
    from training.squad import token_f1

    groups = []
    for row in rows:
        answers = [row.right_answer, row.hallucinated_answer]
        kinds = ["right", "hallucinated"]
        if span_negatives and len(row.right_answer.split()) <= 5:
            span = same_type_span(row.knowledge, [row.right_answer], rng, token_f1)
            if span:
                answers.append(span)
                kinds.append("same_type")
        groups.append(Group(row.question, row.knowledge, answers, kinds, "halueval"))
    return _with_sentences(groups, sentence_share, rng)


def squad_groups(
    files: Sequence[str | Path], rng: random.Random, sentence_share: float = 0.0
) -> list[Group]:
    """One group per answered SQuAD question: gold answer, other-question answer, same-type
    span and swapped answer (those that can be made); and for ``sentence_share`` of the
    questions a whole-sentence group (:func:`sentence_group`)."""
    from training.squad import load_squad, normalize_answer, token_f1

    groups: list[Group] = []
    for file in files:
        questions = [q for q in load_squad(file) if q.answers]
        by_paragraph: dict[int, list[Any]] = defaultdict(list)
        for q in questions:
            by_paragraph[q.paragraph].append(q)
        names: list[str] = []
        words: list[str] = []
        for qs in by_paragraph.values():
            context = qs[0].context
            names.extend(_typed_spans(context, "name", 1, rng)[:10])
            words.extend(w for w in _WORD_RE.findall(context)[:40] if w.lower() not in _STOP)
        for qs in by_paragraph.values():
            context = qs[0].context
            for q in qs:
                golds = list(q.answers)
                answers, kinds = [golds[0]], ["right"]
                others = [
                    o.answers[0]
                    for o in qs
                    if o.id != q.id and _far_from(o.answers[0], golds, token_f1)
                ]
                if others:
                    answers.append(rng.choice(others))
                    kinds.append("other_question")
                span = same_type_span(context, golds, rng, token_f1)
                if span and span not in answers:
                    answers.append(span)
                    kinds.append("same_type")
                foreign = [n for n in rng.sample(names, min(20, len(names))) if n not in context]
                swapped = swap_one(golds[0], foreign, words, rng)
                if normalize_answer(swapped) not in {normalize_answer(g) for g in golds}:
                    answers.append(swapped)
                    kinds.append("swapped")
                if len(answers) > 1:
                    groups.append(Group(q.question, context, answers, kinds, "squad"))
    return _with_sentences(groups, sentence_share, rng)


# --- training -------------------------------------------------------------------------------


def _batches(groups: Sequence[Group], batch_size: int) -> list[list[Group]]:
    """Pack whole groups into batches of about ``batch_size`` pairs."""
    out: list[list[Group]] = []
    current: list[Group] = []
    size = 0
    for group in groups:
        current.append(group)
        size += len(group.answers)
        if size >= batch_size:
            out.append(current)
            current, size = [], 0
    if current:
        out.append(current)
    return out


def _endless(groups: list[Group], batch_size: int, rng: random.Random) -> Iterator[list[Group]]:
    while True:
        order = groups[:]
        rng.shuffle(order)
        yield from _batches(order, batch_size)


def _load_base(base: str | None, max_length: int, device: str = "cpu") -> Any:
    import transformers
    from sentence_transformers import CrossEncoder

    resolved = resolve(base, DEFAULT_EMBEDDER)
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        model = CrossEncoder(resolved.path, num_labels=1, max_length=max_length, device=device)
    finally:
        transformers.logging.set_verbosity(verbosity)
    return model, resolved


def _as_files(halueval: Path | Sequence[Path] | None) -> list[Path]:
    if halueval is None:
        return []
    if isinstance(halueval, (str, Path)):
        return [Path(halueval)]
    return [Path(f) for f in halueval]


def train_checker(
    out_dir: str | Path,
    halueval: Path | Sequence[Path] | None = None,
    squad_files: Sequence[Path] = (),
    *,
    base: str | None = None,
    halueval_rows: str | int | slice | None = 3000,
    epochs: float = 1.0,
    steps: int | None = None,
    batch_size: int = 16,
    learning_rate: float = 1e-4,
    loss: str = "both",
    freeze_embeddings: bool = True,
    precision: str = "auto",
    threads: int | None = None,
    sentence_share: float = 0.5,
    squad_limit: int | None = None,
    max_length: int = 256,
    max_seconds: float | None = None,
    seed: int = 0,
    progress: bool = False,
    device: str = "cpu",
) -> dict[str, Any]:
    """Fine-tune a one-logit cross-encoder checker and save it (with a README model card).

    ``base`` defaults to the packaged all-MiniLM-L6-v2 weights. ``halueval_rows`` picks the
    HaluEval rows to train on (N = the first N, ``"A:B"``, a slice, or None for all), in each
    HaluEval file given: QA, dialogue and summarization files are told apart by their fields
    (:mod:`training.halueval` says how each kind becomes groups). Training
    runs ``steps`` optimiser steps when given, else ``epochs`` passes over the groups, and stops
    early after ``max_seconds``. ``freeze_embeddings`` keeps the word-embedding matrix fixed
    (a third of MiniLM's weights; the optimiser step gets much cheaper and few-step training
    does not drift) and ``precision`` ``auto`` trains under bfloat16 autocast where the CPU
    multiplies bfloat16 natively. ``threads`` sets torch's intra-op threads: on a machine whose
    cores are busy with other work, 1 thread is many times faster than oversubscribed ones.
    ``sentence_share`` of the questions also get a whole-sentence group (the passage sentence
    holding the right answer against copies with a wrong answer swapped in), so that a long,
    fluent answer is not taken for a hallucination by its style. ``squad_limit`` keeps at most
    that many SQuAD groups (drawn at random), so that a mixed stage is not all SQuAD.
    ``device`` is a torch device (``cpu``, ``cuda``, ``cuda:1``): on a GPU ``precision`` ``auto``
    means bfloat16 autocast. Returns a summary dict (also saved as ``checker_training.json``).

    Raises :class:`CheckerDataError` for bad options or files that give no groups.
    """
    import torch

    if loss not in LOSSES:
        raise CheckerDataError(f"loss must be one of {', '.join(LOSSES)}, not {loss!r}")
    halueval_files = _as_files(halueval)
    if not halueval_files and not squad_files:
        raise CheckerDataError("nothing to train on: give --halueval FILE and/or --squad FILE")
    if batch_size < 2:
        raise CheckerDataError("batch size must be at least 2")
    device_type = check_device(device, CheckerDataError)
    rng = random.Random(seed)
    torch.manual_seed(seed)
    if threads is not None:
        torch.set_num_threads(max(1, threads))
    rows = parse_rows(halueval_rows)
    groups: list[Group] = []
    counts: dict[str, int] = {}
    for file in halueval_files:
        kind, records = load_file(file, rows)
        if kind == "qa":
            halu = halueval_groups(halu_rows(records), rng, sentence_share=sentence_share)
        elif kind == "dialogue":
            halu = dialogue_groups(records)
        else:
            halu = summary_groups(records)
        key = "halueval_groups" if kind == "qa" else f"halueval_{kind}_groups"
        counts[key] = counts.get(key, 0) + len(halu)
        groups.extend(halu)
    if squad_files:
        squad = squad_groups(squad_files, rng, sentence_share=sentence_share)
        if squad_limit is not None and len(squad) > squad_limit:
            squad = rng.sample(squad, squad_limit)
        counts["squad_groups"] = len(squad)
        groups.extend(squad)
    if not groups:
        raise CheckerDataError("the training files gave no usable question/answer groups")
    kinds: dict[str, int] = defaultdict(int)
    for g in groups:
        for k in g.kinds:
            kinds[k] += 1

    n_batches = len(_batches(groups, batch_size))
    total = steps if steps is not None else max(1, math.ceil(epochs * n_batches))
    warmup = max(1, min(total // 10, 30))

    try:
        cpu_bf16 = use_bf16(precision)  # also validates the name
    except ValueError as exc:
        raise CheckerDataError(str(exc)) from None
    bf16 = cpu_bf16 if device_type == "cpu" else precision != "fp32"
    model, resolved = _load_base(base, max_length, device)
    if freeze_embeddings:
        model.model.get_input_embeddings().weight.requires_grad_(False)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=learning_rate, weight_decay=0.01)
    bce = torch.nn.BCEWithLogitsLoss(reduction="none")
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="checker", unit="step")
    started = time.monotonic()
    history: list[dict[str, float]] = []
    running = 0.0
    done = 0
    seen_groups = 0
    for batch in _endless(groups, batch_size, rng):
        elapsed = time.monotonic() - started
        if done >= total or (max_seconds is not None and elapsed > max_seconds):
            break
        # Linear warm-up, then linear decay to zero by the last step or by max_seconds,
        # whichever comes first (so a time-bounded run still ends with a small learning rate).
        fraction = done / total
        if max_seconds is not None:
            fraction = max(fraction, elapsed / max_seconds)
        for param_group in optimizer.param_groups:
            param_group["lr"] = learning_rate * min(1.0, (done + 1) / warmup) * (1.0 - fraction)
        pairs = [p for g in batch for p in g.pairs()]
        features = model.preprocess(pairs)
        if device_type != "cpu":
            features = {k: v.to(device) if hasattr(v, "to") else v for k, v in features.items()}
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(features)["scores"].float().view(-1)
        labels = torch.zeros_like(logits)
        weights = torch.zeros_like(logits)
        listwise = logits.new_zeros(())
        start = 0
        for g in batch:
            n = len(g.answers)
            part = logits[start : start + n]
            listwise = listwise - torch.log_softmax(part, dim=0)[0]
            labels[start] = 1.0
            weights[start] = 0.5
            weights[start + 1 : start + n] = 0.5 / (n - 1)
            start += n
        pointwise = (bce(logits, labels) * weights).sum()
        if loss == "listwise":
            value = listwise
        elif loss == "pointwise":
            value = pointwise
        else:
            value = listwise + pointwise
        value = value / len(batch)
        value.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        optimizer.zero_grad()
        done += 1
        seen_groups += len(batch)
        current = float(value.detach())
        running = current if done == 1 else 0.98 * running + 0.02 * current
        if done % 50 == 0 or done == total:
            history.append(
                {"step": done, "loss": round(running, 4), "seconds": time.monotonic() - started}
            )
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{running:.3f}")
    if bar is not None:
        bar.close()
    seconds = time.monotonic() - started

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    model.save(str(out))
    summary: dict[str, Any] = {
        "out": str(out),
        "base": resolved.spec,
        # One file is recorded as a string (as before), several as a list.
        "halueval": [str(f) for f in halueval_files]
        if len(halueval_files) > 1
        else (str(halueval_files[0]) if halueval_files else None),
        "halueval_rows": _slice_text(rows) if halueval_files else None,
        "squad_files": [str(f) for f in squad_files],
        **counts,
        "answers_by_kind": dict(kinds),
        "loss": loss,
        "steps": done,
        "planned_steps": total,
        "groups_seen": seen_groups,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "max_length": max_length,
        "freeze_embeddings": freeze_embeddings,
        "bf16": bf16,
        "device": device,
        "seed": seed,
        "sentence_share": sentence_share,
        "squad_limit": squad_limit,
        "seconds": round(seconds, 1),
        "final_loss": round(running, 4),
        "history": history,
        "figures": {},
    }
    (out / "checker_training.json").write_text(json.dumps(summary, indent=2) + "\n")
    # Loaded with the extractive reader's judgement blended in when one is trained: measured,
    # it is what tells the right answer from another question's answer (see BENCHMARKS.md).
    # The blend's decision point (0.25) was calibrated on HaluEval rows the checker and the
    # reader never saw; it maps to 0.5, the service's default checker threshold.
    config = {
        "reader": "auto",
        "reader_weight": 0.5,
        "reader_max_words": DEFAULT_READER_MAX_WORDS,
        "reader_threshold": 0.25,
    }
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    write_model_card(out, summary)
    return summary


def _slice_text(rows: slice) -> str:
    lo = rows.start or 0
    return f"{lo}:{'' if rows.stop is None else rows.stop}"


def record_figures(out_dir: str | Path, name: str, figures: dict[str, Any]) -> None:
    """Add measured figures (for example a benchmark result) to a trained checker's card."""
    out = Path(out_dir)
    info_file = out / "checker_training.json"
    info: dict[str, Any] = json.loads(info_file.read_text()) if info_file.is_file() else {}
    info.setdefault("figures", {})[name] = figures
    info_file.write_text(json.dumps(info, indent=2) + "\n")
    write_model_card(out, info)


def write_model_card(out: Path, info: dict[str, Any]) -> None:
    """Write ``README.md``: what the checker is, what it was trained on, and its figures."""
    lines = [
        "# Tandem groundedness checker",
        "",
        "A sentence-transformers `CrossEncoder` (one logit, sigmoid score in 0..1) that says",
        "whether a passage supports an answer *to this question*. Input pair:",
        '`("question: {q} answer: {a}", passage_window)`. Load it with',
        "`smallmodels.checker.load_checker(PATH)`, or set Tandem's `checker` setting to PATH.",
        "",
        "## Training",
        "",
        f"- base: `{info.get('base')}`",
        f"- HaluEval: `{info.get('halueval')}` rows `{info.get('halueval_rows')}`",
        f"- SQuAD-format files: {', '.join(f'`{f}`' for f in info.get('squad_files', [])) or '-'}",
        f"- groups: {info.get('halueval_groups', 0)} HaluEval QA,"
        f" {info.get('halueval_dialogue_groups', 0)} HaluEval dialogue,"
        f" {info.get('halueval_summarization_groups', 0)} HaluEval summarization,"
        f" {info.get('squad_groups', 0)} SQuAD;"
        f" answers by kind: {json.dumps(info.get('answers_by_kind', {}))}",
        f"- loss: {info.get('loss')} (listwise = softmax cross-entropy over each group;"
        " pointwise = weighted binary cross-entropy)",
        f"- steps: {info.get('steps')} of {info.get('planned_steps')} planned, batch"
        f" {info.get('batch_size')} pairs, {info.get('groups_seen')} groups seen,"
        f" lr {info.get('learning_rate')}, max length {info.get('max_length')},"
        f" seed {info.get('seed')}",
        f"- seconds: {info.get('seconds')}, final loss (EMA): {info.get('final_loss')}",
        "",
        "## Figures",
        "",
    ]
    figures = info.get("figures") or {}
    if not figures:
        lines.append("None measured yet (`tandem bench faithfulness --checker PATH`).")
    for name, values in figures.items():
        lines.append(f"- {name}: `{json.dumps(values)}`")
    (out / "README.md").write_text("\n".join(lines) + "\n")


def summary_text(summary: dict[str, Any]) -> str:
    """A short human summary of :func:`train_checker`'s result."""
    parts = [
        f"checker saved to {summary['out']}",
        f"{summary['steps']} steps in {summary['seconds']} s, final loss {summary['final_loss']}",
        f"groups: {summary.get('halueval_groups', 0)} HaluEval, "
        f"{summary.get('squad_groups', 0)} SQuAD ({summary['groups_seen']} seen)",
    ]
    return "\n".join(parts)


__all__ = [
    "CheckerDataError",
    "Group",
    "HaluRow",
    "answer_type",
    "halueval_groups",
    "load_halueval",
    "parse_rows",
    "record_figures",
    "same_type_span",
    "squad_groups",
    "summary_text",
    "swap_one",
    "train_checker",
    "write_model_card",
]

"""Fine-tune a small cross-encoder reranker offline, from the packaged all-MiniLM-L6-v2 weights.

Training data are groups of one relevant passage and ``negatives`` hard negatives mined by
Tandem's own hybrid retriever (the candidates the reranker will see when serving), from either

* a SQuAD-format file: each question against its paragraph; the paragraphs are indexed in a
  temporary data folder, and mined paragraphs that contain one of the question's answers are
  skipped (they are probably relevant too); or
* the user's corpus alone (an existing index): pseudo-queries made from the corpus itself, a
  sentence of a chunk (word-dropped and cropped) asked against the rest of that chunk (inverse
  cloze); negatives are mined chunks of other documents.

The loss is listwise: cross-entropy over each group's logits, the relevant passage being the
target. The model is ``BertForSequenceClassification`` on MiniLM's encoder with a fresh 1-logit
head; inputs are short (``max_length`` tokens, passages cut to their best window around the
query, as :class:`~smallmodels.reranker.CrossEncoderReranker` does when scoring). Training runs
under bfloat16 autocast on CPUs with native bfloat16 and stops at ``steps`` or at the time
budget, whichever comes first (the learning-rate schedule follows the nearer one).

A held-out slice of the queries (never trained on) measures hybrid vs hybrid+rerank nDCG@10 and
picks the fusion weight of the first-stage rank (:mod:`retrievers.rerank`); the result is a
CrossEncoder folder with ``tandem_reranker.json`` and a README model card.

This module drives the index builder and the retriever (imported lazily, only for training).
"""

from __future__ import annotations

import json
import math
import random
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import UsageError
from core.text import split_sentences
from smallmodels.reranker import (
    CONFIG_FILE,
    DEFAULT_TOP_N,
    CrossEncoderReranker,
    focus_passage,
    passage_word_budget,
)
from smallmodels.spec import resolve
from training.squad import SquadQuestion, load_squad, split_heldout

DEFAULT_NEGATIVES = 3
DEFAULT_MAX_QUESTIONS = 2000
DEFAULT_HELDOUT = 100
TRAIN_MAX_LENGTH = 96
"""Tokens per pair when training (and in the folder it writes): short and fast; the passage is
cut to its window around the query words, see :func:`smallmodels.reranker.focus_passage`."""
MINE_DEPTH = 30
"""Hybrid candidates mined per query; negatives are drawn from the best of them."""
NEGATIVE_POOL = 12
FUSION_GRID = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)


@dataclass
class Group:
    """One training query: its relevant passage and a pool of mined negatives."""

    query: str
    positive: str
    negatives: list[str]
    key: str = ""
    """The relevant document's key (paragraph or doc id), for held-out evaluation."""
    candidates: list[str] = field(default_factory=list)
    """Held-out only: document keys of the hybrid ranking, best first (one per document)."""
    texts: list[str] = field(default_factory=list)
    """Held-out only: the texts of ``candidates``."""


# -- data --------------------------------------------------------------------------------------
def _normalise(text: str) -> str:
    return " ".join(text.lower().split())


def _dedup_hits(hits: Sequence[Any], key_of: Callable[[Any], str]) -> list[tuple[str, str]]:
    """``(key, text)`` per document, best chunk first, in rank order."""
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    for hit in hits:
        key = key_of(hit)
        if key not in seen:
            seen.add(key)
            out.append((key, hit.text))
    return out


def _search(retriever: Any, queries: list[str], depth: int) -> list[Any]:
    results = []
    for start in range(0, len(queries), 256):
        results.extend(
            retriever.search_many(queries[start : start + 256], top_k=depth, rerank=False)
        )
    return results


def squad_groups(
    questions: Sequence[SquadQuestion],
    work_dir: Path,
    *,
    index_dir: Path | None = None,
    heldout: int,
    max_questions: int | None,
    seed: int,
    log: Callable[[str], None],
) -> tuple[list[Group], list[Group], dict[str, Any]]:
    """Index the paragraphs, mine hybrid negatives; (train, held-out, figures).

    The mining index lives in ``index_dir`` when given (a later run on the same paragraphs
    reuses its vectors), else in ``work_dir``.
    """
    from indexers.builder import BuildOptions, run_build
    from retrievers.retriever import Retriever

    corpus = work_dir / "corpus" / "paragraphs.jsonl"
    corpus.parent.mkdir(parents=True, exist_ok=True)
    key_of_line: dict[str, str] = {}
    contexts: dict[str, str] = {}
    with corpus.open("w", encoding="utf-8") as fh:
        for q in questions:
            key = f"{q.source}#{q.paragraph}"
            if key in contexts:
                continue
            contexts[key] = q.context
            key_of_line[f"paragraphs.jsonl#L{len(contexts)}"] = key
            fh.write(json.dumps({"text": q.context, "title": q.title}) + "\n")
    log(f"indexing {len(contexts)} paragraphs to mine hard negatives")
    t = time.perf_counter()
    index_root = index_dir or work_dir / "data"
    run_build(
        index_root,
        "reranker-train",
        [corpus.parent],
        "build",
        BuildOptions(dedup=False, chunk_tokens=254),
    )
    build_s = time.perf_counter() - t
    train_q, held_q = split_heldout(questions, heldout, seed)
    held_q = held_q[:heldout]
    rng = random.Random(seed)
    if max_questions is not None and len(train_q) > max_questions:
        train_q = rng.sample(train_q, max_questions)
    retriever = Retriever(index_root, "reranker-train", candidates=MINE_DEPTH)
    try:
        t = time.perf_counter()
        every = list(train_q) + list(held_q)
        results = _search(retriever, [q.question for q in every], MINE_DEPTH)
        mine_s = time.perf_counter() - t
    finally:
        retriever.close()

    def key_of(hit: Any) -> str:
        return key_of_line.get(hit.doc_id, hit.doc_id)

    train: list[Group] = []
    held: list[Group] = []
    for i, (q, res) in enumerate(zip(every, results, strict=True)):
        gold = f"{q.source}#{q.paragraph}"
        ranked = _dedup_hits(res.hits, key_of)
        answers = [_normalise(a) for a in q.answers if a.strip()]
        negatives = [
            text
            for key, text in ranked
            if key != gold and not any(a in _normalise(text) for a in answers)
        ]
        group = Group(q.question, contexts[gold], negatives[:NEGATIVE_POOL], gold)
        if i < len(train_q):
            train.append(group)
        else:
            group.candidates = [k for k, _ in ranked]
            group.texts = [text for _, text in ranked]
            held.append(group)
    figures = {
        "source": "squad",
        "paragraphs": len(contexts),
        "index_seconds": round(build_s, 1),
        "mine_seconds": round(mine_s, 1),
    }
    return train, held, figures


def _sentences(text: str) -> list[str]:
    return split_sentences(" ".join(text.split()), lines="join")


def pseudo_query(sentence: str, rng: random.Random, max_words: int = 20) -> str:
    """A question-sized query from a sentence: a crop of it with a few words dropped."""
    words = sentence.split()
    if len(words) > max_words:
        start = rng.randrange(len(words) - max_words + 1)
        words = words[start : start + max_words]
    kept = [w for w in words if rng.random() > 0.25]
    return " ".join(kept if len(kept) >= 3 else words)


def corpus_groups(
    data_dir: Path,
    index: str,
    *,
    heldout: int,
    max_questions: int | None,
    seed: int,
    keep_sentence: float = 0.5,
    log: Callable[[str], None],
    store_options: Mapping[str, Any] | None = None,
) -> tuple[list[Group], list[Group], dict[str, Any]]:
    """Pseudo-queries from the chunks of index ``index``; (train, held-out, figures).

    Each sampled chunk gives one query: one of its sentences (6-60 words), cropped and
    word-dropped. The relevant passage is the chunk without that sentence, or, with probability
    ``keep_sentence``, the whole chunk. Held-out queries always keep their chunk whole, so that
    they are judged against the indexed text. ``store_options`` open the index's vector store
    (a Qdrant server's URL, for example; see :class:`retrievers.retriever.Retriever`).
    """
    from retrievers.retriever import Retriever

    retriever = Retriever(data_dir, index, candidates=MINE_DEPTH, store_options=store_options)
    try:
        chunks = retriever.snapshot.chunks.all_chunks()
        rng = random.Random(seed)
        usable = []
        for c in chunks:
            sents = _sentences(c.text)
            good = [s for s in sents if 6 <= len(s.split()) <= 60]
            if len(sents) >= 2 and good and len(c.text.split()) >= 30:
                usable.append((c, sents, good))
        if len(usable) < 2:
            raise UsageError(
                f"index {index!r} has too few chunks of two or more sentences to make "
                "pseudo-queries from"
            )
        rng.shuffle(usable)
        held_n = min(heldout, max(1, len(usable) // 5))  # at most a fifth, at least one
        limit = held_n + (max_questions if max_questions is not None else len(usable))
        usable = usable[:limit]
        queries: list[str] = []
        positives: list[str] = []
        for i, (c, sents, good) in enumerate(usable):
            sentence = rng.choice(good)
            queries.append(pseudo_query(sentence, rng))
            if i < held_n or rng.random() < keep_sentence:
                positives.append(c.text)
            else:
                positives.append(" ".join(s for s in sents if s != sentence))
        log(f"mining negatives for {len(queries)} pseudo-queries from {len(chunks)} chunks")
        t = time.perf_counter()
        results = _search(retriever, queries, MINE_DEPTH)
        mine_s = time.perf_counter() - t
    finally:
        retriever.close()
    train: list[Group] = []
    held: list[Group] = []
    for i, ((c, _, _), query, pos, res) in enumerate(
        zip(usable, queries, positives, results, strict=True)
    ):
        ranked = _dedup_hits(res.hits, lambda h: str(h.doc_id))
        negatives = [text for key, text in ranked if key != c.doc_id]
        group = Group(query, pos, negatives[:NEGATIVE_POOL], c.doc_id)
        if i < held_n:
            group.candidates = [k for k, _ in ranked]
            group.texts = [text for _, text in ranked]
            held.append(group)
        else:
            train.append(group)
    figures = {
        "source": "corpus",
        "index": index,
        "chunks": len(chunks),
        "mine_seconds": round(mine_s, 1),
        "keep_sentence": keep_sentence,
    }
    return train, held, figures


# -- evaluation --------------------------------------------------------------------------------
def ndcg10(ranked_keys: Sequence[str], gold: str) -> float:
    """nDCG@10 with one relevant document."""
    for rank, key in enumerate(ranked_keys[:10], start=1):
        if key == gold:
            return 1.0 / math.log2(rank + 1)
    return 0.0


def evaluate_heldout(
    reranker: CrossEncoderReranker, held: Sequence[Group], top_n: int
) -> dict[str, Any]:
    """Hybrid vs reranked nDCG@10 on held-out queries, for each fusion weight of the grid."""
    from retrievers.rerank import fuse

    if not held:
        return {"queries": 0}
    logits = []
    t = time.perf_counter()
    for g in held:
        logits.append(reranker.score(g.query, g.texts[:top_n]))
    seconds = time.perf_counter() - t
    pairs = sum(len(x) for x in logits)
    hybrid = float(np.mean([ndcg10(g.candidates, g.key) for g in held]))
    by_weight: dict[str, float] = {}
    for w in FUSION_GRID:
        scores = []
        for g, lg in zip(held, logits, strict=True):
            order = np.argsort(-fuse(lg, w), kind="stable")
            keys = [g.candidates[i] for i in order] + g.candidates[len(lg) :]
            scores.append(ndcg10(keys, g.key))
        by_weight[str(w)] = round(float(np.mean(scores)), 4)
    best = max(FUSION_GRID, key=lambda w: (by_weight[str(w)], -w))
    return {
        "queries": len(held),
        "top_n": top_n,
        "hybrid_ndcg@10": round(hybrid, 4),
        "rerank_ndcg@10": by_weight["0.0"],
        "fused_ndcg@10": by_weight[str(best)],
        "fusion": best,
        "by_fusion": by_weight,
        "pairs_per_s": round(pairs / seconds, 1) if seconds else None,
    }


# -- training ----------------------------------------------------------------------------------
def int8_backend_here() -> str:
    """The int8 backend to measure: ONNX Runtime's when installed (faster), else PyTorch's."""
    from smallmodels.backends import onnx_runtime_available

    return "onnx-int8" if onnx_runtime_available() else "torch-int8"


def _progress(total: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, file=sys.stderr, desc="train", unit="step")


def _fast_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="ignore")
    except OSError:
        return False
    return bool(re.search(r"\b(avx512_bf16|amx_bf16)\b", flags))


def _batch_pairs(
    groups: Sequence[Group], negatives: int, rng: random.Random, max_length: int
) -> tuple[list[str], list[str], int]:
    """Queries and passages of a batch: per group the positive then ``negatives`` negatives."""
    queries: list[str] = []
    passages: list[str] = []
    for g in groups:
        pool = list(g.negatives)
        picked = rng.sample(pool, negatives) if len(pool) >= negatives else pool
        query = " ".join(g.query.split())
        budget = passage_word_budget(query, max_length)
        for text in [g.positive, *picked]:
            queries.append(query)
            passages.append(focus_passage(query, text, budget))
    return queries, passages, 1 + negatives


def train_reranker(
    out_dir: str | Path,
    *,
    squad_files: Sequence[str | Path] | None = None,
    corpus_index: str | None = None,
    data_dir: str | Path | None = None,
    steps: int | None = None,
    epochs: float = 1.0,
    negatives: int = DEFAULT_NEGATIVES,
    max_questions: int | None = DEFAULT_MAX_QUESTIONS,
    seed: int = 0,
    progress: bool = True,
    base: str | None = None,
    lr: float = 2e-4,
    batch_groups: int = 8,
    max_length: int = TRAIN_MAX_LENGTH,
    heldout: int = DEFAULT_HELDOUT,
    top_n: int = DEFAULT_TOP_N,
    max_minutes: float | None = None,
    train_layers: int | None = 3,
    threads: int = 2,
    log: Callable[[str], None] | None = None,
    store_options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Fine-tune a cross-encoder and write it to ``out_dir``; returns the figures.

    Give exactly one of ``squad_files`` (SQuAD-format files) or ``corpus_index`` (an index in
    ``data_dir`` to make pseudo-queries from). ``steps`` overrides ``epochs`` (passes over the
    mined groups, ``batch_groups`` groups of 1 + ``negatives`` pairs per step);
    ``max_minutes`` stops training early on a busy machine. ``train_layers``: how many of the
    encoder's top layers are trained (None: all); the lower ones and the embeddings stay as
    they are, which makes a step about half as costly. With ``squad_files``, ``data_dir`` (if
    given) keeps the mining index, so a second run on the same file skips most of its cost.
    ``store_options`` open the vector store of ``corpus_index`` (the application's
    ``Settings.store_options()``).
    """
    import torch

    say = log or (lambda msg: print(msg, file=sys.stderr) if progress else None)
    if (squad_files is None or not list(squad_files)) == (corpus_index is None):
        raise UsageError("give exactly one of squad_files or corpus_index")
    if negatives < 1 or batch_groups < 1 or max_length < 32:
        raise UsageError("negatives and batch_groups must be >= 1, max_length >= 32")
    if corpus_index is not None and data_dir is None:
        raise UsageError("corpus_index needs the data_dir that holds the index")
    out = Path(out_dir)
    started = time.perf_counter()
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = random.Random(seed)

    with tempfile.TemporaryDirectory(prefix="tandem-reranker-") as tmp:
        if squad_files:
            questions: list[SquadQuestion] = []
            for f in squad_files:
                questions.extend(q for q in load_squad(f) if q.question.strip() and q.answers)
            if len(questions) < 2:
                raise UsageError("the SQuAD file(s) hold fewer than two answerable questions")
            train, held, data = squad_groups(
                questions,
                Path(tmp),
                index_dir=Path(data_dir) if data_dir is not None else None,
                heldout=heldout,
                max_questions=max_questions,
                seed=seed,
                log=say,
            )
            data["files"] = [Path(f).name for f in squad_files]
        else:
            assert corpus_index is not None and data_dir is not None
            train, held, data = corpus_groups(
                Path(data_dir),
                corpus_index,
                heldout=heldout,
                max_questions=max_questions,
                seed=seed,
                log=say,
                store_options=store_options,
            )
        train = [g for g in train if g.negatives]
        if not train:
            raise UsageError("no training query has a mined negative: the corpus is too small")
        data.update(train_queries=len(train), heldout_queries=len(held))

        model, tokenizer = fresh_model(base, train_layers)
        planned = steps or max(1, math.ceil(epochs * len(train) / batch_groups))
        say(
            f"training on {len(train)} queries x (1 + {negatives}) passages: {planned} steps"
            + (f", at most {max_minutes} min" if max_minutes else "")
        )
        t_train = time.perf_counter()
        done, losses = _train_loop(
            model,
            tokenizer,
            train,
            steps=planned,
            negatives=negatives,
            batch_groups=batch_groups,
            lr=lr,
            max_length=max_length,
            budget_s=max_minutes * 60 if max_minutes else None,
            rng=rng,
            progress=progress,
        )
        train_s = time.perf_counter() - t_train
        save_cross_encoder(model, tokenizer, out, Path(tmp) / "hf", max_length)

    config: dict[str, Any] = {
        "max_length": max_length,
        "top_n": top_n,
        "fusion": 0.0,
        "backend": "torch",
    }
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    int8_backend = int8_backend_here()
    say(f"evaluating on {len(held)} held-out queries (fp32, then {int8_backend})")
    heldout_fig = evaluate_heldout(CrossEncoderReranker(str(out), backend="torch"), held, top_n)
    int8_fig = evaluate_heldout(CrossEncoderReranker(str(out), backend=int8_backend), held, top_n)
    if heldout_fig.get("queries"):
        config["fusion"] = heldout_fig["fusion"]
        # int8 serves by default when it loses at most half a point of nDCG@10 held out.
        fp32_best = heldout_fig["fused_ndcg@10"]
        int8_at_w = int8_fig["by_fusion"][str(heldout_fig["fusion"])]
        if int8_at_w >= fp32_best - 0.005:
            config["backend"] = int8_backend
        heldout_fig["int8"] = {
            "backend": int8_backend,
            "fused_ndcg@10": int8_at_w,
            "rerank_ndcg@10": int8_fig["rerank_ndcg@10"],
            "pairs_per_s": int8_fig["pairs_per_s"],
        }
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    figures: dict[str, Any] = {
        "out": str(out),
        "base": resolve(base).name,
        "data": data,
        "negatives": negatives,
        "batch_groups": batch_groups,
        "steps": done,
        "planned_steps": planned,
        "epochs": round(done * batch_groups / len(train), 3),
        "lr": lr,
        "max_length": max_length,
        "train_layers": train_layers,
        "seed": seed,
        "train_seconds": round(train_s, 1),
        "train_pairs_per_s": round(done * batch_groups * (1 + negatives) / train_s, 1)
        if train_s
        else None,
        "first_loss": round(float(np.mean(losses[:10])), 4) if losses else None,
        "last_loss": round(float(np.mean(losses[-10:])), 4) if losses else None,
        "heldout": heldout_fig,
        "config": config,
        "seconds": round(time.perf_counter() - started, 1),
    }
    (out / "README.md").write_text(_model_card(figures), encoding="utf-8")
    (out / "training.json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return figures


def fresh_model(base: str | None, train_layers: int | None = None) -> tuple[Any, Any]:
    """MiniLM's encoder with a newly initialised 1-logit head, and its tokenizer.

    Only the top ``train_layers`` encoder layers (and the pooler and head) stay trainable.
    """
    import logging

    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    path = resolve(base).path
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    logging.getLogger("transformers").setLevel(logging.ERROR)
    try:
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
    finally:
        hf_logging.set_verbosity(level)
    tokenizer = AutoTokenizer.from_pretrained(path)
    # The word embeddings stay as they are: few steps of training move them little, and
    # leaving them out of the optimiser saves a third of its work.
    model.get_input_embeddings().weight.requires_grad_(False)
    if train_layers is not None:
        base_model = getattr(model, model.base_model_prefix)
        layers = base_model.encoder.layer
        base_model.embeddings.requires_grad_(False)
        for layer in layers[: max(0, len(layers) - train_layers)]:
            layer.requires_grad_(False)
    return model, tokenizer


def _train_loop(
    model: Any,
    tokenizer: Any,
    train: list[Group],
    *,
    steps: int,
    negatives: int,
    batch_groups: int,
    lr: float,
    max_length: int,
    budget_s: float | None,
    rng: random.Random,
    progress: bool,
) -> tuple[int, list[float]]:
    """Listwise training; returns (steps done, loss per step)."""
    import torch

    head = [p for n, p in model.named_parameters() if n.startswith("classifier")]
    body = [p for n, p in model.named_parameters() if p.requires_grad and "classifier" not in n]
    optim = torch.optim.AdamW(
        [{"params": body, "lr": lr}, {"params": head, "lr": lr * 10}], weight_decay=0.01
    )
    base_lrs = [lr, lr * 10]
    warmup = max(1, int(0.06 * steps))
    use_bf16 = _fast_bf16()
    model.train()
    order: list[int] = []
    losses: list[float] = []
    start = time.perf_counter()
    bar = _progress(steps, progress)
    done = 0
    for step in range(steps):
        elapsed = time.perf_counter() - start
        if budget_s is not None and step > 0 and elapsed >= budget_s:
            break
        frac = max(step / steps, elapsed / budget_s if budget_s else 0.0)
        factor = min(1.0, (step + 1) / warmup) * max(0.0, 1.0 - frac)
        for group, base_lr in zip(optim.param_groups, base_lrs, strict=True):
            group["lr"] = base_lr * max(factor, 0.02)
        if len(order) < batch_groups:
            fresh = list(range(len(train)))
            rng.shuffle(fresh)
            order.extend(fresh)
        batch = [train[i] for i in order[:batch_groups]]
        del order[:batch_groups]
        k = min(negatives, *(len(g.negatives) for g in batch))
        queries, passages, size = _batch_pairs(batch, k, rng, max_length)
        enc = tokenizer(
            queries,
            passages,
            truncation="longest_first",
            max_length=max_length,
            padding=True,
            return_tensors="pt",
        )
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
            logits = model(**enc).logits.view(len(batch), size).float()
        loss = torch.nn.functional.cross_entropy(logits, torch.zeros(len(batch), dtype=torch.long))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        optim.zero_grad(set_to_none=True)
        losses.append(float(loss.item()))
        done += 1
        bar.update(1)
        if done % 10 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-10:]):.3f}")
    bar.close()
    model.eval()
    return done, losses


def save_cross_encoder(
    model: Any, tokenizer: Any, out: Path, hf_dir: Path, max_length: int
) -> None:
    """Write a sentence-transformers CrossEncoder folder."""
    from sentence_transformers import CrossEncoder

    model.requires_grad_(True)
    model.save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    ce = CrossEncoder(str(hf_dir), max_length=max_length, device="cpu")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    ce.save(str(out))


def _model_card(f: dict[str, Any]) -> str:
    data = f["data"]
    held = f["heldout"]
    if data["source"] == "squad":
        source = (
            f"questions of {', '.join(data['files'])} against their paragraphs "
            f"({data['paragraphs']} paragraphs indexed)"
        )
    else:
        source = (
            f"pseudo-queries from the chunks of index `{data['index']}` ({data['chunks']} "
            f"chunks): a cropped, word-dropped sentence asked against the rest of its chunk "
            f"(whole chunk kept with p={data['keep_sentence']})"
        )
    lines = [
        "---",
        "library_name: sentence-transformers",
        "pipeline_tag: text-ranking",
        "tags: [cross-encoder, reranker, tandem]",
        "---",
        "",
        "# Tandem cross-encoder reranker",
        "",
        f"Fine-tuned by `tandem reranker train` from `{f['base']}` (all-MiniLM-L6-v2 encoder, "
        "fresh 1-logit head), listwise: one relevant passage and "
        f"{f['negatives']} hard negatives mined by Tandem's hybrid retriever per query.",
        "",
        f"- Data: {source}; {data['train_queries']} training queries, "
        f"{data['heldout_queries']} held out.",
        f"- Steps: {f['steps']} of {f['planned_steps']} planned, {f['batch_groups']} queries "
        f"per step (~{f['epochs']} epochs), lr {f['lr']}, max_length {f['max_length']}, "
        f"trained layers: {f'top {n}' if (n := f['train_layers']) else 'all'}, seed {f['seed']}.",
        f"- Seconds: {f['train_seconds']} training ({f['train_pairs_per_s']} pairs/s), "
        f"{f['seconds']} in all. Loss {f['first_loss']} -> {f['last_loss']}.",
    ]
    if held.get("queries"):
        lines += [
            f"- Held-out ({held['queries']} queries, top {held['top_n']} hybrid candidates "
            f"reranked): nDCG@10 hybrid {held['hybrid_ndcg@10']}, cross-encoder alone "
            f"{held['rerank_ndcg@10']}, fused with the first-stage rank (weight "
            f"{held['fusion']}) {held['fused_ndcg@10']}; {held['pairs_per_s']} pairs/s in "
            f"fp32. int8 ({held['int8'].get('backend', 'torch-int8')}): fused "
            f"{held['int8']['fused_ndcg@10']}, "
            f"{held['int8']['pairs_per_s']} pairs/s. Default backend: "
            f"{f['config']['backend']}.",
        ]
    lines += [
        "",
        "Settings used when Tandem loads this folder are in `tandem_reranker.json` "
        "(`max_length`, `top_n`, `fusion`, `backend`); spec options override them, for "
        f"example `{f['out']}@backend=torch,top_n=30`.",
        "",
    ]
    return "\n".join(lines)

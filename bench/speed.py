"""Model speed: PyTorch against ONNX Runtime (fp32 and int8), and the index build's overhead.

* :func:`encoder_speed`: texts/s of the embedder's backends on the same texts, each against the
  raw PyTorch ``SentenceTransformer.encode`` (batch 64). Runs are interleaved (torch, onnx,
  onnx-int8, torch, ...) and each backend's best round counts, so a load spike on a shared
  machine hits one round, not one backend. Also the agreement of the vectors with PyTorch's
  (mean and minimum cosine).
* :func:`reranker_speed`: pairs/s of a cross-encoder in PyTorch (``CrossEncoder.predict``) and
  ONNX Runtime int8 (:class:`smallmodels.onnx_backend.OnnxCrossEncoder`), interleaved the same
  way, and what int8 changes in its ranking: for each question, its gold paragraph among
  ``negatives`` others; accuracy@1 and MRR of the gold paragraph under each backend.
* :func:`build_overhead`: from an index manifest, the share of the build that is not encoding
  (``1 - embed_s / seconds``; the encoder runs in the background, so waiting for it is counted
  as encoding time only where it was busy).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from smallmodels.spec import resolve

EMBEDDER_BACKENDS = ("torch", "onnx", "onnx-int8")


def backend_spec(base: str | None, backend: str) -> str:
    # Always explicit: a bare spec means the default backend (ONNX int8 where installed).
    name = base or resolve(None).spec
    return f"{name}{',' if '@' in name else '@'}backend={backend}"


def encoder_speed(
    texts: Sequence[str],
    *,
    model: str | None = None,
    backends: Sequence[str] = EMBEDDER_BACKENDS,
    batch_size: int = 64,
    rounds: int = 2,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Texts/s of each backend and of raw PyTorch on ``texts`` (see the module docstring)."""
    from smallmodels.embedder import load_embedder

    texts = list(texts)
    embedders = {b: load_embedder(backend_spec(model, b)) for b in backends}
    raw = next(iter(embedders.values())).model  # the PyTorch SentenceTransformer

    def run_raw() -> np.ndarray:
        return np.asarray(
            raw.encode(
                texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False
            )
        )

    def runner(embedder: Any) -> Callable[[], np.ndarray]:
        return lambda: np.asarray(embedder.encode(texts, batch_size=batch_size))

    runners: dict[str, Callable[[], np.ndarray]] = {"raw torch": run_raw}
    runners |= {b: runner(e) for b, e in embedders.items()}
    raw.encode(texts[:8], show_progress_bar=False)  # warm-up: first calls pay one-off costs
    for e in embedders.values():
        e.encode(texts[:8])
    best: dict[str, float] = {}
    vectors: dict[str, np.ndarray] = {}
    for r in range(rounds):
        for name, run in runners.items():
            t = time.perf_counter()
            vectors[name] = run()
            seconds = time.perf_counter() - t
            best[name] = min(best.get(name, float("inf")), seconds)
            if log:
                log(f"encode round {r + 1}: {name} {len(texts) / seconds:.1f} texts/s")
    ref = vectors["raw torch"]
    out: dict[str, Any] = {"texts": len(texts), "batch_size": batch_size, "rounds": rounds}
    rates = {name: len(texts) / s for name, s in best.items()}
    out["texts_per_s"] = {k: round(v, 1) for k, v in rates.items()}
    out["speedup_vs_raw_torch"] = {
        k: round(v / rates["raw torch"], 3) for k, v in rates.items() if k != "raw torch"
    }
    out["cosine_vs_torch"] = {
        k: {
            "mean": round(float((v * ref).sum(1).mean()), 5),
            "min": round(float((v * ref).sum(1).min()), 5),
        }
        for k, v in vectors.items()
        if k != "raw torch"
    }
    return out


def rerank_items(
    questions: Sequence[Any], limit: int, negatives: int = 9, seed: int = 0
) -> list[tuple[str, list[str]]]:
    """``(question, [gold paragraph, negatives...])`` for ``limit`` sampled questions."""
    rng = random.Random(seed)
    paragraphs: dict[int, str] = {}
    for q in questions:
        paragraphs.setdefault(q.paragraph, q.context)
    keys = list(paragraphs)
    items = []
    for q in rng.sample(list(questions), min(limit, len(questions))):
        others = [paragraphs[k] for k in rng.sample(keys, negatives + 1) if k != q.paragraph]
        items.append((q.question, [q.context, *others[:negatives]]))
    return items


def _ranking(scores: Sequence[np.ndarray]) -> dict[str, float]:
    """Accuracy@1 and MRR of candidate 0 (the gold paragraph) under ``scores``."""
    ranks = [int((s > s[0]).sum()) + 1 for s in scores]
    return {
        "accuracy@1": round(float(np.mean([r == 1 for r in ranks])), 4),
        "mrr": round(float(np.mean([1 / r for r in ranks])), 4),
    }


def reranker_speed(
    spec: str,
    items: Sequence[tuple[str, list[str]]],
    *,
    max_length: int = 256,
    batch_size: int = 32,
    rounds: int = 2,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Pairs/s and ranking quality of a cross-encoder in PyTorch and ONNX int8."""
    import torch
    from sentence_transformers import CrossEncoder

    from smallmodels.onnx_backend import OnnxCrossEncoder

    resolved = resolve(spec, spec)
    torch_model = CrossEncoder(resolved.path, device="cpu", max_length=max_length)
    onnx_model = OnnxCrossEncoder(resolved, quantized=True, max_length=max_length)
    pairs = [(q, p) for q, ps in items for p in ps]
    sizes = [len(ps) for _, ps in items]

    def run_torch() -> np.ndarray:
        return np.asarray(
            torch_model.predict(
                pairs,
                batch_size=batch_size,
                show_progress_bar=False,
                activation_fn=torch.nn.Identity(),  # raw logits, as ONNX gives them
            ),
            dtype=np.float32,
        ).reshape(-1)

    def run_onnx() -> np.ndarray:
        return onnx_model.predict(pairs, batch_size=batch_size)

    runners = {"torch": run_torch, "onnx-int8": run_onnx}
    best: dict[str, float] = {}
    scores: dict[str, np.ndarray] = {}
    for r in range(rounds):
        for name, run in runners.items():
            t = time.perf_counter()
            scores[name] = run()
            seconds = time.perf_counter() - t
            best[name] = min(best.get(name, float("inf")), seconds)
            if log:
                log(f"rerank round {r + 1}: {name} {len(pairs) / seconds:.1f} pairs/s")
    split = np.cumsum(sizes)[:-1]
    quality = {k: _ranking(np.split(v, split)) for k, v in scores.items()}
    rates = {k: len(pairs) / s for k, s in best.items()}
    a, b = scores["torch"], scores["onnx-int8"]
    return {
        "model": resolved.name,
        "pairs": len(pairs),
        "max_length": max_length,
        "pairs_per_s": {k: round(v, 1) for k, v in rates.items()},
        "speedup": round(rates["onnx-int8"] / rates["torch"], 3),
        "ranking": quality,
        "accuracy@1_loss": round(
            quality["torch"]["accuracy@1"] - quality["onnx-int8"]["accuracy@1"], 4
        ),
        "score_correlation": round(float(np.corrcoef(a, b)[0, 1]), 5),
    }


def build_overhead(manifest: dict[str, Any]) -> dict[str, Any]:
    """Encoding time against the whole build, from a manifest's ``timings_s`` and ``seconds``."""
    timings = manifest.get("timings_s", {})
    seconds = float(manifest.get("seconds") or 0.0)
    embed = float(timings.get("embed_s", 0.0))
    return {
        "seconds": round(seconds, 2),
        "encode_s": round(embed, 2),
        "overhead": round(1 - embed / seconds, 4) if seconds else None,
        "timings_s": timings,
        "backend_spec": manifest.get("embedder", {}).get("spec"),
    }


def index_manifest(data_dir: Path, name: str) -> dict[str, Any]:
    from stores.layout import IndexLayout

    manifest: dict[str, Any] = IndexLayout(data_dir, name).manifest()
    return manifest

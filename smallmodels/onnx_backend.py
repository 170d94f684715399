"""ONNX Runtime backends for the embedder and cross-encoders, fp32 or dynamically quantised int8.

Selected per model spec: ``SPEC@backend=onnx`` (fp32) or ``SPEC@backend=onnx-int8``. The model
is exported once with ``torch.onnx.export`` (the TorchScript exporter: it needs neither optimum
nor onnxscript, and works offline), then quantised with ONNX Runtime's ``quantize_dynamic``
(int8 weights, per output channel, MatMul only: per-tensor scales or quantised embeddings cost
far more quality for little speed). Texts are run one per call, unpadded, by parallel workers
(see :data:`CALL_BATCH`). The files are cached under the
``onnx_cache`` folder of :mod:`smallmodels.runtime` (default ``~/.cache/tandem/onnx``; the
application's onnx_cache setting) in a folder named after the model's
fingerprint, so the export happens once per model and machine; concurrent processes wait on a
file lock rather than export twice.

* :class:`OnnxEmbedder` replaces :class:`smallmodels.embedder.SentenceTransformerEmbedder` for
  sentence-transformers folders made of Transformer + Pooling (+ Normalize); pooling (mean, CLS
  or max) and normalisation run in numpy.
* :class:`OnnxCrossEncoder` scores (query, passage) pairs: the raw logits of a
  sequence-classification model, as ``sentence_transformers.CrossEncoder.predict`` gives them
  without an activation.

Needs the ``onnx`` extra (``onnxruntime`` and ``onnx``); a missing package is a
:class:`core.errors.UsageError` naming it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from core.errors import UsageError
from smallmodels import runtime
from smallmodels.spec import ResolvedModel, fingerprint

log = logging.getLogger(__name__)

#: Bump when the exported graph or the quantisation recipe changes: old caches are not reused.
EXPORT_FORMAT = 1
OPSET = 17
FP32_FILE = "model.onnx"
INT8_FILE = "model-int8.onnx"
META_FILE = "tandem_onnx.json"

Kind = Literal["embedder", "cross-encoder"]


def cache_root() -> Path:
    """Where exported models live: the configured ``onnx_cache`` (:mod:`smallmodels.runtime`),
    else ``~/.cache/tandem/onnx``."""
    return runtime.current().onnx_cache_dir()


def require_runtime() -> Any:
    """``onnxruntime``, or a :class:`UsageError` saying how to install it."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise UsageError(
            "the onnx backends need onnxruntime and onnx: pip install 'tandem[onnx]'"
        ) from exc
    return onnxruntime


# -- sentence-transformers folder layout ---------------------------------------------------------
@dataclass(frozen=True)
class StLayout:
    """Where the parts of a sentence-transformers folder are, as the ONNX path needs them."""

    transformer: Path
    pooling: str
    max_seq_length: int
    do_lower_case: bool


def st_layout(root: Path) -> StLayout:
    """Read ``modules.json`` and friends; only Transformer + Pooling (+ Normalize) models."""
    modules_file = root / "modules.json"
    if not modules_file.is_file():  # a bare transformers folder: mean pooling, as ST would do
        return StLayout(root, "mean", _max_len(root, {}), False)
    modules = json.loads(modules_file.read_text(encoding="utf-8"))
    transformer = root
    pooling = "mean"
    for m in modules:
        kind = str(m.get("type", "")).rsplit(".", 1)[-1]
        path = root / m.get("path", "")
        if kind == "Transformer":
            transformer = path
        elif kind == "Pooling":
            pooling = _pooling_mode(path)
        elif kind != "Normalize":
            raise UsageError(
                f"the onnx backend supports Transformer + Pooling (+ Normalize) models; "
                f"{root.name} has a {kind} module: use backend=torch"
            )
    conf: dict[str, Any] = {}
    for name in ("sentence_bert_config.json",):
        f = transformer / name
        if f.is_file():
            conf = json.loads(f.read_text(encoding="utf-8"))
    return StLayout(
        transformer, pooling, _max_len(transformer, conf), bool(conf.get("do_lower_case"))
    )


def _pooling_mode(folder: Path) -> str:
    conf = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if conf.get("pooling_mode_cls_token"):
        return "cls"
    if conf.get("pooling_mode_max_tokens"):
        return "max"
    if conf.get("pooling_mode_mean_tokens", True):
        return "mean"
    raise UsageError(f"pooling in {folder} is not supported by the onnx backend")


def _max_len(folder: Path, conf: dict[str, Any]) -> int:
    if conf.get("max_seq_length"):
        return int(conf["max_seq_length"])
    model_conf = folder / "config.json"
    if model_conf.is_file():
        data = json.loads(model_conf.read_text(encoding="utf-8"))
        return int(min(512, data.get("max_position_embeddings", 512)))
    return 512


# -- export and cache ------------------------------------------------------------------------
def export_dir(resolved: ResolvedModel, kind: Kind) -> Path:
    """The cache folder of ``resolved`` exported as ``kind``."""
    key = f"{fingerprint(resolved)}|{kind}|{EXPORT_FORMAT}|{OPSET}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in resolved.name)[:60]
    return cache_root() / f"{safe}-{kind}-{digest}"


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_onnx(resolved: ResolvedModel, kind: Kind, quantized: bool) -> Path:
    """The ONNX file of ``resolved`` (exported and quantised on first use, then cached)."""
    if resolved.source == "hub" and not Path(resolved.path).is_dir():
        raise UsageError(f"the onnx backend needs a local model folder, not {resolved.path!r}")
    folder = export_dir(resolved, kind)
    target = folder / (INT8_FILE if quantized else FP32_FILE)
    if target.is_file():
        return target
    require_runtime()
    with _file_lock(folder.parent / f".{folder.name}.lock"):
        if target.is_file():  # another process finished it while we waited
            return target
        folder.mkdir(parents=True, exist_ok=True)
        fp32 = folder / FP32_FILE
        if not fp32.is_file():
            _atomic(fp32, lambda tmp: _export(Path(resolved.path), kind, tmp))
        if quantized:
            _atomic(target, lambda tmp: quantize_int8(fp32, tmp))
        meta = {
            "model": resolved.name,
            "fingerprint": fingerprint(resolved),
            "kind": kind,
            "format": EXPORT_FORMAT,
            "opset": OPSET,
            "files": sorted(p.name for p in folder.glob("*.onnx")),
        }
        (folder / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return target


def _atomic(target: Path, write: Any) -> None:
    """Write ``target`` through a temporary file in the same folder, then rename it."""
    fd, tmp_name = tempfile.mkstemp(prefix=target.name, suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        tmp.chmod(0o644)  # mkstemp makes it private; the cache may serve other users' processes
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _export(root: Path, kind: Kind, out: Path) -> None:
    """``torch.onnx.export`` of the model's transformer (last hidden state, or logits)."""
    import torch
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

    started = time.perf_counter()
    folder = st_layout(root).transformer if kind == "embedder" else root
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    if kind == "embedder":
        model = AutoModel.from_pretrained(str(folder))
        output = "last_hidden_state"
    else:
        model = AutoModelForSequenceClassification.from_pretrained(str(folder))
        output = "logits"
    model.eval()
    sample = tokenizer(
        ["an example sentence to trace", "a second one"],
        ["with a pair", "of passages"] if kind == "cross-encoder" else None,
        padding=True,
        return_tensors="pt",
    )
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]
    wrapper = _wrap(model, names, output)
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    axes[output] = {0: "batch", 1: "sequence"} if kind == "embedder" else {0: "batch"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            tuple(sample[n] for n in names),
            str(out),
            input_names=names,
            output_names=[output],
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )
    log.info("exported %s (%s) to ONNX in %.1fs", root.name, kind, time.perf_counter() - started)


def _wrap(model: Any, names: list[str], output: str) -> Any:
    """A module taking ``names`` as positional inputs and returning one named output."""
    import torch

    class Wrapped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: Any) -> Any:
            out = self.model(**dict(zip(names, inputs, strict=True)))
            return getattr(out, output)

    return Wrapped()


def quantize_int8(source: Path, target: Path) -> None:
    """Dynamic int8 quantisation: per-channel int8 weights of every MatMul."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quiet its "consider pre-processing" warning, for this call only
    try:
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
        )
    finally:
        root.setLevel(level)


# -- sessions --------------------------------------------------------------------------------
#: Texts (or pairs) per ONNX Runtime call. One: no padding at all, which on a CPU is faster
#: than any padded batch (measured: 39 paragraphs/s at 1, 25 at 16 with int8), and with dynamic
#: int8 quantisation it keeps a text's vector independent of the texts it happens to be
#: encoded with (activation scales are computed per call, padding included), so a query
#: embeds the same alone or micro-batched. Throughput comes from the parallel workers.
CALL_BATCH = 1


def default_threads() -> int:
    """Parallel workers: the configured ``onnx_threads`` (:mod:`smallmodels.runtime`), else
    torch's setting (the service sets it) when PyTorch is loaded, else the CPU count."""
    configured = runtime.current().onnx_threads
    if configured is not None:
        return max(1, int(configured))
    if "torch" not in sys.modules:  # serving released models: do not import PyTorch for this
        return max(1, os.cpu_count() or 1)
    try:
        import torch

        return max(1, int(torch.get_num_threads()))
    except ImportError:  # pragma: no cover - torch is a core dependency
        return max(1, os.cpu_count() or 1)


def open_session(path: Path, intra_threads: int = 1) -> Any:
    """A CPU session. One intra-op thread: parallelism comes from :class:`BatchRunner`, whose
    workers run batches side by side (faster than one batch over several threads, much faster
    on a busy machine, where ONNX Runtime's spinning threads wait on each other)."""
    ort = require_runtime()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = intra_threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


class BatchRunner:
    """Runs a session over many batches with ``workers`` threads (sessions are thread-safe)."""

    def __init__(self, session: Any, workers: int) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.session = session
        self.workers = max(1, workers)
        self._pool = ThreadPoolExecutor(self.workers, "tandem-onnx") if self.workers > 1 else None
        self.seconds = 0.0

    def run(self, feeds: Sequence[dict[str, np.ndarray]]) -> list[np.ndarray]:
        """The first output of each feed, in order."""
        return [outputs[0] for outputs in self.run_all(feeds)]

    def run_all(self, feeds: Sequence[dict[str, np.ndarray]]) -> list[list[np.ndarray]]:
        """Every output of each feed, in order."""
        t = time.perf_counter()
        if self._pool is None or len(feeds) < 2:
            out = [self.session.run(None, f) for f in feeds]
        else:
            out = list(self._pool.map(lambda f: self.session.run(None, f), feeds))
        self.seconds += time.perf_counter() - t
        return out


def _options_threads(options: dict[str, str]) -> int | None:
    raw = options.get("threads")
    if raw is None:
        return None
    try:
        return max(1, int(raw))
    except ValueError:
        raise UsageError(f"threads={raw!r} is not a number") from None


class OnnxEmbedder:
    """Sentence embeddings from an ONNX Runtime session; the embedder interface of Tandem.

    Same ``fingerprint`` as the PyTorch embedder of the same weights: vectors agree to a cosine
    of about 0.99 (int8) or 1.0 (fp32), so an index built with one can be queried with the other.
    """

    def __init__(self, resolved: ResolvedModel, *, quantized: bool = True) -> None:
        from transformers import AutoTokenizer

        self.resolved = resolved
        self.backend = "onnx-int8" if quantized else "onnx"
        layout = st_layout(Path(resolved.path))
        self.layout = layout
        self.path = ensure_onnx(resolved, "embedder", quantized)
        self.session = open_session(self.path)
        self.runner = BatchRunner(
            self.session, _options_threads(resolved.options) or default_threads()
        )
        self._inputs = [i.name for i in self.session.get_inputs()]
        #: Public tokenizer (chunking, token counts); encoding uses its own copy under a lock,
        #: since a fast tokenizer is not safe to call from several threads at once.
        self.tokenizer = AutoTokenizer.from_pretrained(str(layout.transformer))
        self._encode_tokenizer = AutoTokenizer.from_pretrained(str(layout.transformer))
        self._tokenizer_lock = threading.Lock()
        self.name = resolved.name
        self.spec = resolved.spec
        self.max_seq_length = int(layout.max_seq_length)
        config = json.loads((layout.transformer / "config.json").read_text(encoding="utf-8"))
        self.dimension = int(config["hidden_size"])
        self.fingerprint = fingerprint(resolved)
        self.texts_encoded = 0

    def _features(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        batch = [t.lower() for t in texts] if self.layout.do_lower_case else list(texts)
        with self._tokenizer_lock:
            enc = self._encode_tokenizer(
                batch,
                padding=True,
                truncation=True,
                max_length=self.max_seq_length,
                return_tensors="np",
            )
        return {n: np.asarray(enc[n], dtype=np.int64) for n in self._inputs}

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """L2-normalised float32 vectors, :data:`CALL_BATCH` texts per model call.

        ``batch_size`` is accepted for the embedder interface; it does not change the vectors.
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        size = max(1, min(batch_size, CALL_BATCH))
        order = np.argsort([-len(t) for t in texts], kind="stable")
        groups = [order[i : i + size] for i in range(0, len(texts), size)]
        feeds = [self._features([texts[i] for i in idx]) for idx in groups]
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for idx, feed, hidden in zip(groups, feeds, self.runner.run(feeds), strict=True):
            out[idx] = self._pool(hidden, feed["attention_mask"])
        self.texts_encoded += len(texts)
        return out

    def _pool(self, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
        m = mask[..., None].astype(np.float32)
        if self.layout.pooling == "cls":
            vec = hidden[:, 0]
        elif self.layout.pooling == "max":
            vec = np.where(m > 0, hidden, -1e9).max(axis=1)
        else:
            vec = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(vec, axis=1, keepdims=True)
        return np.asarray(vec / np.clip(norms, 1e-12, None), dtype=np.float32)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        enc = self.tokenizer(list(texts), add_special_tokens=False, truncation=False)
        return [len(ids) for ids in enc["input_ids"]]

    def tokenize_offsets(self, text: str) -> list[tuple[int, int]]:
        enc = self.tokenizer(
            text, add_special_tokens=False, truncation=False, return_offsets_mapping=True
        )
        return [(int(a), int(b)) for a, b in enc["offset_mapping"]]


class OnnxCrossEncoder:
    """(query, passage) scores (raw logits, first label) from an ONNX Runtime session.

    ``max_length`` truncates each pair the way ``CrossEncoder`` does (longest first).
    """

    def __init__(
        self,
        resolved: ResolvedModel,
        *,
        quantized: bool = True,
        max_length: int = 512,
        threads: int | None = None,
    ) -> None:
        from transformers import AutoTokenizer

        self.resolved = resolved
        self.backend = "onnx-int8" if quantized else "onnx"
        self.path = ensure_onnx(resolved, "cross-encoder", quantized)
        self.session = open_session(self.path)
        self.runner = BatchRunner(
            self.session, threads or _options_threads(resolved.options) or default_threads()
        )
        self._inputs = [i.name for i in self.session.get_inputs()]
        self.tokenizer = AutoTokenizer.from_pretrained(resolved.path)
        self._tokenizer_lock = threading.Lock()
        self.max_length = max_length
        self.name = resolved.name

    def predict(self, pairs: Sequence[tuple[str, str]], batch_size: int = 32) -> np.ndarray:
        """One float32 logit per pair (the first output column)."""
        if not pairs:
            return np.zeros(0, dtype=np.float32)
        size = max(1, min(batch_size, CALL_BATCH))
        order = np.argsort([-(len(q) + len(p)) for q, p in pairs], kind="stable")
        groups = [order[i : i + size] for i in range(0, len(pairs), size)]
        feeds = []
        for idx in groups:
            with self._tokenizer_lock:
                enc = self.tokenizer(
                    [pairs[i][0] for i in idx],
                    [pairs[i][1] for i in idx],
                    padding=True,
                    truncation="longest_first",
                    max_length=self.max_length,
                    return_tensors="np",
                )
            feeds.append({n: np.asarray(enc[n], dtype=np.int64) for n in self._inputs})
        out = np.empty(len(pairs), dtype=np.float32)
        for idx, logits in zip(groups, self.runner.run(feeds), strict=True):
            out[idx] = logits[:, 0] if logits.ndim == 2 else logits
        return out

    def score(self, query: str, texts: Sequence[str]) -> np.ndarray:
        return self.predict([(query, t) for t in texts])


def clear_cache(resolved: ResolvedModel, kind: Kind) -> None:
    """Remove the cached export of ``resolved`` (tests, or after a bad export)."""
    shutil.rmtree(export_dir(resolved, kind), ignore_errors=True)

"""The released small models: int8 ONNX files shipped inside the package, served without PyTorch.

Tandem carries its trained reader, checker and reranker in ``smallmodels/released/<name>/``
(``make release-models`` writes them from the ``make models`` folders, see
:mod:`training.release`)::

    model.onnx            int8 ONNX (dynamically quantised MatMul and Gather weights)
    tokenizer.json        the fast tokenizer, read with the ``tokenizers`` package
    tandem_release.json   kind, input names, max length, source fingerprint, quantisation
    tandem_checker.json / tandem_reranker.json   the settings the model was trained and tuned with
    README.md             the model card (data, recipe, held-out figures, licences)
    SHA256SUMS            sha256 of every other file but README.md, checked when loaded

They are served by ONNX Runtime and ``tokenizers`` alone: nothing here imports PyTorch,
transformers or sentence-transformers. Specs name them ``released:reader`` (or
``tandem-reader``), ``released:checker`` and ``released:reranker``; the default reader and
checker are the released ones unless ``make models`` left its own under ``models/``.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ModelNotFound, UsageError

#: Where the released models live inside the installed package.
RELEASED_ROOT = Path(__file__).resolve().parent / "released"
#: The ``make models`` folders (git-ignored) that take precedence when present.
LOCAL_ROOT = Path(__file__).resolve().parents[1] / "models"
RELEASE_FILE = "tandem_release.json"
MANIFEST = "SHA256SUMS"
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
#: Release folder name per model kind (the same names ``make models`` uses under ``models/``).
FOLDERS: dict[str, str] = {
    "reader": "reader-minilm",
    "checker": "checker-minilm",
    "reranker": "reranker-squad",
}


def release_alias(spec: str) -> Path | None:
    """The released folder a spec names (``released:reader``, ``tandem-reader``, ``released:
    reader-minilm``, ...), or None when ``spec`` names none. A released name whose folder is
    missing is a :class:`ModelNotFound`."""
    base = spec.strip().lower()
    name: str | None = None
    if base.startswith("released:"):
        name = base.split(":", 1)[1]
        if not name:
            raise ModelNotFound("released: needs a model name (reader, checker or reranker)")
    elif base.startswith("tandem-") and base[len("tandem-") :] in FOLDERS:
        name = base[len("tandem-") :]
    if name is None:
        return None
    folder = RELEASED_ROOT / FOLDERS.get(name, name)
    if not (folder / RELEASE_FILE).is_file():
        known = ", ".join(f"released:{k}" for k in FOLDERS)
        raise ModelNotFound(
            f"no released model {spec!r} in {RELEASED_ROOT} (known: {known}); "
            "`make release-models` writes them"
        )
    return folder


def released_folder(kind: str) -> Path:
    """The released folder of ``kind`` (``reader``, ``checker``, ``reranker``); it may be absent."""
    return RELEASED_ROOT / FOLDERS[kind]


def default_folder(kind: str) -> str:
    """``models/<name>`` when ``make models`` left one there, else the released model (else
    ``models/<name>`` all the same, so that errors name the folder to train)."""
    local = LOCAL_ROOT / FOLDERS[kind]
    if local.is_dir():
        return str(local)
    released = released_folder(kind)
    if (released / RELEASE_FILE).is_file():
        return str(released)
    return str(local)


def is_release(path: str | Path) -> bool:
    """Whether ``path`` is a released-model folder (it has ``tandem_release.json``)."""
    return (Path(path) / RELEASE_FILE).is_file()


def read_release(path: str | Path) -> dict[str, Any]:
    """The ``tandem_release.json`` of a released folder."""
    try:
        data = json.loads((Path(path) / RELEASE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelNotFound(f"released model {path}: {RELEASE_FILE} is unreadable: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelNotFound(f"released model {path}: {RELEASE_FILE} is not a JSON object")
    return data


# -- the manifest ----------------------------------------------------------------------------
def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest_files(folder: Path) -> list[Path]:
    """The files a manifest covers: every file of ``folder`` but the card and the manifest."""
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.name not in {MANIFEST, "README.md"}
    )


def write_manifest(folder: str | Path) -> Path:
    """Write ``SHA256SUMS`` (``sha256sum`` format) for :func:`manifest_files`."""
    root = Path(folder)
    lines = [f"{sha256_file(p)}  {p.name}" for p in manifest_files(root)]
    target = root / MANIFEST
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


_verified: dict[tuple[str, float], bool] = {}
_verify_lock = threading.Lock()


def verify(folder: str | Path) -> None:
    """Check every file named in ``SHA256SUMS`` (once per process and manifest version).

    A missing manifest, a missing file or a digest mismatch is a :class:`ModelNotFound` that
    names the file."""
    root = Path(folder)
    manifest = root / MANIFEST
    if not manifest.is_file():
        raise ModelNotFound(f"released model {root.name}: {MANIFEST} is missing in {root}")
    key = (str(root.resolve()), manifest.stat().st_mtime)
    with _verify_lock:
        if _verified.get(key):
            return
        listed: dict[str, str] = {}
        for line in manifest.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            digest, _, name = line.strip().partition("  ")
            listed[name.lstrip("*")] = digest.lower()
        for required in (MODEL_FILE, TOKENIZER_FILE, RELEASE_FILE):
            if required not in listed:
                raise ModelNotFound(
                    f"released model {root.name}: {required} is not listed in {manifest}"
                )
        for name, expected in listed.items():
            path = root / name
            if not path.is_file():
                raise ModelNotFound(f"released model {root.name}: {path} is missing")
            actual = sha256_file(path)
            if actual != expected:
                raise ModelNotFound(
                    f"released model {root.name}: {path} does not match {MANIFEST} "
                    f"(sha256 {actual[:12]}…, expected {expected[:12]}…): the file is damaged "
                    "or was changed; reinstall Tandem or rerun `make release-models`"
                )
        _verified[key] = True


# -- tokenizer -------------------------------------------------------------------------------
class PairTokenizer:
    """A ``tokenizers.Tokenizer`` for (first, second) text pairs, safe to share between threads.

    The fast tokenizer's truncation settings are state, so every call sets them under a lock.
    """

    def __init__(self, path: str | Path) -> None:
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(path))
        self._tok.no_padding()
        self._tok.no_truncation()
        self._lock = threading.Lock()
        self.pad_id = int(self._tok.token_to_id("[PAD]") or 0)

    @classmethod
    def from_backend(cls, backend: Any) -> PairTokenizer:
        """A private copy of a ``tokenizers.Tokenizer`` (a transformers fast tokenizer's
        ``backend_tokenizer``), so that its settings are not shared."""
        from tokenizers import Tokenizer

        self = cls.__new__(cls)
        self._tok = Tokenizer.from_str(backend.to_str())
        self._tok.no_padding()
        self._tok.no_truncation()
        self._lock = threading.Lock()
        self.pad_id = int(self._tok.token_to_id("[PAD]") or 0)
        return self

    def offsets(self, text: str) -> list[tuple[int, int]]:
        """Character offsets of ``text``'s tokens (no special tokens, no truncation)."""
        with self._lock:
            self._tok.no_truncation()
            enc = self._tok.encode(text, add_special_tokens=False)
        return [(int(a), int(b)) for a, b in enc.offsets]

    def windows(
        self, first: str, seconds: Sequence[str], max_length: int, stride: int
    ) -> list[tuple[int, Any]]:
        """``(index into seconds, encoding)`` of every window of every (first, second) pair,
        the second text truncated into overlapping windows (``only_second``), as the
        transformers fast tokenizer makes them with ``return_overflowing_tokens``."""
        with self._lock:
            self._tok.enable_truncation(max_length, stride=stride, strategy="only_second")
            try:
                encs = self._tok.encode_batch([(first, s) for s in seconds])
            finally:
                self._tok.no_truncation()
        out: list[tuple[int, Any]] = []
        for i, enc in enumerate(encs):
            out.append((i, enc))
            out.extend((i, o) for o in enc.overflowing)
        return out

    def pairs(self, pairs: Sequence[tuple[str, str]], max_length: int) -> list[Any]:
        """One encoding per pair, cut to ``max_length`` tokens (``longest_first``)."""
        with self._lock:
            self._tok.enable_truncation(max_length, strategy="longest_first")
            try:
                return list(self._tok.encode_batch(list(pairs)))
            finally:
                self._tok.no_truncation()


# -- sessions --------------------------------------------------------------------------------
class ReleasedModel:
    """An ONNX Runtime session and tokenizer of one released folder (checked against its
    manifest first)."""

    def __init__(self, folder: str | Path, kind: str, *, threads: int | None = None) -> None:
        from smallmodels.onnx_backend import BatchRunner, default_threads, open_session

        self.folder = Path(folder)
        self.meta = read_release(self.folder)
        if self.meta.get("kind") != kind:
            raise UsageError(
                f"{self.folder} is a released {self.meta.get('kind')!r} model, not a {kind}"
            )
        verify(self.folder)
        self.name = str(self.meta.get("name") or self.folder.name)
        self.max_length = int(self.meta.get("max_length", 512))
        self.session = open_session(self.folder / MODEL_FILE)
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.runner = BatchRunner(self.session, threads or default_threads())
        self.tokenizer = PairTokenizer(self.folder / TOKENIZER_FILE)

    def feed(self, enc: Any) -> dict[str, np.ndarray]:
        """The session inputs of one encoding (a batch of one)."""
        arrays = {
            "input_ids": enc.ids,
            "attention_mask": enc.attention_mask,
            "token_type_ids": enc.type_ids,
        }
        return {n: np.asarray([arrays[n]], dtype=np.int64) for n in self.inputs}

    def run_all(self, feeds: Sequence[dict[str, np.ndarray]]) -> list[list[np.ndarray]]:
        """Every output of each feed, in order (parallel workers, see ``BatchRunner``)."""
        return self.runner.run_all(feeds)


class ReleasedCrossEncoder:
    """A released one-logit cross-encoder (checker or reranker): raw logits of text pairs, as
    ``sentence_transformers.CrossEncoder.predict`` gives them without an activation."""

    def __init__(self, folder: str | Path, kind: str, *, max_length: int | None = None) -> None:
        self.model = ReleasedModel(folder, kind)
        self.name = self.model.name
        self.max_length = int(max_length or self.model.max_length)
        self.num_labels = int(self.model.meta.get("num_labels", 1))

    def predict(self, pairs: Sequence[tuple[str, str]], batch_size: int = 32) -> np.ndarray:
        """One float32 logit per pair (one unpadded pair per ONNX Runtime call)."""
        del batch_size  # one pair per call: no padding, parallel workers (see CALL_BATCH)
        if not pairs:
            return np.zeros(0, dtype=np.float32)
        encs = self.model.tokenizer.pairs(pairs, self.max_length)
        feeds = [self.model.feed(e) for e in encs]
        outs = self.model.runner.run(feeds)
        return np.asarray([float(np.asarray(o).reshape(-1)[0]) for o in outs], dtype=np.float32)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function, without overflow warnings."""
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))

"""The one vocabulary of model backends, shared by every model kind.

* ``torch``: PyTorch, fp32;
* ``torch-int8``: PyTorch with every Linear layer dynamically quantised to int8;
* ``torch-bf16``: PyTorch under bfloat16 autocast (fast only on CPUs with native bfloat16);
* ``onnx``: ONNX Runtime, fp32 (exported once and cached, see :mod:`smallmodels.onnx_backend`);
* ``onnx-int8``: ONNX Runtime with dynamically quantised int8 MatMuls.

A model kind that supports only some of them passes its own ``allowed`` set to
:func:`parse_backend` (the embedder has no ``torch-int8`` nor ``torch-bf16``).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Collection
from typing import Literal, cast

from core.errors import UsageError

Backend = Literal["torch", "torch-int8", "torch-bf16", "onnx", "onnx-int8"]
#: Every backend, in the order they are listed to users.
BACKENDS: tuple[Backend, ...] = ("torch", "torch-int8", "torch-bf16", "onnx", "onnx-int8")
#: The backends served by ONNX Runtime (they need the ``onnx`` extra).
ONNX_BACKENDS: tuple[Backend, ...] = ("onnx", "onnx-int8")
#: The backends of the embedder.
EMBEDDER_BACKENDS: tuple[Backend, ...] = ("torch", "onnx", "onnx-int8")
#: The backends of the cross-encoders (reranker).
CROSS_ENCODER_BACKENDS: tuple[Backend, ...] = BACKENDS


def parse_backend(
    value: str | None,
    *,
    allowed: Collection[Backend] = BACKENDS,
    default: Backend = "torch",
    kind: str = "model",
) -> Backend:
    """``value`` (case and surrounding spaces ignored) as a :data:`Backend` of ``allowed``;
    ``default`` when it is empty or None. Anything else is a :class:`UsageError` naming the
    choices of this ``kind`` of model."""
    raw = (value or "").strip().lower()
    if not raw:
        return default
    if raw not in allowed:
        choices = ", ".join(b for b in BACKENDS if b in allowed)
        raise UsageError(f"unknown {kind} backend {raw!r}: choose {choices}")
    return cast(Backend, raw)


def is_onnx(backend: str) -> bool:
    """Whether ``backend`` runs on ONNX Runtime."""
    return backend in ONNX_BACKENDS


def onnx_runtime_available() -> bool:
    """Whether ONNX Runtime is installed (the ONNX backends need it)."""
    return importlib.util.find_spec("onnxruntime") is not None

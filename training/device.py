"""The torch device a training run asks for, checked before any data is read."""

from __future__ import annotations

from core.errors import UsageError


def check_device(device: str, error: type[UsageError] = UsageError) -> str:
    """``"cpu"`` or ``"cuda"``: the type of the torch device ``device`` (``cpu``, ``cuda`` or
    ``cuda:N``). Raises ``error`` (a :class:`UsageError`) for any other name, and for ``cuda``
    when torch sees no CUDA device."""
    kind = device.split(":", 1)[0]
    if kind not in {"cpu", "cuda"}:
        raise error(f"device must be cpu or cuda[:N], not {device!r}")
    if kind == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise error("device cuda asked for, but torch sees no CUDA device")
    return kind

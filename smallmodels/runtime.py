"""Process-wide model runtime values, set explicitly by the application.

The small models never read the environment. A few values are the same for every model of a
process and would otherwise have to be threaded through every loader call; the application sets
them once with :func:`configure` (Tandem's ``app.runtime.configure_lower_layers``), and the
models read them with :func:`current`. Unset (None) values mean the built-in defaults.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

DEFAULT_ONNX_CACHE = Path("~/.cache/tandem/onnx")


@dataclass(frozen=True)
class ModelRuntime:
    """The model runtime values in force."""

    onnx_cache: Path | None = None
    """Folder of the ONNX exports; None: ``~/.cache/tandem/onnx``."""
    onnx_threads: int | None = None
    """Parallel ONNX Runtime workers per model; None: torch's thread setting."""
    embedder_backend: str | None = None
    """Backend of embedder specs that choose none; None: the embedder's default."""
    checker: str | None = None
    """Checker spec used when none is given; None: the packaged default folder."""

    def onnx_cache_dir(self) -> Path:
        """The ONNX export folder, ``~`` expanded."""
        return (self.onnx_cache or DEFAULT_ONNX_CACHE).expanduser()


_lock = threading.Lock()
_current = ModelRuntime()


def current() -> ModelRuntime:
    """The values in force (defaults until :func:`configure` is called)."""
    return _current


def configure(**values: Any) -> ModelRuntime:
    """Set some values (the others keep theirs); returns the previous configuration, which
    :func:`restore` puts back. Unknown names are a :class:`TypeError`."""
    global _current
    known = {f.name for f in fields(ModelRuntime)}
    unknown = set(values) - known
    if unknown:
        raise TypeError(f"unknown model runtime values: {', '.join(sorted(unknown))}")
    if values.get("onnx_cache") is not None:
        values["onnx_cache"] = Path(values["onnx_cache"])
    if values.get("onnx_threads") is not None:
        values["onnx_threads"] = max(1, int(values["onnx_threads"]))
    with _lock:
        previous = _current
        _current = replace(_current, **values)
    return previous


def restore(previous: ModelRuntime) -> None:
    """Put back a configuration returned by :func:`configure` (tests)."""
    global _current
    with _lock:
        _current = previous

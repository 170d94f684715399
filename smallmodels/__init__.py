"""Small models: embedder, reranker, reader and checker, and where their weights come from."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
# Quiet the "Loading weights" bars and warnings of transformers 5 without importing it here
# (about a second: light modules such as smallmodels.runtime are imported by every command).
# transformers reads both settings when it is first imported; when it already is, set them.
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
if "transformers" in sys.modules:  # pragma: no cover - depends on the import order
    from transformers.utils import logging as _hf_logging

    _hf_logging.disable_progress_bar()
    _hf_logging.set_verbosity_error()
elif "huggingface_hub" in sys.modules:  # pragma: no cover - depends on the import order
    from huggingface_hub.utils import disable_progress_bars as _disable_hub_bars

    _disable_hub_bars()

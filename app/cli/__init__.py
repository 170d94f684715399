"""The ``tandem`` command line (entry point ``app.cli:main``).

``tandem --json ...`` prints machine output: one JSON object, or one JSON line per item for
batch calls. Bad input prints one line on stderr and exits 2 (usage) or 1 (failure).

Layout: :mod:`app.cli.root` builds the root command from the explicit list of groups in
``GROUPS`` (one module each: ``index``, ``search``, ``serve``, ``ask``, ``worker``,
``reranker``, ``reader``, ``checker``) plus ``tandem.cli`` entry points (``tandem bench``);
:mod:`app.cli.common` holds what they share, including the one error mapper.
"""

from __future__ import annotations

from app.cli.root import cli, main

__all__ = ["cli", "main"]

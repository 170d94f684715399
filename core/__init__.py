"""Tandem's bottom layer: the error root and the text utilities every layer shares.

Nothing here imports a model, a web framework or another Tandem package; every other package
may import it (the layers contract in ``pyproject.toml``, checked by ``make lint``).

- :mod:`core.errors`: :class:`~core.errors.TandemError` (code, HTTP status, exit code) and the
  error kinds shared by several layers.
- :mod:`core.text`: the one sentence splitter, SQuAD answer normalisation and EM/F1, and the
  citation-marker grammar.
"""

from core.errors import MissingDependency, ModelNotFound, NotConfigured, TandemError, UsageError

__all__ = ["MissingDependency", "ModelNotFound", "NotConfigured", "TandemError", "UsageError"]

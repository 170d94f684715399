"""Errors of online retrieval."""

from __future__ import annotations

from core.errors import TandemError


class RerankerUnavailable(TandemError):
    """Reranking was asked for but no reranker is configured."""

    code = "reranker_unavailable"
    status = 409


class UnknownFilterField(TandemError):
    """A filter names a field that no document of the index has: a typo, not an empty
    result."""

    code = "unknown_filter_field"
    status = 400
    exit_code = 2

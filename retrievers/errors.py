"""Errors of online retrieval."""

from __future__ import annotations

from core.errors import TandemError


class RerankerUnavailable(TandemError):
    """Reranking was asked for but no reranker is configured."""

    code = "reranker_unavailable"
    status = 409

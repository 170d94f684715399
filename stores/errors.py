"""Errors of the index stores (part of the one TandemError hierarchy)."""

from __future__ import annotations

from core.errors import TandemError


class IndexNotFound(TandemError):
    code = "index_not_found"
    status = 404


class IndexBusy(TandemError):
    """Another job holds the index's build lock."""

    code = "index_busy"
    status = 409


class EmbedderMismatch(TandemError):
    """An index was queried or updated with an embedder other than the one it was built with."""

    code = "embedder_mismatch"
    status = 409


class InvalidIndexName(TandemError):
    code = "invalid_index_name"
    status = 400
    exit_code = 2


class StoreUnavailable(TandemError):
    """A backend (Qdrant server, ...) cannot be reached or is not installed."""

    code = "store_unavailable"
    status = 503

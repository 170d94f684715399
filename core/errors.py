"""Tandem's one error hierarchy.

Every domain error derives from :class:`TandemError` and carries a stable ``code`` and an
HTTP-ish ``status`` so that the CLI (exit codes) and the service (JSON error bodies) map
them in one place each.
"""

from __future__ import annotations


class TandemError(Exception):
    """Base class of every error Tandem raises on purpose."""

    code: str = "error"
    status: int = 500
    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(TandemError):
    """The caller asked for something malformed (bad flag, bad field)."""

    code = "bad_request"
    status = 400
    exit_code = 2


class ModelNotFound(TandemError):
    """A model spec resolved to nothing: no package, no folder, no reachable hub."""

    code = "model_not_found"
    status = 503


class NotConfigured(TandemError):
    """A part that the request needs is not configured here (no LLM, no reranker, ...).

    A configuration question, not an outage: 409, like any other conflict with the server's
    state. 503 stays for a configured dependency that is down.
    """

    code = "not_configured"
    status = 409


class MissingDependency(TandemError):
    """An optional dependency is not installed; the message carries the install hint."""

    code = "missing_dependency"
    status = 503

"""The service's errors and the one exception handler that maps every error to JSON.

Every failure leaves the service as ``{"error": {"code": ..., "message": ...}}`` with the
status of the :class:`~core.errors.TandemError` (domain errors), of the Litestar
``HTTPException`` (routing, validation, body size) or 500 for a bug (logged with its traceback,
never its details in the body).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from litestar import Request, Response
from litestar.exceptions import HTTPException, SerializationException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from core.errors import TandemError

log = logging.getLogger("tandem.errors")


class Unauthorized(TandemError):
    code = "unauthorized"
    status = 401
    headers: ClassVar[dict[str, str]] = {"WWW-Authenticate": 'Bearer realm="tandem"'}


class Forbidden(TandemError):
    code = "forbidden"
    status = 403


class PayloadTooLarge(TandemError):
    code = "payload_too_large"
    status = 413


class InvalidRequest(TandemError):
    """The body parsed but breaks a bound (query too long, too many filter fields, ...)."""

    code = "validation_error"
    status = 422


class RateLimited(TandemError):
    code = "rate_limited"
    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))


class ServiceBusy(TandemError):
    """Too many model calls are already waiting."""

    code = "busy"
    status = 503

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UnsupportedMediaType(TandemError):
    """The request body's ``Content-Type`` is not one the route reads (415)."""

    code = "unsupported_media_type"
    status = 415


class ComponentUnavailable(TandemError):
    """A configured component (the reranker, ...) failed to load."""

    code = "unavailable"
    status = 503


#: Codes of Litestar's own HTTP errors, by status.
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _validation_message(exc: ValidationException) -> str:
    extra = exc.extra if isinstance(exc.extra, list) else []
    parts = []
    for item in extra:
        if not isinstance(item, dict):
            continue
        key, message = item.get("key"), str(item.get("message", ""))
        parts.append(f"{key}: {message}" if key and key != "data" else message)
    return "; ".join(parts) or str(exc.detail)


def describe(exc: Exception) -> tuple[int, str, str, dict[str, str]]:
    """``(status, code, message, headers)`` for any exception."""
    if isinstance(exc, TandemError):
        headers = dict(getattr(exc, "headers", None) or {})
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        return exc.status, exc.code, exc.message, headers
    if isinstance(exc, ValidationException):
        extra = exc.extra if isinstance(exc.extra, list) else []
        # Litestar reports a missing body as a KeyError on "data".
        if any(isinstance(i, dict) and i.get("message") == "'data'" for i in extra):
            return 400, "invalid_json", "the request body must be a JSON object", {}
        return 422, "validation_error", _validation_message(exc), {}
    if isinstance(exc, HTTPException):
        status = exc.status_code
        if status == 400 and isinstance(exc.__cause__, SerializationException | ValueError):
            return 400, "invalid_json", f"the request body is not valid JSON: {exc.detail}", {}
        headers = {k: v for k, v in (exc.headers or {}).items() if k.lower() == "retry-after"}
        code = HTTP_CODES.get(status, "error" if status < 500 else "internal_error")
        return status, code, str(exc.detail), headers
    if isinstance(exc, UnicodeDecodeError):
        return 400, "invalid_json", "the request body is not valid UTF-8 JSON", {}
    if isinstance(exc, RecursionError):
        # msgspec refuses JSON nested deeper than the interpreter's recursion limit this way;
        # no body of Tandem's schemas nests more than a few levels.
        return 400, "invalid_json", "the request body is nested too deeply", {}
    return HTTP_500_INTERNAL_SERVER_ERROR, "internal_error", "internal server error", {}


def handle_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """The one exception handler of the app (registered for ``Exception``)."""
    status, code, message, headers = describe(exc)
    if status >= 500:
        log.error(
            "%s %s failed: %s (%s)",
            request.method,
            request.url.path,
            code,
            message,
            exc_info=exc if code == "internal_error" else None,
        )
    state = getattr(request.app.state, "tandem", None)
    if state is not None:
        state.metrics.errors.labels(code=code).inc()
    return Response(
        error_body(code, message),
        status_code=status,
        headers=headers,
        media_type="application/json",
    )

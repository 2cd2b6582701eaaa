"""The one place that turns every failure into the JSON error shape of DESIGN §4.

    {"error": {"code": "validation_error", "message": "...", "details": {...}}}

Domain code raises :class:`ApiError` subclasses; werkzeug's HTTP errors, webargs'
validation aborts, database outages and unexpected exceptions are converted here, so
no response is ever HTML and no 5xx leaks a traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

log = logging.getLogger(__name__)

#: Seconds a client should wait before retrying after a dependency outage.
RETRY_AFTER_SECONDS = 5

# werkzeug status -> our code; anything not listed falls back to a lower-cased name.
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    500: "internal_error",
}


class ApiError(Exception):
    """An error with an HTTP status, a stable machine code, a message and optional details.

    Args:
        message: human-readable, safe to show to the client.
        details: JSON-serializable extra information (field errors, a rejection reason).
        headers: extra response headers (``Retry-After``, ``WWW-Authenticate``).
    """

    status = 500
    code = "internal_error"

    def __init__(self, message: str, details: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers or {}


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class Unauthorized(ApiError):
    """401; always carries ``WWW-Authenticate: Bearer`` (RFC 6750 §3)."""

    status, code = 401, "unauthorized"

    def __init__(self, message: str = "A valid bearer token is required.", **kw: Any):
        super().__init__(message, **kw)
        self.headers.setdefault("WWW-Authenticate", 'Bearer realm="advanced-notes"')


class NotFound(ApiError):
    status, code = 404, "not_found"


class Conflict(ApiError):
    status, code = 409, "conflict"


class UploadMissing(ApiError):
    """409: complete was called but no object is at the clip's key yet."""

    status, code = 409, "upload_missing"


class ClipNotReady(ApiError):
    status, code = 409, "clip_not_ready"


class ValidationFailed(ApiError):
    status, code = 422, "validation_error"


class UploadRejected(ApiError):
    """422: the stored object is not what was declared; ``details.reason`` says why.

    Reasons: ``size_mismatch``, ``checksum_mismatch``, ``type_mismatch``, ``not_audio``,
    ``unreadable_audio``.
    """

    status, code = 422, "upload_rejected"

    def __init__(self, reason: str, message: str, **details: Any):
        super().__init__(message, details={"reason": reason, **details})
        self.reason = reason


class QuotaExceeded(ApiError):
    """429: creating this upload session would exceed a per-owner quota (details say which)."""

    status, code = 429, "quota_exceeded"


class _Unavailable(ApiError):
    def __init__(self, message: str, **kw: Any):
        super().__init__(message, **kw)
        self.headers.setdefault("Retry-After", str(RETRY_AFTER_SECONDS))


class StorageUnavailable(_Unavailable):
    """503: the object store could not be reached or answered with a server error."""

    status, code = 503, "storage_unavailable"


class DatabaseUnavailable(_Unavailable):
    status, code = 503, "database_unavailable"


def error_response(status: int, code: str, message: str, details: Any = None,
                   headers: dict[str, str] | None = None) -> Response:
    """Build a response in the DESIGN §4 error shape (``details`` omitted when None)."""
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    response = jsonify(error=body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _flatten_webargs_messages(messages: Any) -> Any:
    # webargs nests field errors under the location ({"json": {...}}); clients only care
    # about fields, and each operation reads one location.
    if isinstance(messages, dict) and len(messages) == 1:
        (only,) = messages.values()
        if isinstance(only, dict):
            return only
    return messages


def http_exception_response(exc: HTTPException) -> Response:
    """Convert a werkzeug/webargs HTTP exception to the error shape."""
    status = exc.code or 500
    code = _HTTP_CODES.get(status, (exc.name or "error").lower().replace(" ", "_"))
    data = getattr(exc, "data", None) or {}
    details = _flatten_webargs_messages(data.get("messages")) if "messages" in data else None
    if status == 400 and details:
        message = "The request body is not valid JSON."
    elif status == 422:
        message = "The request failed validation."
    else:
        message = exc.description or exc.name
    headers = dict(data.get("headers") or {})
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        headers["Allow"] = ", ".join(sorted(exc.valid_methods))
    return error_response(status, code, message, details, headers)


def _api_error(exc: ApiError) -> Response:
    return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)


def _database_error(exc: DBAPIError | PoolTimeoutError) -> Response:
    if isinstance(exc, DBAPIError) and not isinstance(exc, OperationalError) \
            and not exc.connection_invalidated:
        return _unexpected(exc)
    log.warning("database unavailable: %s", exc.__class__.__name__, exc_info=exc)
    return _api_error(DatabaseUnavailable("The database is unavailable; retry later."))


def _unexpected(exc: Exception) -> Response:
    log.exception("unhandled error", exc_info=exc)
    return error_response(500, "internal_error", "An unexpected error occurred.")


def register_error_handlers(app: Flask) -> None:
    """Install the handlers on ``app``. HTTP exceptions go through the Api class (api.py)."""
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(DBAPIError, _database_error)
    app.register_error_handler(PoolTimeoutError, _database_error)
    app.register_error_handler(Exception, _unexpected)

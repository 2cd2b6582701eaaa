"""The one place that turns every failure into the JSON error shape of DESIGN §4.

    {"error": {"code": "validation_error", "message": "...", "details": {...}}}

Services raise the :mod:`advanced_notes.domain.errors` classes; werkzeug's HTTP errors,
webargs' validation aborts, database outages and unexpected exceptions are converted
here, so no response is ever HTML and no 5xx leaks a traceback.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from flask import Flask, Response, jsonify, request
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from advanced_notes.domain.errors import ApiError, DatabaseUnavailable

log = logging.getLogger(__name__)

_CLIP_PATH = re.compile(r"^/api/audio-clips/[^/]+(/[^/]*)?/?$")

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


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> Response:
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
    elif status == 404 and _CLIP_PATH.match(request.path):
        # An id that is not a UUID names no clip: the same answer as an unknown one,
        # not werkzeug's "check your spelling" page text.
        message = "No such audio clip."
    elif status == 404:
        message = f"No such resource: {request.path}"
    else:
        message = exc.description or exc.name
    headers = dict(data.get("headers") or {})
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        headers["Allow"] = ", ".join(sorted(exc.valid_methods))
    return error_response(status, code, message, details, headers)


def _api_error(exc: ApiError) -> Response:
    return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)


def _database_error(exc: DBAPIError | PoolTimeoutError) -> Response:
    if isinstance(exc, DBAPIError) and not isinstance(exc, OperationalError) and not exc.connection_invalidated:
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

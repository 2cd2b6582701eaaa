"""Request bodies are JSON, and a body sent without saying so gets a 415 that says so.

Without ``Content-Type: application/json`` webargs reads no JSON at all, so a POST whose
body holds every field answered 422 "Missing data for required field" for fields that
were right there (``curl -d '{...}'`` sends ``application/x-www-form-urlencoded``). The
real cause is the header; this check answers that before any parsing.
"""

from __future__ import annotations

from flask import Flask, Response, request

from advanced_notes.api.errors import error_response

_WITH_BODY = ("POST", "PUT", "PATCH")
#: The blueprints whose bodies are our own JSON schemas. Receivers of bodies shaped by
#: others keep their own rules: bucket event notifications (SNS posts text/plain) and
#: Uppy's S3 multipart protocol (its client decides its content types).
JSON_BLUEPRINTS = frozenset({"audio-clips", "notes"})


def _require_json_body() -> Response | None:
    if request.method not in _WITH_BODY or request.blueprint not in JSON_BLUEPRINTS:
        return None
    has_body = bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    if not has_body or request.is_json:
        return None
    return error_response(
        415,
        "unsupported_media_type",
        "The request body must be JSON sent with the header 'Content-Type: application/json'.",
        {"content_type": request.content_type},
    )


def init_json_bodies(app: Flask) -> None:
    """Answer 415 to a request of :data:`JSON_BLUEPRINTS` whose body is not declared as JSON."""
    app.before_request(_require_json_body)

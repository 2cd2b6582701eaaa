"""Request bodies are JSON, and a body sent without saying so gets a 415 that says so.

Without ``Content-Type: application/json`` webargs reads no JSON at all, so a POST whose
body holds every field answered 422 "Missing data for required field" for fields that
were right there (``curl -d '{...}'`` sends ``application/x-www-form-urlencoded``). The
real cause is the header; this check answers that before any parsing (issue 14).
"""

from __future__ import annotations

from flask import Flask, Response, current_app, request

from advanced_notes.api.common import ApiBlueprint
from advanced_notes.api.errors import error_response

_WITH_BODY = ("POST", "PUT", "PATCH")
#: Blueprints that take other senders' bodies as they come: the S3-shaped multipart steps
#: receive S3's XML (CompleteMultipartUpload) from clients such as Uppy, and bucket event
#: notifications may arrive as text/plain (SNS).
_NOT_JSON_BLUEPRINTS = frozenset({"multipart-s3", "storage-events"})


def _require_json_body() -> Response | None:
    # Only the authenticated JSON API (ApiBlueprint): receivers of other senders' bodies,
    # such as bucket event notifications (SNS posts text/plain), keep their own rules.
    blueprint = current_app.blueprints.get(request.blueprint or "")
    if request.method not in _WITH_BODY or not isinstance(blueprint, ApiBlueprint):
        return None
    if request.blueprint in _NOT_JSON_BLUEPRINTS:
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
    """Answer 415 to a request of the authenticated API whose body is not declared as JSON."""
    app.before_request(_require_json_body)

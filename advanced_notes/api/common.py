"""What every API blueprint is built from: the blueprint class, error documentation, bodies.

Every blueprint of the API document is built per app by a ``*_blueprint()`` function of
its module, called from :func:`advanced_notes.api.registry.init_api`; views reach the services
through :func:`advanced_notes.api.context.current_services` alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask_smorest import Blueprint

from advanced_notes.adapters.storage import PresignedRequest
from advanced_notes.api.auth import authenticate_request
from advanced_notes.api.parsing import ApiParser
from advanced_notes.services.clips import Playback

F = TypeVar("F", bound=Callable[..., Any])

NO_CLIP = "not_found: no such clip for this caller."
#: Documented on every authenticated operation.
_ALWAYS = {
    400: "bad_request: The request body is not valid JSON.",
    401: "unauthorized: missing, malformed, expired or wrongly signed bearer token.",
    413: "payload_too_large: the request body is over MAX_REQUEST_BYTES.",
    429: "too_many_requests (RATELIMIT_DEFAULT per owner; see Retry-After) or quota_exceeded.",
    503: "storage_unavailable or database_unavailable: nothing changed; retry after Retry-After.",
}


def error_responses(blp: Blueprint, responses: dict[int, str] | None = None) -> Callable[[F], F]:
    """Document an operation's error answers (all in the ErrorSchema shape) in OpenAPI.

    Args:
        blp: the operation's blueprint.
        responses: status -> description of the errors specific to this operation;
            401 and 503 are always added.
    """

    def decorate(view: F) -> F:
        for status, description in sorted({**_ALWAYS, **(responses or {})}.items(), reverse=True):
            # The description starts with the (first) error code: it makes the example.
            code = description.split(":")[0].split()[0]
            example = {"error": {"code": code, "message": description.split(":", 1)[-1].strip()}}
            view = blp.alt_response(status, description=description, example=example)(view)
        return view

    return decorate


class ApiBlueprint(Blueprint):
    """flask-smorest's Blueprint with :class:`ApiParser` (deep JSON nesting is a 400, not a 500).

    Every API blueprint is one, so every body and query is parsed the same way.
    """

    ARGUMENTS_PARSER = ApiParser()


def authenticated_blueprint(name: str, import_name: str, description: str) -> ApiBlueprint:
    """A new blueprint under ``/api`` whose every route requires a bearer token (DESIGN §5).

    Args:
        name: the blueprint's name (rate limits and the JSON-body check select blueprints by it).
        import_name: the defining module's ``__name__``.
        description: the tag's description in the OpenAPI document.
    Returns:
        an :class:`ApiBlueprint` that runs :func:`~advanced_notes.api.auth.authenticate_request` first.
    """
    blp = ApiBlueprint(name, import_name, url_prefix="/api", description=description)
    blp.before_request(authenticate_request)
    return blp


def upload_body(upload: PresignedRequest | None, storage_key: str) -> dict[str, Any] | None:
    """The ``upload`` object of a response (UploadSchema), None for no upload."""
    if upload is None:
        return None
    return {
        "method": upload.method,
        "url": upload.url,
        "storage_key": storage_key,
        "headers": upload.headers,
        "expires_at": upload.expires_at,
    }


def playback_body(playback: Playback) -> dict[str, Any]:
    """The ``{url, expires_at}`` of a playback response (PlaybackSchema)."""
    return {"url": playback.url, "expires_at": playback.expires_at}


#: The response headers of a playback answer, for the OpenAPI document.
PLAYBACK_HEADERS = {
    "Cache-Control": {
        "description": "`private, max-age=<seconds until the URL's signing window ends>` (at least 1): "
        "the answer may be reused until then; the next window's answer carries a new URL. "
        "Absent when S3_PRESIGN_GET_WINDOW_SECONDS is 0 (a URL per request).",
        "schema": {"type": "string", "example": "private, max-age=137"},
    },
    "Vary": {
        "description": "`Authorization`: a cached answer is only for the token it was given to.",
        "schema": {"type": "string", "example": "Authorization"},
    },
}


def playback_headers(playback: Playback) -> dict[str, str]:
    """The caching headers of a playback answer (none when its URL was signed for this request alone).

    ``private``: the URL is the caller's; ``Vary: Authorization``: a browser shared by two
    users must not hand one user's cached answer to the other.
    """
    if playback.cache_seconds is None:
        return {}
    return {"Cache-Control": f"private, max-age={playback.cache_seconds}", "Vary": "Authorization"}

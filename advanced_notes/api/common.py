"""Helpers shared by the blueprints."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_smorest import Blueprint

from ..auth import authenticate_request
from ..services.clips import ClipService, Playback
from ..storage import PresignedRequest


def clip_service() -> ClipService:
    """The process-wide ClipService of the running app."""
    return current_app.extensions["advanced_notes"].clips


def authenticated_blueprint(name: str, import_name: str, description: str) -> Blueprint:
    """A blueprint whose every route requires a bearer token (DESIGN §5)."""
    blp = Blueprint(name, import_name, url_prefix="/api", description=description)
    blp.before_request(authenticate_request)
    return blp


def upload_body(upload: PresignedRequest | None, storage_key: str) -> dict[str, Any] | None:
    """The ``upload`` object of a response (UploadSchema), None for no upload."""
    if upload is None:
        return None
    return {"method": upload.method, "url": upload.url, "storage_key": storage_key,
            "headers": upload.headers, "expires_at": upload.expires_at}


def playback_body(playback: Playback) -> dict[str, Any]:
    """The ``{url, expires_at}`` of a playback response (PlaybackSchema)."""
    return {"url": playback.url, "expires_at": playback.expires_at}

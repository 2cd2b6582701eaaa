"""CORS for the API itself (flask-cors), for browsers on the origins in ``CORS_ORIGINS``.

The bucket's own CORS rules, which browser PUTs and playback need, are another matter:
see :mod:`advanced_notes.domain.bucket_cors`.
"""

from __future__ import annotations

from flask import Flask
from flask_cors import CORS

from advanced_notes.settings import Settings


def init_cors(app: Flask, settings: Settings) -> None:
    """Answer preflights and add CORS headers on ``/api/*`` for the configured origins (none: off)."""
    if not settings.cors_origins:
        return
    CORS(
        app,
        resources={r"/api/*": {"origins": list(settings.cors_origins)}},
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
        expose_headers=["Retry-After", "X-Request-ID", "Idempotent-Replayed"],
        max_age=600,
    )

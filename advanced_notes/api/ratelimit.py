"""Per-owner request rate limiting with flask-limiter (one budget per owner across the API).

The key is the verified token's ``sub``, so one user cannot exhaust another's budget;
requests without a valid token are limited by client address. Counters live in Redis
when ``RATELIMIT_STORAGE_URI`` is set (shared by every worker and machine), in process
memory otherwise (per worker: fine for one process, approximate for several).
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from flask import Flask, g, request
from flask_limiter import Limiter

from advanced_notes.api.auth import authenticate_request
from advanced_notes.domain.errors import Unauthorized
from advanced_notes.settings import Settings


def owner_key() -> str:
    """The rate-limit key of the current request: ``owner:<sub>`` or ``ip:<address>``."""
    if getattr(g, "owner_id", None) is None:
        with suppress(Unauthorized):
            authenticate_request()  # verified once; the blueprint hook then reuses g.owner_id
    owner = getattr(g, "owner_id", None)  # None for bad tokens and CORS preflights (OPTIONS)
    return f"owner:{owner}" if owner is not None else f"ip:{request.remote_addr}"


def init_rate_limits(app: Flask, settings: Settings, blueprints: list[Any]) -> Limiter:
    """Apply ``RATELIMIT_DEFAULT`` per owner, shared by ``blueprints``; 429 in the error shape.

    Health checks and the API docs are not limited.
    """
    limiter = Limiter(
        key_func=owner_key,
        app=app,
        storage_uri=settings.ratelimit_storage_uri or "memory://",
        # fixed-window: one counter per owner and window, the cheapest check per request
        # (moving-window keeps a timestamp per request); a burst can reach twice the limit
        # across a window edge, which is fine for abuse protection.
        default_limits=[],
        headers_enabled=True,
        strategy="fixed-window",
        # A limiter whose storage (Redis) is down must not take the API down with it.
        swallow_errors=True,
        in_memory_fallback_enabled=True,
    )
    shared = limiter.shared_limit(settings.ratelimit_default, scope="api", key_func=owner_key)
    for blueprint in blueprints:
        shared(blueprint)
    return limiter

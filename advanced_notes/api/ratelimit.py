"""Per-owner request rate limiting with flask-limiter (one budget per owner across the API).

The key is the verified token's ``sub``, so one user cannot exhaust another's budget;
requests without a valid token are limited by client address. Counters live in Redis
when ``RATELIMIT_STORAGE_URI`` is set (shared by every worker and machine), in process
memory otherwise (per worker: fine for one process, approximate for several).
"""

from __future__ import annotations

import logging
from contextlib import suppress
from typing import Any

from flask import Flask, g, request
from flask_limiter import Limiter

from advanced_notes.api.auth import authenticate_request
from advanced_notes.api.errors import fix_retry_after
from advanced_notes.domain.errors import Unauthorized
from advanced_notes.settings import Settings

log = logging.getLogger(__name__)


def owner_key() -> str:
    """The rate-limit key of the current request: ``owner:<sub>`` or ``ip:<address>``.

    Never raises: a key function that raised made flask-limiter skip the limit (and log
    a traceback), so an exception while verifying the token counts as "no valid token"
    and the request is limited by address (issue 13 item 4). The blueprint's own auth
    hook then runs again and answers the request.
    """
    try:
        if getattr(g, "owner_id", None) is None:
            with suppress(Unauthorized):
                authenticate_request()  # verified once; the blueprint hook then reuses g.owner_id
        owner = getattr(g, "owner_id", None)  # None for bad tokens and CORS preflights (OPTIONS)
    except Exception:
        log.exception("rate-limit key: token verification raised; limiting by address")
        owner = None
    return f"owner:{owner}" if owner is not None else f"ip:{request.remote_addr}"


def init_rate_limits(app: Flask, settings: Settings, blueprints: list[Any]) -> Limiter:
    """Apply ``RATELIMIT_DEFAULT`` per owner, shared by ``blueprints``; 429 in the error shape.

    Health checks, the API docs and CORS preflights (``OPTIONS``) are not limited.
    """
    # Registered before the limiter's own after_request so that it runs after it (Flask
    # runs after_request functions in reverse order of registration).
    app.after_request(fix_retry_after)
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

    @limiter.request_filter
    def _preflight() -> bool:
        # A CORS preflight carries no credentials, so it would share the address budget
        # with garbage tokens: 10 "Bearer garbage" requests made a victim's preflight a
        # 429, which the browser reports as a CORS failure (issue 13 item 5). Preflights
        # touch nothing and are cheap; flask-cors answers them.
        return request.method == "OPTIONS"

    shared = limiter.shared_limit(settings.ratelimit_default, scope="api", key_func=owner_key)
    for blueprint in blueprints:
        shared(blueprint)
    return limiter

"""Per-owner request rate limiting: one budget per owner across the API, on the ``limits`` library.

The key is the verified token's ``sub``, so one user cannot exhaust another's budget;
requests without a valid token are limited by client address. Counters live in Redis
when ``RATELIMIT_STORAGE_URI`` is set (shared by every worker and machine), in process
memory otherwise (per worker: fine for one process, approximate for several).

Why not flask-limiter (used until issue 15): with its response headers on, every request
made three storage calls (the hit, then the window's count and expiry for the
``X-RateLimit-*`` headers: three Redis round trips), its in-memory storage started a
thread for most requests, and the whole check cost 0.4 to 0.8 ms per request, the largest
framework cost after the ORM (the 2026-11-21 profile, before issue 15). Here the windows are fixed and
aligned to the clock (``window = now // period``), so one counter increment gives both
the verdict and the headers: the count says what remains, the window index says when it
resets. ``limits`` still parses the setting and owns the storages (Redis, memory).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, cast

from flask import Flask, Response, g, request
from limits import RateLimitItem, parse_many
from limits.storage import Storage, storage_from_string

from advanced_notes.api.auth import authenticate_request
from advanced_notes.domain.errors import ApiError, Unauthorized
from advanced_notes.settings import Settings

log = logging.getLogger(__name__)

#: Seconds between two warnings about a failing counter storage (Redis down).
_WARN_EVERY_SECONDS = 60.0


class TooManyRequests(ApiError):
    """429 ``too_many_requests``: the owner's (or address's) budget for this window is spent."""

    status, code = 429, "too_many_requests"


class FixedWindowCounters:
    """In-process counters for clock-aligned fixed windows: one dict update under a lock.

    limits' ``MemoryStorage`` purges expired counters from a ``threading.Timer`` that it
    starts again whenever the last one finished (they live 10 ms): under load a new
    thread for most requests. Here each window has its own key, expired keys are purged
    inline at most once every ``purge_seconds``, and memory stays bounded by the keys of
    the live windows.
    """

    def __init__(self, purge_seconds: float = 60.0):
        self._counts: Counter[str] = Counter()
        self._expires: dict[str, float] = {}
        self._lock = threading.Lock()
        self._purge_seconds = purge_seconds
        self._purge_at = time.time() + purge_seconds

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Add ``amount`` to ``key`` (kept ``expiry`` seconds); returns the new count."""
        now = time.time()
        with self._lock:
            if key not in self._expires:
                self._expires[key] = now + expiry
            self._counts[key] += amount
            count = self._counts[key]
            if now >= self._purge_at:
                self._purge_at = now + self._purge_seconds
                for stale in [k for k, until in self._expires.items() if until <= now]:
                    del self._expires[stale], self._counts[stale]
        return count


@dataclass(frozen=True)
class WindowState:
    """The tightest limit after a request: ``limit`` requests per window, ``remaining`` of
    them left, the window resets at ``reset`` (Unix time, seconds)."""

    limit: int
    remaining: int
    reset: int


class OwnerRateLimiter:
    """``RATELIMIT_DEFAULT`` per owner across a set of blueprints, one counter op per limit.

    Args:
        settings: ``ratelimit_default`` (limits syntax: ``"300 per minute"``,
            ``"10/second;1000/hour"``) and ``ratelimit_storage_uri`` (``redis://...``;
            None counts in process memory).
        blueprints: names of the blueprints whose requests count (health checks, the API
            documents and CORS preflights never do).

    Storage failures never fail a request: the counter falls back to process memory for
    that request and a warning is logged at most once a minute (the API must not go down
    with Redis).
    """

    def __init__(self, settings: Settings, blueprints: set[str]):
        self.limits: list[RateLimitItem] = parse_many(settings.ratelimit_default)
        self.blueprints = blueprints
        self.local = FixedWindowCounters()
        self.storage: Storage | None = (
            cast(Storage, storage_from_string(settings.ratelimit_storage_uri))
            if settings.ratelimit_storage_uri
            else None
        )
        self._warned_at = 0.0

    def check(self) -> None:
        """``before_request``: count the request against each limit of its key.

        Raises:
            TooManyRequests: a limit is spent; ``Retry-After`` is the seconds until its
                window resets.
        """
        if request.blueprint not in self.blueprints or request.method == "OPTIONS":
            return
        key = owner_key()
        now = time.time()
        tightest: WindowState | None = None
        for item in self.limits:
            period = item.get_expiry()
            window = int(now // period)
            count = self._incr(f"{item.key_for(key)}/{window}", period)
            state = WindowState(item.amount, max(item.amount - count, 0), (window + 1) * period)
            if count > item.amount:
                g.rate_limit = state
                retry_after = max(1, math.ceil(state.reset - now))
                raise TooManyRequests(
                    f"Rate limit of {item} exceeded; retry in {retry_after} s.",
                    headers={"Retry-After": str(retry_after)},
                )
            if tightest is None or state.remaining < tightest.remaining:
                tightest = state
        g.rate_limit = tightest

    def _incr(self, key: str, expiry: int) -> int:
        if self.storage is not None:
            try:
                return int(self.storage.incr(key, expiry))
            except Exception as exc:  # Redis down or misbehaving: count locally
                now = time.monotonic()
                if now - self._warned_at > _WARN_EVERY_SECONDS:
                    self._warned_at = now
                    log.warning("rate-limit storage failed (%s); counting in process memory", exc.__class__.__name__)
        return self.local.incr(key, expiry)


def add_rate_limit_headers(response: Response) -> Response:
    """``after_request``: ``X-RateLimit-Limit/-Remaining/-Reset`` of the tightest limit."""
    state: WindowState | None = g.get("rate_limit")
    if state is not None:
        response.headers["X-RateLimit-Limit"] = str(state.limit)
        response.headers["X-RateLimit-Remaining"] = str(state.remaining)
        response.headers["X-RateLimit-Reset"] = str(state.reset)
    return response


def owner_key() -> str:
    """The rate-limit key of the current request: ``owner:<sub>`` or ``ip:<address>``.

    Never raises: an exception while verifying the token counts as "no valid token" and
    the request is limited by address (issue 13 item 4). The blueprint's own auth hook
    then runs and answers the request (a 401 for a bad token).
    """
    try:
        if getattr(g, "owner_id", None) is None:
            with suppress(Unauthorized):
                authenticate_request()  # verified once; the blueprint hook then reuses g.owner_id
        owner = getattr(g, "owner_id", None)
    except Exception:
        log.exception("rate-limit key: token verification raised; limiting by address")
        owner = None
    return f"owner:{owner}" if owner is not None else f"ip:{request.remote_addr}"


def init_rate_limits(app: Flask, settings: Settings, blueprints: list[Any]) -> OwnerRateLimiter:
    """Apply ``RATELIMIT_DEFAULT`` per owner, shared by ``blueprints``; 429 in the error shape.

    The check is an app-level ``before_request`` so it runs before the blueprints' own
    auth hook: a request with a bad token is counted (by address) before it is refused.
    """
    limiter = OwnerRateLimiter(settings, {blueprint.name for blueprint in blueprints})
    app.extensions["advanced_notes_rate_limiter"] = limiter
    app.before_request(limiter.check)
    app.after_request(add_rate_limit_headers)
    return limiter

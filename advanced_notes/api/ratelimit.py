"""Per-owner request rate limiting: one budget per owner across the API, on the ``limits`` library.

The key is the verified token's ``sub``, so one user cannot exhaust another's budget;
requests without a valid token are limited by client address. Failed authentication
(any 401) has its own, smaller budget per client address, ``RATELIMIT_AUTH_FAILURES``, on
the API and on ``POST /api/storage-events`` (:class:`AuthFailureLimiter`). Counters live in Redis
when ``RATELIMIT_STORAGE_URI`` is set (shared by every worker and machine), in process
memory otherwise (per worker: fine for one process, approximate for several).

The windows are fixed and aligned to the clock (``window = now // period``), so one
counter increment gives both the verdict and the ``X-RateLimit-*`` headers: the count
says what remains, the window index says when it resets (one Redis round trip a
request, where a moving window needs the hit, the count and the expiry). ``limits``
parses the setting and owns the storages (Redis, memory); why not flask-limiter is in
docs/design-choices.md.
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
from advanced_notes.api.errors import error_response
from advanced_notes.domain.errors import ApiError, Unauthorized
from advanced_notes.settings import Settings

log = logging.getLogger(__name__)

#: Seconds between two warnings about a failing counter storage (Redis down).
_WARN_EVERY_SECONDS = 60.0
#: Locked addresses kept before expired locks are dropped (memory stays bounded).
_MAX_LOCKED_ADDRESSES = 10_000


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
            count = self.incr(f"{item.key_for(key)}/{window}", period)
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

    def incr(self, key: str, expiry: int) -> int:
        """Add one to ``key`` (kept ``expiry`` seconds) in the storage, else in memory; the new count."""
        if self.storage is not None:
            try:
                return int(self.storage.incr(key, expiry))
            except Exception as exc:  # Redis down or misbehaving: count locally
                self._storage_failed(exc)
        return self.local.incr(key, expiry)

    def _storage_failed(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned_at > _WARN_EVERY_SECONDS:
            self._warned_at = now
            log.warning("rate-limit storage failed (%s); counting in process memory", exc.__class__.__name__)


class AuthFailureLimiter:
    """``RATELIMIT_AUTH_FAILURES`` per client address: failed authentication attempts.

    Args:
        counters: the app's :class:`OwnerRateLimiter`, whose storage (Redis or memory,
            with the same fallback) holds these counters too.
        settings: ``ratelimit_auth_failures`` (limits syntax, e.g. ``"20 per minute"``).
        blueprints: names of the blueprints whose 401s count (the API's, storage events).

    Every 401 of those blueprints adds one to the address's counter (:meth:`record`,
    after the answer is made). The failure that fills a window locks the address in
    this process until the window ends: every request from it to those blueprints is
    then 429 before its credentials are read (:meth:`guard`), a right token included,
    or a guesser would keep guessing and only the right guess would pass. Another
    worker learns of the lock from the shared counter at the address's next failure
    there, which is answered 429 instead of 401: at most one attempt per worker goes
    past the limit. Requests that authenticate cost no counter operation. The limit is
    per address, so behind a proxy set ``TRUSTED_PROXIES`` (docs/security.md).
    """

    def __init__(self, counters: OwnerRateLimiter, settings: Settings, blueprints: set[str]):
        self.counters = counters
        self.limits: list[RateLimitItem] = parse_many(settings.ratelimit_auth_failures)
        self.blueprints = blueprints
        self._locked: dict[str, tuple[float, str]] = {}  # address -> (window end, the limit)
        self._lock = threading.Lock()

    def _applies(self) -> bool:
        return request.blueprint in self.blueprints and request.method != "OPTIONS"

    @staticmethod
    def _refusal(until: float, limit: str, now: float) -> TooManyRequests:
        retry_after = max(1, math.ceil(until - now))
        return TooManyRequests(
            f"Too many failed authentication attempts from this address ({limit}); retry in {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
        )

    def guard(self) -> None:
        """``before_request``: refuse an address locked by its failures.

        Raises:
            TooManyRequests: with ``Retry-After``, seconds until the window resets.
        """
        if not self._applies() or not self._locked:
            return
        address, now = str(request.remote_addr), time.time()
        with self._lock:
            locked = self._locked.get(address)
            if locked is not None and locked[0] <= now:
                del self._locked[address]
                locked = None
            if len(self._locked) > _MAX_LOCKED_ADDRESSES:  # bounded: drop the expired ones
                for stale in [a for a, (until, _) in self._locked.items() if until <= now]:
                    del self._locked[stale]
        if locked is not None:
            raise self._refusal(*locked, now)

    def record(self, response: Response) -> Response:
        """``after_request``: count a 401 of the guarded blueprints against its address;
        lock the address when a window is full, and answer 429 for a failure past it."""
        if response.status_code != 401 or not self._applies():
            return response
        address, now = str(request.remote_addr), time.time()
        for item in self.limits:
            period = item.get_expiry()
            window = int(now // period)
            count = self.counters.incr(f"{item.key_for('auth-failures', address)}/{window}", period)
            if count >= item.amount:
                until = float((window + 1) * period)
                with self._lock:
                    self._locked[address] = max(self._locked.get(address, (0.0, "")), (until, str(item)))
                if count > item.amount:
                    refusal = self._refusal(until, str(item), now)
                    return error_response(refusal.status, refusal.code, refusal.message, None, refusal.headers)
        return response


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
    the request is limited by address (a token PyJWT fails on must not skip the limit).
    The blueprint's own auth hook
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


def init_rate_limits(
    app: Flask, settings: Settings, blueprints: list[Any], auth_guarded: list[Any] | None = None
) -> OwnerRateLimiter:
    """Apply ``RATELIMIT_DEFAULT`` per owner, shared by ``blueprints``, and
    ``RATELIMIT_AUTH_FAILURES`` per address to the 401s of ``blueprints`` and
    ``auth_guarded``; 429 in the error shape.

    The checks are app-level ``before_request`` hooks so they run before the blueprints'
    own auth hook: an address over its failure budget is refused before any token is
    verified, and a request with a bad token is counted (by address) before it is refused.
    """
    limiter = OwnerRateLimiter(settings, {blueprint.name for blueprint in blueprints})
    failures = AuthFailureLimiter(
        limiter, settings, {blueprint.name for blueprint in [*blueprints, *(auth_guarded or [])]}
    )
    app.extensions["advanced_notes_rate_limiter"] = limiter
    app.extensions["advanced_notes_auth_failure_limiter"] = failures
    app.before_request(failures.guard)
    app.before_request(limiter.check)
    app.after_request(failures.record)
    app.after_request(add_rate_limit_headers)
    return limiter

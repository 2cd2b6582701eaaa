"""Claims of tokens already verified, so a client's repeated token is not verified from scratch.

A client sends the same bearer token on every request until it expires, and verifying it
(base64, two JSON decodes, the HMAC, PyJWT's option handling) costs more than most of what a
request does. What the signature proves cannot change while the key does not: the claims are
the token's own bytes. What *does* change is the time, so every lookup checks ``exp``, ``nbf``
and ``iat`` against the clock again with the same leeway and comparisons as PyJWT
(``jwt/api_jwt.py``: ``_validate_exp``/``_validate_nbf``/``_validate_iat``); a token past
them is dropped and takes the full verification, which names what is wrong.

Only tokens verified with the configured HMAC secret are kept: the secret cannot change in a
running process, so the cache, which belongs to one verifier, lives exactly as long as its key.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

#: Verified tokens kept per process: the clients active within a token's lifetime.
TOKEN_CACHE_ENTRIES = 1024
#: Longer tokens are verified every time: the cache stays under about 3 MB per process.
MAX_CACHED_TOKEN_CHARS = 2048


def _times_valid(claims: dict[str, Any], now: float, leeway: float) -> bool:
    """PyJWT's time checks on verified claims (False where PyJWT raises)."""
    try:
        if "exp" in claims and int(claims["exp"]) <= now - leeway:
            return False
        if "nbf" in claims and int(claims["nbf"]) > now + leeway:
            return False
        if "iat" in claims and int(claims["iat"]) > now + leeway:
            return False
    except (TypeError, ValueError, OverflowError):
        return False
    return True


class VerifiedTokens:
    """A bounded, thread-safe LRU from a token's exact string to its verified claims.

    Args:
        leeway_seconds: clock skew tolerated on ``exp``/``nbf``/``iat`` (as given to PyJWT).
        maxsize: entries kept; the least recently used goes first.
        clock: Unix time in seconds (tests pass a fake one).
    """

    def __init__(
        self,
        leeway_seconds: float,
        maxsize: int = TOKEN_CACHE_ENTRIES,
        clock: Callable[[], float] = time.time,
    ):
        self.leeway = leeway_seconds
        self.maxsize = maxsize
        self.clock = clock
        self._entries: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, token: str) -> dict[str, Any] | None:
        """A copy of the claims of ``token`` if it was verified and its times still hold now, else None."""
        with self._lock:
            claims = self._entries.get(token)
            if claims is None:
                return None
            if not _times_valid(claims, self.clock(), self.leeway):
                del self._entries[token]
                return None
            self._entries.move_to_end(token)
            return dict(claims)

    def put(self, token: str, claims: dict[str, Any]) -> None:
        """Keep ``claims`` (verified by the caller) for ``token``; long tokens are not kept."""
        if len(token) > MAX_CACHED_TOKEN_CHARS:
            return
        with self._lock:
            self._entries[token] = dict(claims)
            self._entries.move_to_end(token)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every token (their key changed)."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

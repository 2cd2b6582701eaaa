"""Count and time every PostgreSQL round trip psycopg2 makes (in-process profiles only).

:func:`install` makes every later ``psycopg2.connect`` (SQLAlchemy's pool and the
ceiling's pool both call it) return a :class:`TimedConnection`, whose cursors and
``commit``/``rollback`` add to :data:`STATS`. A round trip is counted the way libpq
makes them: an ``execute`` outside a transaction on a non-autocommit connection first
sends ``BEGIN`` (two round trips), a ``commit``/``rollback`` with no transaction open
sends nothing. The time includes the network, PostgreSQL's work and waiting for the
PostgreSQL process to be scheduled, which on a busy machine is most of it.
"""

from __future__ import annotations

import re
import time
from typing import Any

import psycopg2
import psycopg2.extensions as ext

#: Totals since the last :func:`reset`: round trips, and seconds spent in them.
STATS: dict[str, float] = {"round_trips": 0, "seconds": 0.0}
#: Round trips by kind since the last :func:`reset`: ``BEGIN``, ``SELECT 1`` (SQLAlchemy's
#: pre-ping), ``advisory lock``, ``SELECT``, ``INSERT``, ``UPDATE``, ``COMMIT``, ``ROLLBACK``...
KINDS: dict[str, int] = {}


_CTE_TOKENS = re.compile(r"[()]|\b(?:INSERT|UPDATE|DELETE|SELECT)\b", re.IGNORECASE)


def reset() -> None:
    STATS["round_trips"], STATS["seconds"] = 0, 0.0
    KINDS.clear()


def _kind(query: Any) -> str:
    text = (query.decode() if isinstance(query, bytes) else str(query)).strip()
    if text.upper() == "SELECT 1":
        return "SELECT 1"
    if "pg_advisory" in text:
        return "advisory lock"
    first = text.split(None, 1)[0].upper() if text else "?"
    if first == "WITH":  # named by its main statement: the first keyword outside the CTEs' parentheses
        depth = 0
        for match in _CTE_TOKENS.finditer(text):
            token = match.group(0)
            if token in "()":
                depth += 1 if token == "(" else -1
            elif depth == 0:
                return f"WITH ... {token.upper()}"
    return first


def _add(trips: int, started: float, *kinds: str) -> None:
    STATS["round_trips"] += trips
    STATS["seconds"] += time.perf_counter() - started
    for kind in kinds:
        KINDS[kind] = KINDS.get(kind, 0) + 1


class TimedCursor(ext.cursor):
    """A cursor whose ``execute`` is counted (with the implicit BEGIN before it)."""

    def execute(self, query: Any, vars: Any = None) -> Any:
        conn = self.connection
        begins = not conn.autocommit and conn.status == ext.STATUS_READY
        started = time.perf_counter()
        try:
            return super().execute(query, vars)
        finally:
            _add(2 if begins else 1, started, *(("BEGIN",) if begins else ()), _kind(query))


class TimedConnection(ext.connection):
    """A connection whose cursors are :class:`TimedCursor` and whose commit/rollback are counted."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.cursor_factory = TimedCursor

    def commit(self) -> None:
        sends = self.status != ext.STATUS_READY  # no transaction open: nothing is sent
        started = time.perf_counter()
        try:
            super().commit()
        finally:
            _add(1 if sends else 0, started, *(("COMMIT",) if sends else ()))

    def rollback(self) -> None:
        sends = self.status != ext.STATUS_READY
        started = time.perf_counter()
        try:
            super().rollback()
        finally:
            _add(1 if sends else 0, started, *(("ROLLBACK",) if sends else ()))


def install() -> None:
    """Route every later ``psycopg2.connect`` through :class:`TimedConnection`."""
    original = psycopg2.connect
    if getattr(original, "_timed", False):
        return

    def connect(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("connection_factory", TimedConnection)
        return original(*args, **kwargs)

    connect._timed = True  # type: ignore[attr-defined]
    psycopg2.connect = connect

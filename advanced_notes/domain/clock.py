"""The clock: aware UTC datetimes, one function so tests and callers agree on the zone."""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    """The current time, aware, in UTC."""
    return dt.datetime.now(dt.UTC)

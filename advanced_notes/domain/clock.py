"""The clock: aware UTC datetimes, one function so tests and callers agree on the zone."""

from __future__ import annotations

import datetime as dt

#: The Unix epoch: windows are aligned to it, so every machine agrees on where one starts.
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def utcnow() -> dt.datetime:
    """The current time, aware, in UTC."""
    return dt.datetime.now(dt.UTC)


def window_start(now: dt.datetime, window_seconds: int) -> dt.datetime:
    """The start of the epoch-aligned window of ``window_seconds`` that holds ``now``.

    ``floor(unix time / window) * window``, computed exactly on timedeltas (no float): every
    process and machine whose clock agrees gets the same start for the same window.

    Args:
        now: an aware datetime.
        window_seconds: the window's length in seconds, at least 1.
    Returns:
        aware UTC; ``start <= now < start + window``.
    Raises:
        ValueError: ``window_seconds`` is less than 1.
    """
    if window_seconds < 1:
        raise ValueError(f"window_seconds must be at least 1, got {window_seconds}")
    window = dt.timedelta(seconds=window_seconds)
    return EPOCH + ((now - EPOCH) // window) * window

"""The retry rule of every outbox (recorded deletions, webhook deliveries): exponential backoff."""

from __future__ import annotations

import datetime as dt


def exponential_backoff(attempts: int, *, base_seconds: int, max_seconds: int) -> dt.timedelta:
    """Delay before retry number ``attempts`` (1-based): ``base``, ``2 base``, ``4 base``, ... at most ``max``.

    Args:
        attempts: failed attempts so far (values below 1 count as 1).
        base_seconds: the first delay; max_seconds: the cap (seconds).
    Returns:
        the delay as a timedelta.
    """
    return dt.timedelta(seconds=min(base_seconds * 2 ** max(attempts - 1, 0), max_seconds))

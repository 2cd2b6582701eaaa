"""Opaque keyset cursors for newest-first listings.

A cursor encodes the ``(created_at, id)`` of the last row of a page; the next page
is the rows strictly before it in ``(created_at DESC, id DESC)`` order, which stays
correct while rows are inserted and costs one index range scan at any depth.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid


def encode_cursor(created_at: dt.datetime, clip_id: uuid.UUID) -> str:
    """Encode a keyset position as URL-safe base64 (no padding)."""
    raw = json.dumps([created_at.astimezone(dt.UTC).isoformat(), str(clip_id)], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    """Decode :func:`encode_cursor` output, refusing anything it could not have produced.

    A cursor is client input that reaches SQL, so it is checked completely first: two
    strings, the first the canonical ISO 8601 form of a UTC datetime (offset exactly
    +00:00: other offsets overflow ``astimezone`` near the calendar's ends, and PostgreSQL
    refuses offsets with seconds), the second a UUID in its canonical form.

    Args:
        cursor: URL-safe base64 (padding optional) of ``["<created_at>", "<uuid>"]``.
    Returns:
        ``(created_at, clip_id)``: an aware UTC datetime and the clip's id.
    Raises:
        ValueError: the cursor was not produced by :func:`encode_cursor`.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        decoded = json.loads(raw)
        # uuid.UUID(5) raises AttributeError, not ValueError: the shape is checked first.
        if not (isinstance(decoded, list) and len(decoded) == 2 and all(isinstance(v, str) for v in decoded)):
            raise ValueError("invalid cursor")
        created_text, id_text = decoded
        created_at, clip_id = dt.datetime.fromisoformat(created_text), uuid.UUID(id_text)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError, RecursionError) as exc:
        raise ValueError("invalid cursor") from exc
    # fromisoformat accepts far more than encode_cursor writes (other offsets, basic
    # format, week dates); only the exact round trip of a UTC value is a cursor.
    if created_at.utcoffset() != dt.timedelta(0) or created_at.isoformat() != created_text:
        raise ValueError("invalid cursor")
    if str(clip_id) != id_text:
        raise ValueError("invalid cursor")
    return created_at.replace(tzinfo=dt.UTC), clip_id

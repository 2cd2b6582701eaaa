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
    """Decode :func:`encode_cursor` output.

    Raises:
        ValueError: the cursor was not produced by :func:`encode_cursor`.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        decoded = json.loads(raw)
        # A cursor is client input: check the shape before using it, since
        # uuid.UUID(5) raises AttributeError, not ValueError (issue 13 item 6).
        if not (isinstance(decoded, list) and len(decoded) == 2 and all(isinstance(v, str) for v in decoded)):
            raise ValueError("invalid cursor")
        created, clip_id = decoded
        position = dt.datetime.fromisoformat(created), uuid.UUID(clip_id)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError, RecursionError) as exc:
        raise ValueError("invalid cursor") from exc
    if position[0].tzinfo is None:
        raise ValueError("invalid cursor")
    return position

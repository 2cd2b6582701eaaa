"""The state machine's one write: "update this clip if it is still pending" (DESIGN §3).

Every transition out of ``pending`` (ready, rejected, expired) and every change that is
only valid while pending (a new upload expiry) goes through :func:`update_if_pending`,
so concurrent or repeated callers are safe: exactly one wins, the others see the row
unchanged and re-read the final state. complete's ``ready`` is the same guarded UPDATE,
prebuilt once for the hot path (``adapters.clip_sql.MARK_READY``, with RETURNING).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection
from typing import Any

from sqlalchemy import case, literal, update
from sqlalchemy.orm import Session

from advanced_notes.adapters.models import AudioClip, Clip, ClipStatus
from advanced_notes.domain.clock import utcnow
from advanced_notes.domain.errors import NEW_UPLOAD_SESSION, Conflict

PENDING, READY, REJECTED, EXPIRED = (
    ClipStatus.PENDING.value,
    ClipStatus.READY.value,
    ClipStatus.REJECTED.value,
    ClipStatus.EXPIRED.value,
)


def update_if_pending(session: Session, clip_ids: uuid.UUID | Collection[uuid.UUID], **values: Any) -> set[uuid.UUID]:
    """``UPDATE audio_clips SET values WHERE id IN clip_ids AND status = 'pending'`` in ``session``.

    Args:
        session: an open transaction (the caller commits, together with any outbox record).
        clip_ids: one clip id or several.
        values: columns to set (``status=READY``, ``upload_expires_at=...``); ``updated_at``
            defaults to now.
    Returns:
        the ids this call changed: the winners of the compare-and-set.
    """
    ids = [clip_ids] if isinstance(clip_ids, uuid.UUID) else list(clip_ids)
    if not ids:
        return set()
    values.setdefault("updated_at", utcnow())
    statement = (
        update(AudioClip)
        .where(AudioClip.id.in_(ids), AudioClip.status == PENDING)
        .values(**values)
        .returning(AudioClip.id)
        .execution_options(synchronize_session=False)
    )
    return set(session.scalars(statement))


def later_expiry(candidate: dt.datetime) -> Any:
    """SQL for "the later of the stored ``upload_expires_at`` and ``candidate``" (NULL counts as earlier).

    For ``update_if_pending(..., upload_expires_at=later_expiry(t))``: the database compares
    with the value it holds at the UPDATE, so concurrent refreshes never move it backwards.
    """
    stored = AudioClip.upload_expires_at
    value = literal(candidate, stored.type)
    return case((stored.is_not(None) & (stored > value), stored), else_=value)


def ready_or_conflict(clip: Clip) -> Clip:
    """What completing a clip that is no longer pending answers: the clip itself when ready.

    Raises:
        Conflict: the clip is rejected or expired (``details.status`` says which; for a
            rejected clip ``details.rejection`` is its verdict: ``reason``, ``message``).
    """
    if clip.status == READY:
        return clip
    rejection = getattr(clip, "rejection", None)
    if clip.status == REJECTED and rejection:
        raise Conflict(
            f"The clip was rejected and cannot be completed: {rejection.get('message')}",
            {"status": clip.status, "rejection": rejection},
        )
    raise Conflict(f"The clip is {clip.status} and cannot be completed. {NEW_UPLOAD_SESSION}", {"status": clip.status})

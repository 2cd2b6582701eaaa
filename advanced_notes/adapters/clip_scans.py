"""The sweeper's reads and writes of ``audio_clips``: batch scans in keyset order.

The frequent sweep reads only pending rows (``ix_audio_clips_status_created``; in id order
``ix_audio_clips_pending_id``), the nightly reconcile every row in id order (the primary
key), in keyset batches either way. The request paths' statements are in
:mod:`advanced_notes.adapters.clip_sql`; these are the ones only the sweeper runs.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection

from sqlalchemy import func, select, tuple_, update

from advanced_notes.adapters.clip_sql import CLIPS, records
from advanced_notes.adapters.db import Executor
from advanced_notes.adapters.models import ClipRecord, ClipStatus


def pending_created_before(
    executor: Executor,
    *,
    before: dt.datetime,
    after: tuple[dt.datetime, uuid.UUID] | None,
    limit: int,
) -> list[ClipRecord]:
    """Up to ``limit`` pending clips created before ``before``, by ``(created_at, id)`` after ``after``.

    Keyset paging: pass the last clip's ``(created_at, id)`` as ``after`` for the next page.
    The plain bound on ``created_at`` lets the (status, created_at) index start the scan at
    the keyset instead of walking the entries of every clip expired earlier in the same
    run (dead until vacuumed): without it a run is quadratic in expiries.
    """
    query = select(CLIPS).where(CLIPS.c.status == ClipStatus.PENDING.value, CLIPS.c.created_at < before)
    if after is not None:
        query = query.where(CLIPS.c.created_at >= after[0], tuple_(CLIPS.c.created_at, CLIPS.c.id) > tuple_(*after))
    return records(executor.execute(query.order_by(CLIPS.c.created_at, CLIPS.c.id).limit(limit)))


def count_pending_created_before(executor: Executor, *, before: dt.datetime, limit: int) -> int:
    """How many pending clips were created before ``before``, counting at most ``limit`` (an index range)."""
    inner = (
        select(CLIPS.c.id)
        .where(CLIPS.c.status == ClipStatus.PENDING.value, CLIPS.c.created_at < before)
        .limit(limit)
        .subquery()
    )
    return executor.execute(select(func.count()).select_from(inner)).scalar_one()


def clip_scan_after(
    executor: Executor, *, after: uuid.UUID | None, limit: int, pending_only: bool
) -> list[tuple[uuid.UUID, str, str, dt.datetime | None, dt.datetime]]:
    """Up to ``limit`` clips by ``id`` after ``after``: ``(id, storage_key, status, completed_at, created_at)``.

    With ``pending_only``, only pending clips (``ix_audio_clips_pending_id``, a partial
    index: the frequent sweep's listing fallback reads no other row).
    """
    query = select(CLIPS.c.id, CLIPS.c.storage_key, CLIPS.c.status, CLIPS.c.completed_at, CLIPS.c.created_at)
    if pending_only:
        query = query.where(CLIPS.c.status == ClipStatus.PENDING.value)
    if after is not None:
        query = query.where(CLIPS.c.id > after)
    return [tuple(row) for row in executor.execute(query.order_by(CLIPS.c.id).limit(limit))]


def clips_by_ids(executor: Executor, *, ids: Collection[uuid.UUID], pending_only: bool = False) -> list[ClipRecord]:
    """The clips among ``ids`` (only the pending ones with ``pending_only``); none for no ids."""
    if not ids:
        return []
    query = select(CLIPS).where(CLIPS.c.id.in_(list(ids)))
    if pending_only:
        query = query.where(CLIPS.c.status == ClipStatus.PENDING.value)
    return records(executor.execute(query))


def upload_expiries(executor: Executor, *, clip_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, dt.datetime | None]:
    """``upload_expires_at`` of each clip among ``clip_ids`` as stored now (read in the caller's transaction)."""
    if not clip_ids:
        return {}
    rows = executor.execute(select(CLIPS.c.id, CLIPS.c.upload_expires_at).where(CLIPS.c.id.in_(list(clip_ids))))
    return {row.id: row.upload_expires_at for row in rows}


def reopen_pending(executor: Executor, *, ids: Collection[uuid.UUID]) -> None:
    """Set the clips ``ids`` back to pending inside the caller's transaction (an expiry that lost a race)."""
    if ids:
        executor.execute(update(CLIPS).where(CLIPS.c.id.in_(list(ids))).values(status=ClipStatus.PENDING.value))

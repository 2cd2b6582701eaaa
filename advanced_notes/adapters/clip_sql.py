"""The request hot paths' SQL, as SQLAlchemy Core statements built once at import.

Playback, note audio, create and complete run these with
:meth:`~advanced_notes.adapters.db.Database.statement`: no ORM session, identity map or
entity loading per request, and a statement whose structure never changes, so its
compiled form comes from SQLAlchemy's cache. Rows come back as
:class:`~advanced_notes.adapters.models.ClipRecord`. (Measured for issue 15 on PostgreSQL:
an ORM read of one clip 0.95 ms, the same read with a prebuilt Core statement 0.30 ms.)
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection
from typing import Any

from sqlalchemy import (
    Connection,
    Executable,
    Table,
    and_,
    bindparam,
    cast,
    exists,
    func,
    literal,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from advanced_notes.adapters.db import Database
from advanced_notes.adapters.models import AudioClip, ClipRecord, ClipStatus, OwnerUsage

CLIPS: Table = AudioClip.__table__  # type: ignore[assignment]  # declarative tables are Tables
USAGE: Table = OwnerUsage.__table__  # type: ignore[assignment]

#: ``:clip_id`` of ``:owner_id`` (another owner's clip is no row at all).
CLIP_BY_ID = select(CLIPS).where(CLIPS.c.id == bindparam("clip_id"), CLIPS.c.owner_id == bindparam("owner_id"))

#: The clip ``:owner_id`` created with the Idempotency-Key ``:key``.
CLIP_BY_IDEMPOTENCY_KEY = select(CLIPS).where(
    CLIPS.c.owner_id == bindparam("owner_id"), CLIPS.c.idempotency_key == bindparam("key")
)

#: The note's primary clip: the most recent ready one of ``:owner_id`` for ``:note_id``
#: (one backward scan of ix_audio_clips_owner_note_status_created, no sort).
NOTE_AUDIO = (
    select(CLIPS)
    .where(
        CLIPS.c.owner_id == bindparam("owner_id"),
        CLIPS.c.note_id == bindparam("note_id"),
        CLIPS.c.status == ClipStatus.READY.value,
    )
    .order_by(CLIPS.c.created_at.desc(), CLIPS.c.id.desc())
    .limit(1)
)

#: An owner's quota figures (maintained by triggers, revision 0007).
OWNER_USAGE = select(USAGE.c.pending_uploads, USAGE.c.used_bytes).where(USAGE.c.owner_id == bindparam("owner_id"))

#: The compare-and-set of a successful complete: ``:clip_id`` becomes ready if it is
#: still pending, and the row as stored comes back (no second read). Its processing is
#: queued: a trigger (revision 0009) writes the job row in the same statement.
MARK_READY = (
    update(CLIPS)
    .where(CLIPS.c.id == bindparam("clip_id"), CLIPS.c.status == ClipStatus.PENDING.value)
    .values(
        status=ClipStatus.READY.value,
        etag=bindparam("etag"),
        stored_bytes=bindparam("stored_bytes"),
        measured_duration_ms=bindparam("measured_duration_ms"),
        completed_at=bindparam("completed_at"),
        updated_at=bindparam("updated_at"),
        verification_lease_until=None,
        processing_status="queued",
    )
    .returning(*CLIPS.c)
)

#: Take the verification lease of ``:clip_id`` until ``:until`` if it is pending and no
#: lease is held (none, or one that expired before ``:now``): one winner per clip.
TAKE_LEASE = (
    update(CLIPS)
    .where(
        CLIPS.c.id == bindparam("clip_id"),
        CLIPS.c.status == ClipStatus.PENDING.value,
        or_(CLIPS.c.verification_lease_until.is_(None), CLIPS.c.verification_lease_until < bindparam("now")),
    )
    .values(verification_lease_until=bindparam("until"))
)

#: Give up the lease ``:until`` of ``:clip_id`` (a no-op if another caller took it over).
RELEASE_LEASE = (
    update(CLIPS)
    .where(CLIPS.c.id == bindparam("clip_id"), CLIPS.c.verification_lease_until == bindparam("until"))
    .values(verification_lease_until=None)
)

_INSERTED = [c.name for c in CLIPS.c]


def create_clip_statement(dialect: str, *, pending_limit: bool, bytes_limit: bool) -> Executable:
    """``INSERT`` one clip only if its owner stays within the quotas, in ONE statement.

    Args:
        dialect: ``"postgresql"`` or ``"sqlite"``.
        pending_limit: check ``:max_pending`` (the owner's pending uploads must be fewer).
        bytes_limit: check ``:quota_bytes`` (pending + ready bytes plus ``:bytes`` must fit).
    Returns:
        a statement taking every ``audio_clips`` column as a bind parameter of its name
        (``ClipRecord.values()``) plus the limits; it returns the new clip's id, or no row
        when a quota refused it.

    PostgreSQL (autocommit: one round trip, atomic by itself): a CTE upserts the owner's
    ``owner_usage`` row, which locks it until the statement commits, and its RETURNING
    gives the figures as they are *now* (not as of the statement's snapshot), so
    concurrent creates of one owner are checked one after another and the quota is exact.
    The trigger on ``audio_clips`` then adds the new clip to those figures. SQLite has no
    data-modifying CTEs; its writes are serialized (BEGIN IMMEDIATE), so the check reads
    the row in the same statement.
    """
    postgresql = dialect == "postgresql"
    figures: Any
    if postgresql:
        upsert = pg_insert(USAGE).values(owner_id=bindparam("owner_id"), pending_uploads=0, used_bytes=0)
        figures = (
            upsert.on_conflict_do_update(index_elements=[USAGE.c.owner_id], set_={"owner_id": upsert.excluded.owner_id})
            .returning(USAGE.c.pending_uploads, USAGE.c.used_bytes)
            .cte("usage")
        )
    else:
        figures = USAGE
    over: list[ColumnElement[bool]] = []
    if pending_limit:
        over.append(figures.c.pending_uploads >= bindparam("max_pending"))
    if bytes_limit:
        over.append(figures.c.used_bytes + bindparam("bytes", type_=CLIPS.c.bytes.type) > bindparam("quota_bytes"))

    def value(name: str) -> Any:
        column = CLIPS.c[name]
        param = bindparam(name, type_=column.type)
        # INSERT ... SELECT: PostgreSQL types a bare parameter in a select list as text.
        return cast(param, column.type) if postgresql else param

    rows = select(*(value(name) for name in _INSERTED))
    if postgresql:
        rows = rows.select_from(figures)
        if over:
            rows = rows.where(~or_(*over))
    elif over:
        owner = USAGE.c.owner_id == bindparam("owner_id")
        rows = rows.where(~exists(select(literal(1)).select_from(USAGE).where(and_(owner, or_(*over)))))
    statement = CLIPS.insert().from_select(_INSERTED, rows).returning(CLIPS.c.id)
    if postgresql:
        # Data-modifying CTEs are allowed only at the top of the statement.
        return statement.add_cte(figures, nest_here=True)
    return statement


def read_clip(db: Database, clip_id: uuid.UUID, owner_id: str) -> ClipRecord | None:
    """Clip ``clip_id`` of ``owner_id`` as stored now (one SELECT); None when there is no such row."""
    with db.statement() as conn:
        return record(conn.execute(CLIP_BY_ID, {"clip_id": clip_id, "owner_id": owner_id}).first())


def record(row: Any) -> ClipRecord | None:
    """A :class:`ClipRecord` from a row of every column, None for no row."""
    return None if row is None else ClipRecord.from_row(row)


# Sweeper scans
#
# The sweeper's reads and writes of ``audio_clips``. The frequent sweep reads only pending
# rows (``ix_audio_clips_status_created``; in id order ``ix_audio_clips_pending_id``), the
# nightly reconcile every row in id order (the primary key), in keyset batches either way.


def pending_created_before(
    executor: Session | Connection,
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
    rows = executor.execute(query.order_by(CLIPS.c.created_at, CLIPS.c.id).limit(limit))
    return [ClipRecord.from_row(row) for row in rows]


def count_pending_created_before(executor: Session | Connection, *, before: dt.datetime, limit: int) -> int:
    """How many pending clips were created before ``before``, counting at most ``limit`` (an index range)."""
    inner = (
        select(CLIPS.c.id)
        .where(CLIPS.c.status == ClipStatus.PENDING.value, CLIPS.c.created_at < before)
        .limit(limit)
        .subquery()
    )
    return executor.execute(select(func.count()).select_from(inner)).scalar_one()


def clip_scan_after(
    executor: Session | Connection, *, after: uuid.UUID | None, limit: int, pending_only: bool
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


def clips_by_ids(
    executor: Session | Connection, *, ids: Collection[uuid.UUID], pending_only: bool = False
) -> list[ClipRecord]:
    """The clips among ``ids`` (only the pending ones with ``pending_only``); none for no ids."""
    if not ids:
        return []
    query = select(CLIPS).where(CLIPS.c.id.in_(list(ids)))
    if pending_only:
        query = query.where(CLIPS.c.status == ClipStatus.PENDING.value)
    return [ClipRecord.from_row(row) for row in executor.execute(query)]


def upload_expiries(
    executor: Session | Connection, *, clip_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, dt.datetime | None]:
    """``upload_expires_at`` of each clip among ``clip_ids`` as stored now (read in the caller's transaction)."""
    if not clip_ids:
        return {}
    rows = executor.execute(select(CLIPS.c.id, CLIPS.c.upload_expires_at).where(CLIPS.c.id.in_(list(clip_ids))))
    return {row.id: row.upload_expires_at for row in rows}


def reopen_pending(executor: Session | Connection, *, ids: Collection[uuid.UUID]) -> None:
    """Set the clips ``ids`` back to pending inside the caller's transaction (an expiry that lost a race)."""
    if ids:
        executor.execute(update(CLIPS).where(CLIPS.c.id.in_(list(ids))).values(status=ClipStatus.PENDING.value))

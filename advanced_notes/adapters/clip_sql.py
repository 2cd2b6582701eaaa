"""Every statement of the request paths on the ``audio_clips`` table, one keyword-only function
each (the sweeper's keyset scans are in :mod:`advanced_notes.adapters.clip_scans`).

Each function takes the connection of :meth:`~advanced_notes.adapters.db.Database.statement`
or the session of :meth:`~advanced_notes.adapters.db.Database.transaction` (``conn``), runs
its SQL, and returns plain values or :class:`~advanced_notes.adapters.models.ClipRecord`:
no ORM entity, identity map or SQLAlchemy type leaves this module. The caller decides the
transaction (a transition and its outbox rows commit together). Statements whose shape
never changes are built once at import, so their compiled form comes from SQLAlchemy's
cache; figures are in docs/benchmarks.md.

Transitions are compare-and-set (DESIGN §3): ``UPDATE ... WHERE status = 'pending'``, so
of concurrent or repeated callers exactly one changes the row; the others get None (or an
empty set) and re-read the final state.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import Table, and_, bindparam, case, cast, delete, exists, literal, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import Executable, Update
from sqlalchemy.sql.elements import ColumnElement

from advanced_notes.adapters.db import Database, Executor
from advanced_notes.adapters.models import AudioClip, ClipRecord, ClipStatus, OwnerUsage
from advanced_notes.domain.clock import utcnow

CLIPS: Table = AudioClip.__table__  # type: ignore[assignment]  # declarative tables are Tables
USAGE: Table = OwnerUsage.__table__  # type: ignore[assignment]
_PENDING = ClipStatus.PENDING.value


class IdempotencyKeyTaken(Exception):
    """:func:`create_clip` found the owner's Idempotency-Key already used (a concurrent repeat won)."""


def record(row: Any) -> ClipRecord | None:
    """A :class:`ClipRecord` from a row of every column (``SELECT *``, ``RETURNING *``), None for no row."""
    return None if row is None else ClipRecord(**row._mapping)


def records(rows: Any) -> list[ClipRecord]:
    return [ClipRecord(**row._mapping) for row in rows]


# -- reads ------------------------------------------------------------------------------

_BY_ID = select(CLIPS).where(CLIPS.c.id == bindparam("clip_id"))
_BY_ID_OF_OWNER = _BY_ID.where(CLIPS.c.owner_id == bindparam("owner_id"))
_BY_IDEMPOTENCY_KEY = select(CLIPS).where(
    CLIPS.c.owner_id == bindparam("owner_id"), CLIPS.c.idempotency_key == bindparam("key")
)
# One backward scan of ix_audio_clips_owner_note_status_created, no sort.
_NOTE_AUDIO = (
    select(CLIPS)
    .where(
        CLIPS.c.owner_id == bindparam("owner_id"),
        CLIPS.c.note_id == bindparam("note_id"),
        CLIPS.c.status == ClipStatus.READY.value,
    )
    .order_by(CLIPS.c.created_at.desc(), CLIPS.c.id.desc())
    .limit(1)
)
_OWNER_USAGE = select(USAGE.c.pending_uploads, USAGE.c.used_bytes).where(USAGE.c.owner_id == bindparam("owner_id"))


def get_clip(*, conn: Executor, clip_id: uuid.UUID, owner_id: str | None) -> ClipRecord | None:
    """Clip ``clip_id`` as stored now; None when there is no such row.

    ``owner_id`` None reads any owner's clip (bucket events know only the key); otherwise
    another owner's clip is no row at all.
    """
    if owner_id is None:
        return record(conn.execute(_BY_ID, {"clip_id": clip_id}).first())
    return record(conn.execute(_BY_ID_OF_OWNER, {"clip_id": clip_id, "owner_id": owner_id}).first())


def get_clip_by_idempotency_key(*, conn: Executor, owner_id: str, key: str) -> ClipRecord | None:
    """The clip ``owner_id`` created with the Idempotency-Key ``key``, or None."""
    return record(conn.execute(_BY_IDEMPOTENCY_KEY, {"owner_id": owner_id, "key": key}).first())


def get_note_audio(*, conn: Executor, owner_id: str, note_id: str) -> ClipRecord | None:
    """The note's primary clip: the most recent ``ready`` one of ``owner_id`` (by created_at, then id)."""
    return record(conn.execute(_NOTE_AUDIO, {"owner_id": owner_id, "note_id": note_id}).first())


def list_clips(
    *,
    conn: Executor,
    owner_id: str,
    limit: int,
    note_id: str | None = None,
    status: str | None = None,
    before: tuple[dt.datetime, uuid.UUID] | None = None,
) -> list[ClipRecord]:
    """The owner's clips, newest first (``created_at``, then ``id``), at most ``limit``.

    ``before`` is a keyset cursor: only clips ordered after ``(created_at, id)``
    (ix_audio_clips_owner_created serves the order without a sort).
    """
    clips = CLIPS.c
    query = select(CLIPS).where(clips.owner_id == owner_id)
    if note_id is not None:
        query = query.where(clips.note_id == note_id)
    if status is not None:
        query = query.where(clips.status == status)
    if before is not None:
        query = query.where(tuple_(clips.created_at, clips.id) < tuple_(*before))
    query = query.order_by(clips.created_at.desc(), clips.id.desc()).limit(limit)
    return records(conn.execute(query))


def owner_usage(*, conn: Executor, owner_id: str) -> tuple[int, int]:
    """The owner's quota figures ``(pending uploads, bytes of pending + ready clips)``.

    Maintained by database triggers (revision 0007); ``(0, 0)`` for an owner with no row.
    """
    row = conn.execute(_OWNER_USAGE, {"owner_id": owner_id}).first()
    return (row.pending_uploads, row.used_bytes) if row is not None else (0, 0)


# -- create -----------------------------------------------------------------------------

_INSERTED = [c.name for c in CLIPS.c]


def create_clip(*, conn: Executor, clip: ClipRecord, max_pending: int, quota_bytes: int) -> bool:
    """Insert ``clip`` if its owner stays within the quotas, in ONE statement.

    Args:
        clip: the new row (every column). max_pending: the owner's pending uploads must
            be fewer (0: no limit). quota_bytes: pending + ready bytes plus ``clip.bytes``
            must fit (0: no limit).
    Returns:
        False when a quota refused it (nothing was written).
    Raises:
        IdempotencyKeyTaken: the owner already used ``clip.idempotency_key``.
    """
    dialect = conn.dialect.name if isinstance(conn, Connection) else conn.get_bind().dialect.name
    statement = _create_statement(dialect, pending_limit=bool(max_pending), bytes_limit=bool(quota_bytes))
    params = {name: getattr(clip, name) for name in _INSERTED}
    params.update(max_pending=max_pending, quota_bytes=quota_bytes)
    try:
        return conn.execute(statement, params).first() is not None
    except IntegrityError as exc:
        if clip.idempotency_key is None:
            raise
        raise IdempotencyKeyTaken(clip.idempotency_key) from exc


@functools.cache
def _create_statement(dialect: str, *, pending_limit: bool, bytes_limit: bool) -> Executable:
    """``INSERT ... SELECT`` of one clip that returns its id, or no row when a quota refused it.

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


# -- transitions: compare-and-set on a pending clip -------------------------------------

_IS_PENDING = and_(CLIPS.c.id == bindparam("clip_id"), CLIPS.c.status == _PENDING)

#: complete's ready: the row as stored comes back (no second read). Its processing is
#: queued: a trigger (revision 0009) writes the job row in the same statement.
MARK_READY = (
    update(CLIPS)
    .where(_IS_PENDING)
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


def mark_ready(
    *,
    conn: Executor,
    clip_id: uuid.UUID,
    etag: str | None,
    stored_bytes: int,
    measured_duration_ms: int | None,
    now: dt.datetime,
) -> ClipRecord | None:
    """Pending clip ``clip_id`` becomes ``ready`` with what the store reported (sizes bytes,
    duration ms; ``now`` is its completed_at), its lease cleared and its processing queued.

    Returns:
        the row as stored if this call won, None if the clip was no longer pending.
    """
    params = {
        "clip_id": clip_id,
        "etag": etag,
        "stored_bytes": stored_bytes,
        "measured_duration_ms": measured_duration_ms,
        "completed_at": now,
        "updated_at": now,
    }
    return record(conn.execute(MARK_READY, params).first())


def _if_pending(clip_ids: Collection[uuid.UUID], values: Mapping[str, Any], *also: ColumnElement[bool]) -> Update:
    """The compare-and-set: ``UPDATE audio_clips SET values WHERE id IN clip_ids AND status = 'pending'``."""
    where = [CLIPS.c.id.in_(list(clip_ids)), CLIPS.c.status == _PENDING, *also]
    return update(CLIPS).where(*where).values(dict(values))


def mark_rejected(
    *,
    conn: Executor,
    clip_id: uuid.UUID,
    rejection: Mapping[str, Any],
    etag: str | None,
    stored_bytes: int | None,
    now: dt.datetime,
) -> ClipRecord | None:
    """Pending clip ``clip_id`` becomes ``rejected`` with its verdict (``{"message", **details}``)
    and what the store reported; its lease is cleared.

    Returns:
        the row as stored if this call won (its ``upload_expires_at`` is final: no URL
        can be minted for it any more), None if the clip was no longer pending.
    """
    values = {
        "status": ClipStatus.REJECTED.value,
        "rejection": dict(rejection),
        "etag": etag,
        "stored_bytes": stored_bytes,
        "verification_lease_until": None,
        "updated_at": now,
    }
    return record(conn.execute(_if_pending([clip_id], values).returning(*CLIPS.c)).first())


def mark_expired(*, conn: Executor, clip_ids: Collection[uuid.UUID], now: dt.datetime) -> list[ClipRecord]:
    """The pending clips among ``clip_ids`` become ``expired``; the rows this call changed, as stored."""
    if not clip_ids:
        return []
    statement = _if_pending(clip_ids, {"status": ClipStatus.EXPIRED.value, "updated_at": now}).returning(*CLIPS.c)
    return records(conn.execute(statement))


def update_if_pending(*, conn: Executor, clip_ids: Collection[uuid.UUID], values: Mapping[str, Any]) -> set[uuid.UUID]:
    """Set ``values`` (column -> value; ``updated_at`` defaults to now) on the pending clips
    among ``clip_ids``; returns the ids this call changed: the winners of the compare-and-set."""
    if not clip_ids:
        return set()
    statement = _if_pending(clip_ids, {"updated_at": utcnow(), **values}).returning(CLIPS.c.id)
    return set(conn.execute(statement).scalars())


def extend_upload_expiry(
    *, conn: Executor, clip_id: uuid.UUID, expires_at: dt.datetime, now: dt.datetime
) -> dt.datetime | None:
    """Record a newly signed PUT URL's expiry on pending clip ``clip_id``.

    The database keeps the later of the stored expiry and ``expires_at``, compared with
    the value it holds at the UPDATE, so concurrent refreshes never move it backwards.
    Returns:
        the expiry as stored now if the clip was pending, else None (nothing changed).
    """
    stored = CLIPS.c.upload_expires_at
    candidate = literal(expires_at, stored.type)
    later = case((stored.is_not(None) & (stored > candidate), stored), else_=candidate)
    statement = _if_pending([clip_id], {"upload_expires_at": later, "updated_at": now}).returning(stored)
    return conn.execute(statement).scalar()


def drop_multipart_upload(*, conn: Executor, clip_id: uuid.UUID, upload_id: str, now: dt.datetime) -> bool:
    """Forget the aborted multipart upload ``upload_id`` of pending clip ``clip_id``.

    Returns False when the clip is no longer pending or holds another upload.
    """
    values = {"multipart_upload_id": None, "updated_at": now}
    statement = _if_pending([clip_id], values, CLIPS.c.multipart_upload_id == upload_id).returning(CLIPS.c.id)
    return conn.execute(statement).first() is not None


# -- the verification lease (single flight of verifications, services/completion.py) ----

_TAKE_LEASE = (
    update(CLIPS)
    .where(
        _IS_PENDING,
        or_(CLIPS.c.verification_lease_until.is_(None), CLIPS.c.verification_lease_until < bindparam("now")),
    )
    .values(verification_lease_until=bindparam("until"))
    .returning(CLIPS.c.id)
)
_RELEASE_LEASE = (
    update(CLIPS)
    .where(CLIPS.c.id == bindparam("clip_id"), CLIPS.c.verification_lease_until == bindparam("until"))
    .values(verification_lease_until=None)
)


def take_verification_lease(*, conn: Executor, clip_id: uuid.UUID, now: dt.datetime, until: dt.datetime) -> bool:
    """Hold pending clip ``clip_id`` until ``until`` if no lease is held (none, or one that
    ended before ``now``): True for the one winner."""
    return conn.execute(_TAKE_LEASE, {"clip_id": clip_id, "now": now, "until": until}).first() is not None


def release_verification_lease(*, conn: Executor, clip_id: uuid.UUID, until: dt.datetime) -> None:
    """Give back the lease ``until`` of ``clip_id`` (a no-op if another caller took it over)."""
    conn.execute(_RELEASE_LEASE, {"clip_id": clip_id, "until": until})


# -- attach, delete ---------------------------------------------------------------------


def set_note(
    *, conn: Executor, clip_id: uuid.UUID, owner_id: str, note_id: str | None, now: dt.datetime
) -> ClipRecord | None:
    """Attach the owner's clip to ``note_id`` (None detaches it); the row as stored, or None (no such clip)."""
    statement = (
        update(CLIPS)
        .where(CLIPS.c.id == clip_id, CLIPS.c.owner_id == owner_id)
        .values(note_id=note_id, updated_at=now)
        .returning(*CLIPS.c)
    )
    return record(conn.execute(statement).first())


def delete_clip(*, conn: Executor, clip_id: uuid.UUID, owner_id: str) -> ClipRecord | None:
    """``DELETE ... RETURNING *`` of the owner's clip: the row as it was when deleted, or None.

    The row as deleted, not as read before: a concurrent update (a new upload expiry)
    either lands before the DELETE's row lock, and shows here, or finds no row.
    """
    statement = delete(CLIPS).where(CLIPS.c.id == clip_id, CLIPS.c.owner_id == owner_id).returning(*CLIPS.c)
    return record(conn.execute(statement).first())


def delete_note_clips(*, conn: Executor, owner_id: str, note_id: str, limit: int) -> list[ClipRecord]:
    """Delete up to ``limit`` of the owner's clips of ``note_id`` (any status); the rows as deleted."""
    chosen = select(CLIPS.c.id).where(CLIPS.c.owner_id == owner_id, CLIPS.c.note_id == note_id).limit(limit)
    statement = delete(CLIPS).where(CLIPS.c.id.in_(chosen)).returning(*CLIPS.c)
    return records(conn.execute(statement))


def read_clip(db: Database, clip_id: uuid.UUID, owner_id: str) -> ClipRecord | None:
    """:func:`get_clip` on a connection of its own (the sweeper's form)."""
    with db.statement() as conn:
        return get_clip(conn=conn, clip_id=clip_id, owner_id=owner_id)

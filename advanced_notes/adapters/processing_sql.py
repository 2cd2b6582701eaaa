"""The processing stage's SQL: the ``processing_jobs`` outbox and the clip's processing state.

Keyword-only functions that take the caller's session or connection, so the services
(:mod:`advanced_notes.services.processing_relay` and ``processing_runner``) decide the
transactions and import no SQLAlchemy. Timestamps are aware UTC. The mechanics are those of ``pending_deletions``
and ``webhook_deliveries``: a row is due while ``next_attempt_at <= now``; ``None``
means finished.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import Connection, Table, delete, func, select, update
from sqlalchemy.orm import Session

from advanced_notes.adapters.clip_sql import CLIPS, record
from advanced_notes.adapters.models import ClipRecord, ClipStatus, ProcessingJob, ProcessingStatus

JOBS: Table = ProcessingJob.__table__  # type: ignore[assignment]  # declarative tables are Tables

Executor = Session | Connection


@dataclass(frozen=True)
class ClaimedJob:
    """A job a worker holds: ``attempts`` counts this run (1 for the first)."""

    clip_id: uuid.UUID
    attempts: int


def claim_due_jobs(
    executor: Executor, *, now: dt.datetime, limit: int, republish_at: dt.datetime
) -> list[tuple[uuid.UUID, dt.datetime]]:
    """Claim up to ``limit`` due jobs for publishing, in one statement.

    Due: ``next_attempt_at <= now``, oldest first. Each claimed row's ``next_attempt_at``
    becomes ``republish_at``: if the message is lost or its worker dies, the job is due
    again then. On PostgreSQL the rows are picked ``FOR UPDATE SKIP LOCKED``, so relays on
    several machines claim different rows; SQLite serializes writers (BEGIN IMMEDIATE).

    Returns:
        ``(clip_id, previous next_attempt_at)`` of every claimed job (the previous time
        lets :func:`release_jobs` undo a claim whose publish failed).
    """
    due = (
        select(JOBS.c.clip_id, JOBS.c.next_attempt_at)
        .where(JOBS.c.next_attempt_at <= now)
        .order_by(JOBS.c.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    previous = {row.clip_id: row.next_attempt_at for row in executor.execute(due)}
    if not previous:
        return []
    claimed = executor.execute(
        update(JOBS)
        .where(JOBS.c.clip_id.in_(list(previous)), JOBS.c.next_attempt_at <= now)
        .values(next_attempt_at=republish_at)
        .returning(JOBS.c.clip_id)
    ).scalars()
    return [(clip_id, previous[clip_id]) for clip_id in claimed]


def release_jobs(executor: Executor, *, clip_ids: list[uuid.UUID], at: dt.datetime, claimed_at: dt.datetime) -> int:
    """Make jobs due at ``at`` again, if still as :func:`claim_due_jobs` left them
    (``next_attempt_at == claimed_at``); returns how many rows changed."""
    if not clip_ids:
        return 0
    result = executor.execute(
        update(JOBS)
        .where(JOBS.c.clip_id.in_(clip_ids), JOBS.c.next_attempt_at == claimed_at)
        .values(next_attempt_at=at)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]  # CursorResult of an UPDATE


def claim_job(
    executor: Executor, *, clip_id: uuid.UUID, now: dt.datetime, lease_until: dt.datetime
) -> ClaimedJob | None:
    """A worker takes the job of ``clip_id`` (compare-and-set on the lease).

    Wins only when the job is unfinished (``next_attempt_at`` not None) and nobody holds
    it (``lease_until`` None or past): ``lease_until`` becomes ``lease_until``,
    ``attempts`` + 1, and the clip's ``processing_status`` ``running``. The job is due
    again when the lease ends (``next_attempt_at``): if this worker dies, the relay
    publishes it once more. Two messages for
    one job (a republish, a redelivery) therefore run it once at a time.

    Returns:
        the claimed job, or None (finished, held by another worker, or no such job).
    """
    row = executor.execute(
        update(JOBS)
        .where(
            JOBS.c.clip_id == clip_id,
            JOBS.c.next_attempt_at.is_not(None),
            (JOBS.c.lease_until.is_(None)) | (JOBS.c.lease_until < now),
        )
        .values(lease_until=lease_until, attempts=JOBS.c.attempts + 1, next_attempt_at=lease_until)
        .returning(JOBS.c.attempts)
    ).first()
    if row is None:
        return None
    set_clip_processing(executor, clip_id=clip_id, status=ProcessingStatus.RUNNING.value)
    return ClaimedJob(clip_id, int(row.attempts))


def ready_clip(executor: Executor, *, clip_id: uuid.UUID) -> ClipRecord | None:
    """The clip ``clip_id`` if it exists and is ``ready`` (any owner); else None."""
    row = executor.execute(select(CLIPS).where(CLIPS.c.id == clip_id, CLIPS.c.status == ClipStatus.READY.value)).first()
    return record(row)


def set_clip_processing(
    executor: Executor, *, clip_id: uuid.UUID, status: str, processing: str | None = None
) -> ClipRecord | None:
    """Set the processing state of the ready clip ``clip_id``.

    Args:
        status: a :class:`ProcessingStatus` value.
        processing: the results as JSON text; None leaves the column as it is.
    Returns:
        the clip as stored after the update, or None when no ready clip has that id
        (deleted meanwhile).
    """
    values: dict[str, object] = {"processing_status": status}
    if processing is not None:
        values["processing"] = processing
    row = executor.execute(
        update(CLIPS)
        .where(CLIPS.c.id == clip_id, CLIPS.c.status == ClipStatus.READY.value)
        .values(**values)
        .returning(*CLIPS.c)
    ).first()
    return record(row)


def finish_job(executor: Executor, *, clip_id: uuid.UUID, error: str | None = None) -> None:
    """Mark the job finished (done or failed): not due, not held; ``error`` kept (500 chars)."""
    executor.execute(
        update(JOBS)
        .where(JOBS.c.clip_id == clip_id)
        .values(next_attempt_at=None, lease_until=None, last_error=error[:500] if error else None)
    )


def back_off_job(executor: Executor, *, clip_id: uuid.UUID, next_attempt_at: dt.datetime, error: str) -> None:
    """Release the job for a retry at ``next_attempt_at`` with ``error`` (500 chars kept), and
    set the clip's ``processing_status`` back to ``queued``."""
    executor.execute(
        update(JOBS)
        .where(JOBS.c.clip_id == clip_id)
        .values(next_attempt_at=next_attempt_at, lease_until=None, last_error=error[:500])
    )
    set_clip_processing(executor, clip_id=clip_id, status=ProcessingStatus.QUEUED.value)


def drop_job(executor: Executor, *, clip_id: uuid.UUID) -> None:
    """Delete the job of ``clip_id`` (its clip is gone or not ready: nothing to process)."""
    executor.execute(delete(JOBS).where(JOBS.c.clip_id == clip_id))


def job(executor: Executor, *, clip_id: uuid.UUID) -> ProcessingJob | None:
    """The job row of ``clip_id`` (operators and tests), or None."""
    row = executor.execute(select(JOBS).where(JOBS.c.clip_id == clip_id)).first()
    return None if row is None else ProcessingJob(**row._mapping)


def status_counts(executor: Executor) -> dict[str | None, int]:
    """Clips by ``processing_status`` (None: not ready, or not yet queued)."""
    rows = executor.execute(select(CLIPS.c.processing_status, func.count()).group_by(CLIPS.c.processing_status)).all()
    return {row[0]: int(row[1]) for row in rows}


def count_due_jobs(executor: Executor, *, now: dt.datetime) -> tuple[int, int]:
    """``(due, unfinished)``: jobs whose ``next_attempt_at <= now``, and all not finished."""
    due = executor.execute(select(func.count()).select_from(JOBS).where(JOBS.c.next_attempt_at <= now)).scalar()
    open_ = executor.execute(select(func.count()).select_from(JOBS).where(JOBS.c.next_attempt_at.is_not(None))).scalar()
    return int(due or 0), int(open_ or 0)

"""The outboxes' SQL: ``pending_deletions`` and ``webhook_deliveries``.

Both tables are outboxes with the same mechanics, written once here: a row is due while
``next_attempt_at <= now`` (None: finished); a worker claims a due row with a
compare-and-set that pushes ``next_attempt_at`` one lease ahead, so workers on several
machines never hold the same row; after an attempt the row is updated (rescheduled with
backoff, or finished) or deleted. Functions take the :class:`Database` or the caller's
session, so the services (:mod:`~advanced_notes.services.deletions`,
:mod:`~advanced_notes.services.webhooks`) decide the transactions and import no
SQLAlchemy. Timestamps are aware UTC.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Sequence
from typing import Any, TypeVar

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from advanced_notes.adapters.db import Database, Executor
from advanced_notes.adapters.models import PendingDeletion, WebhookDelivery

#: A failure of the database (connection lost, statement refused), for callers that
#: must not raise after their transaction committed.
DatabaseError = SQLAlchemyError
#: The caller's transaction (ORM session) or connection.
__all__ = ["DatabaseError", "Executor", "Session"]

Row = TypeVar("Row", PendingDeletion, WebhookDelivery)


def add_rows(session: Session, rows: Sequence[PendingDeletion | WebhookDelivery]) -> None:
    """Add new outbox rows to ``session`` (written with the caller's transaction)."""
    session.add_all(rows)


def claim_due(db: Database, model: type[Row], *, now: dt.datetime, limit: int, lease: dt.timedelta) -> list[Row]:
    """Claim up to ``limit`` rows of ``model`` due at ``now``, oldest first.

    One read of the due rows, then per row a compare-and-set on ``next_attempt_at`` (as
    read) that moves it to ``now + lease``, each in its own transaction: a row another
    worker claimed first is skipped. While the lease runs, others leave the row alone; if
    the claimer dies, the row is due again when the lease ends.

    Returns:
        the claimed rows as read (detached ORM objects).
    """
    column = model.next_attempt_at
    with db.read() as session:
        due = list(session.scalars(select(model).where(column <= now).order_by(column, model.id).limit(limit)))
    claimed = []
    for row in due:
        with db.transaction() as session:
            won = session.scalar(
                update(model)
                .where(model.id == row.id, column == row.next_attempt_at)
                .values(next_attempt_at=now + lease)
                .returning(model.id)
                .execution_options(synchronize_session=False)
            )
        if won is not None:
            claimed.append(row)
    return claimed


def count_due(db: Database, model: type[Row], *, now: dt.datetime) -> int:
    """How many rows of ``model`` are due at ``now``."""
    with db.read() as session:
        return session.scalar(select(func.count()).select_from(model).where(model.next_attempt_at <= now)) or 0


def update_row(db: Database, model: type[Row], row_id: uuid.UUID, **values: Any) -> None:
    """Set ``values`` on row ``row_id`` of ``model`` in a transaction of its own."""
    with db.transaction() as session:
        session.execute(
            update(model).where(model.id == row_id).values(**values).execution_options(synchronize_session=False)
        )


def delete_row(db: Database, model: type[Row], row_id: uuid.UUID) -> None:
    """Delete row ``row_id`` of ``model`` (a finished outbox entry) in a transaction of its own."""
    with db.transaction() as session:
        session.execute(delete(model).where(model.id == row_id))


def deletion_keys(executor: Executor, *, clip_ids: Collection[uuid.UUID]) -> set[str]:
    """Object keys with a recorded deletion among the clips ``clip_ids`` (empty for none)."""
    if not clip_ids:
        return set()
    statement = select(PendingDeletion.storage_key).where(PendingDeletion.clip_id.in_(list(clip_ids)))
    return set(executor.scalars(statement))


def webhook_listing(db: Database, *, failed_only: bool, limit: int) -> list[WebhookDelivery]:
    """Deliveries newest first; with ``failed_only``, those not delivered after a failure."""
    query = select(WebhookDelivery).order_by(WebhookDelivery.created_at.desc()).limit(limit)
    if failed_only:
        query = query.where(WebhookDelivery.delivered_at.is_(None), WebhookDelivery.last_error.is_not(None))
    with db.read() as session:
        return list(session.scalars(query))


def webhook_counts(db: Database) -> dict[str, int]:
    """Deliveries by state: ``pending``, ``failing`` (pending after a failure), ``given_up``, ``delivered``."""
    live = (WebhookDelivery.delivered_at.is_(None), WebhookDelivery.given_up_at.is_(None))
    counts = {
        "pending": select(func.count()).where(*live),
        "failing": select(func.count()).where(*live, WebhookDelivery.last_error.is_not(None)),
        "given_up": select(func.count()).where(WebhookDelivery.given_up_at.is_not(None)),
        "delivered": select(func.count()).where(WebhookDelivery.delivered_at.is_not(None)),
    }
    with db.read() as session:
        return {name: session.scalar(query) or 0 for name, query in counts.items()}


def deletions_of(*, session: Session, clip_id: uuid.UUID, storage_key: str | None = None) -> list[PendingDeletion]:
    """The deletion outbox records of ``clip_id`` (only those for ``storage_key`` when given).

    Returned detached from ``session``: they stay readable after it ends and the
    outbox's own statements update them by id.
    """
    query = select(PendingDeletion).where(PendingDeletion.clip_id == clip_id)
    if storage_key is not None:
        query = query.where(PendingDeletion.storage_key == storage_key)
    records = list(session.scalars(query))
    for record in records:
        session.expunge(record)
    return records

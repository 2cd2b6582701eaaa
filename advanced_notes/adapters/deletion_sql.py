"""Reads of the deletion outbox (``pending_deletions``) that the request and event paths need."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from advanced_notes.adapters.models import PendingDeletion


def deletions_of(*, session: Session, clip_id: uuid.UUID, storage_key: str | None = None) -> list[PendingDeletion]:
    """The outbox records of ``clip_id`` (only those for ``storage_key`` when given).

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

"""The deletion outbox: every object that must leave the bucket is recorded first.

A deletion is written to ``pending_deletions`` in the same transaction that deletes,
rejects or expires the clip, then attempted at once; a store outage leaves the record
for the sweeper, which retries with exponential backoff. Because a presigned PUT cannot
be revoked, a record is kept until its ``recheck_until`` (the last upload URL's expiry
plus clock skew) has passed and one more delete has run after it: an object that
arrives late is deleted too. Nothing is ever forgotten.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from typing import Protocol

from advanced_notes.adapters import outbox_sql
from advanced_notes.adapters.clip_scans import upload_expiries
from advanced_notes.adapters.db import Database
from advanced_notes.adapters.models import PendingDeletion
from advanced_notes.adapters.outbox_sql import DatabaseError, Executor, Session
from advanced_notes.adapters.storage import S3Storage
from advanced_notes.domain.backoff import exponential_backoff
from advanced_notes.domain.clock import utcnow
from advanced_notes.domain.errors import StorageUnavailable

log = logging.getLogger(__name__)

#: S3 refuses requests whose signing time is more than 15 minutes off its clock
#: (RequestTimeTooSkewed), so a URL may work until expiry + 15 min by our clock.
CLOCK_SKEW = dt.timedelta(minutes=15)
#: While one sweeper works on a record, others leave it alone for this long.
CLAIM_LEASE = dt.timedelta(minutes=2)
BACKOFF_BASE_SECONDS = 30
BACKOFF_MAX_SECONDS = 3600


def backoff(attempts: int) -> dt.timedelta:
    """Delay before retry number ``attempts`` (1-based): 30 s, 60 s, 120 s, ... at most 1 h."""
    return exponential_backoff(attempts, base_seconds=BACKOFF_BASE_SECONDS, max_seconds=BACKOFF_MAX_SECONDS)


class ClipObject(Protocol):
    """What a deletion needs of a clip: an AudioClip, or a row of ``DELETE ... RETURNING``."""

    id: uuid.UUID
    storage_key: str
    upload_expires_at: dt.datetime | None
    #: An unfinished multipart upload to abort with the object (None for a single PUT).
    multipart_upload_id: str | None


def latest_upload_expiry(session: Executor, clip_ids: list[uuid.UUID]) -> dict[uuid.UUID, dt.datetime | None]:
    """The clips' ``upload_expires_at`` as stored now, read inside ``session``.

    Call it after the transition that took the clips out of ``pending`` (rejected,
    expired) in the same transaction: no URL can be minted for them any more, so this is
    their last expiry, whatever an earlier read said.
    """
    return upload_expiries(session, clip_ids=clip_ids)


def recheck_until(clip: ClipObject, now: dt.datetime) -> dt.datetime:
    """Until when an object may still arrive for ``clip`` (its last PUT URL's expiry + skew)."""
    if clip.upload_expires_at is None:
        return now
    return max(now, clip.upload_expires_at + CLOCK_SKEW)


@dataclass
class AttemptResult:
    """Outcome of deletion attempts: ``done`` records finished, ``waiting`` kept for a
    late-upload recheck, ``failed`` kept for a retry."""

    done: int = 0
    waiting: int = 0
    failed: int = 0

    def add(self, other: AttemptResult) -> None:
        self.done += other.done
        self.waiting += other.waiting
        self.failed += other.failed


class DeletionQueue:
    """Records object deletions and carries them out.

    Args:
        db: the database holding ``pending_deletions``.
        storage: the S3 adapter that deletes objects.
    """

    def __init__(self, db: Database, storage: S3Storage):
        self.db = db
        self.storage = storage

    @staticmethod
    def enqueue(session: Session, clip: ClipObject, reason: str, now: dt.datetime | None = None) -> PendingDeletion:
        """Record that ``clip``'s object must go, inside the caller's transaction.

        Args:
            session: the transaction that also removes/rejects/expires the clip.
            clip: the clip (its ``storage_key`` and ``upload_expires_at`` are used).
            reason: ``deleted``, ``rejected`` or ``expired``.
        Returns:
            the new record (flushed with the transaction).
        """
        now = now or utcnow()
        record = PendingDeletion(
            clip_id=clip.id,
            storage_key=clip.storage_key,
            reason=reason,
            attempts=0,
            next_attempt_at=now,
            recheck_until=recheck_until(clip, now),
            # An unfinished multipart upload is aborted first: its parts are billed.
            multipart_upload_id=clip.multipart_upload_id,
            created_at=now,
        )
        outbox_sql.add_rows(session, [record])
        return record

    @staticmethod
    def enqueue_keys(
        session: Session, clip_id: uuid.UUID, keys: list[str], reason: str, now: dt.datetime | None = None
    ) -> list[PendingDeletion]:
        """Record that the objects at ``keys`` (the clip's derived objects) must go.

        Derived objects are written by the worker only, never through a presigned URL,
        so nothing can arrive late: each record is finished by its first successful delete.

        Args:
            session: the caller's transaction; clip_id: the clip they belong to;
            keys: object keys (``domain.keys.derived_keys``); reason: ``deleted``.
        Returns:
            the new records (flushed with the transaction).
        """
        now = now or utcnow()
        records = [
            PendingDeletion(
                clip_id=clip_id,
                storage_key=key,
                reason=reason,
                attempts=0,
                next_attempt_at=now,
                recheck_until=now,
                created_at=now,
            )
            for key in keys
        ]
        outbox_sql.add_rows(session, records)
        return records

    def attempt(self, records: list[PendingDeletion]) -> AttemptResult:
        """Delete the objects of ``records`` now; finish, reschedule or back off each.

        Never raises for a store failure: the record stays and the sweeper retries. Stops
        at the first failure (the rest stay due, untouched), so an outage costs one
        store timeout, not one per record.

        Never raises for a database failure either: callers run it after the commit that
        deleted, rejected or expired the clip, and a 503 then told the client the opposite
        of what happened. The record is committed and still due, so the
        sweeper carries it out.
        """
        try:
            return self._attempt(records)
        except DatabaseError as exc:
            log.warning("deletion bookkeeping failed (%s); the sweeper will retry", exc.__class__.__name__)
            return AttemptResult(failed=1)

    def _attempt(self, records: list[PendingDeletion]) -> AttemptResult:
        result = AttemptResult()
        for record in records:
            if result.failed:
                break
            now = utcnow()
            try:
                if record.multipart_upload_id:
                    # Answers False when the upload is already gone (completed or aborted).
                    self.storage.abort_multipart_upload(record.storage_key, record.multipart_upload_id)
                self.storage.delete(record.storage_key)
            except StorageUnavailable as exc:
                attempts = record.attempts + 1
                self._update(
                    record, attempts=attempts, next_attempt_at=now + backoff(attempts), last_error=exc.message[:500]
                )
                result.failed += 1
                log.warning("deletion of %s failed (attempt %d); will retry", record.storage_key, attempts)
                continue
            if record.recheck_until <= now:
                outbox_sql.delete_row(self.db, PendingDeletion, record.id)
                result.done += 1
            else:
                # Delete once more after the last PUT URL has expired, in case it is used.
                self._update(
                    record, attempts=record.attempts + 1, next_attempt_at=record.recheck_until, last_error=None
                )
                result.waiting += 1
        return result

    def _update(self, record: PendingDeletion, **values: object) -> None:
        outbox_sql.update_row(self.db, PendingDeletion, record.id, **values)

    def claim_due(self, limit: int, now: dt.datetime | None = None) -> list[PendingDeletion]:
        """Claim up to ``limit`` records whose retry time has come.

        Each is claimed with a compare-and-set on ``next_attempt_at`` (pushed one lease
        ahead, :func:`~advanced_notes.adapters.outbox_sql.claim_due`), so sweepers on
        several machines never work on the same record at once.
        """
        return outbox_sql.claim_due(self.db, PendingDeletion, now=now or utcnow(), limit=limit, lease=CLAIM_LEASE)

    def count_due(self, now: dt.datetime | None = None) -> int:
        """How many records are due now (for dry runs and reports)."""
        return outbox_sql.count_due(self.db, PendingDeletion, now=now or utcnow())

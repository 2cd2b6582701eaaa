"""Bucket events: finish an upload when the store says its object arrived (docs/events.md).

Both event paths (``POST /api/storage-events``, MinIO-style webhooks, and the SQS consumer
of ``events consume``) hand parsed records to :meth:`StorageEventService.handle`, which
maps each key under our prefix to its clip and finishes it through the one
:class:`~advanced_notes.services.completion.ClipCompleter` (``path="event"``): the same
HEAD + sniff + parse checks as ``complete``. Delivery is at least once and unordered, so
every record is idempotent: a duplicate finds the clip already finished, and a record for
a clip that is deleted, expired or rejected schedules the (late) object's deletion.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter as Tally
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from advanced_notes.adapters import clip_sql
from advanced_notes.adapters.db import Database, transient_database_error
from advanced_notes.adapters.models import ClipRecord
from advanced_notes.adapters.outbox_sql import deletions_of
from advanced_notes.adapters.storage import S3Storage
from advanced_notes.domain.clock import utcnow
from advanced_notes.domain.errors import ApiError, StorageUnavailable, UploadMissing, UploadRejected
from advanced_notes.domain.keys import clip_id_from_key, clips_folder, derived_keys
from advanced_notes.domain.s3events import Notification, ObjectEvent, parse_notification
from advanced_notes.services.completion import ClipCompleter
from advanced_notes.services.deletions import DeletionQueue
from advanced_notes.services.lifecycle import PENDING, READY
from advanced_notes.services.telemetry import STORAGE_EVENTS
from advanced_notes.settings import Settings

log = logging.getLogger(__name__)

#: What became of a record (the ``outcome`` label of ``advanced_notes_storage_events_total``).
OUTCOMES = (
    "ready",  # this record finished the clip: ready
    "rejected",  # this record finished the clip: rejected, object deleted
    "duplicate",  # the clip was already ready (complete, the sweeper or an earlier record won)
    "late_object",  # the clip is deleted, expired or rejected: the object's deletion is scheduled
    "derived",  # a derived object (rendition, peaks) of a live clip, written by processing: kept
    "missing",  # no object at the key any more (a later delete overtook the event)
    "other_bucket",  # the record is about another bucket
    "other_prefix",  # the key is not one of our clip keys (another prefix or name)
    "not_created",  # not an ObjectCreated:* record (removals etc.)
    "test_event",  # s3:TestEvent, sent when a notification configuration is saved
    "sns_control",  # an SNS SubscriptionConfirmation / UnsubscribeConfirmation: no record
    "malformed",  # not a record of the S3 event shape
    "unhandled",  # handling it failed in a way a retry cannot fix (a poison record): logged, settled
    "failed",  # the store or database failed: not settled, delivered again later
)
SETTLED = frozenset(OUTCOMES) - {"failed"}


def retryable(exc: BaseException) -> bool:
    """True for a failure that a later delivery of the same record can get past.

    The store being unreachable (StorageUnavailable) and the database failures that pass
    (:func:`~advanced_notes.adapters.db.transient_database_error`: unreachable or busy,
    or a unique-key race with another path, whose winner's row the redelivery finds) are
    transient. Anything else (a key the database cannot store, a NUL byte or a lone
    surrogate; a bug) fails the same way on every delivery: a poison record.
    """
    return isinstance(exc, StorageUnavailable) or transient_database_error(exc)


def _storable(key: str) -> bool:
    """True when ``key`` can be an object key we wrote: UTF-8 text without NUL (S3 keys are UTF-8)."""
    if "\x00" in key:
        return False
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, which JSON can spell and no store can hold
        return False
    return True


@dataclass
class EventReport:
    """Counts of record outcomes; ``settled`` is False when any record must be delivered again."""

    counts: Tally[str] = field(default_factory=Tally)

    @property
    def settled(self) -> bool:
        return self.counts["failed"] == 0

    def add(self, other: EventReport) -> None:
        self.counts.update(other.counts)

    def as_dict(self) -> dict[str, int]:
        """Every outcome with its count (zeros included), for the webhook's answer and the CLI."""
        return {outcome: self.counts[outcome] for outcome in OUTCOMES}


class StorageEventService:
    """Settle bucket event records.

    Args:
        db, storage: as the app has them; completer: the shared completion;
        deletions: the deletion outbox; settings: bucket and key prefix.
    """

    def __init__(
        self, db: Database, storage: S3Storage, completer: ClipCompleter, deletions: DeletionQueue, settings: Settings
    ):
        self.db = db
        self.storage = storage
        self.completer = completer
        self.deletions = deletions
        self.bucket = settings.s3_bucket
        self.folder = clips_folder(settings.key_prefix)

    def handle(self, notification: Notification, source: str) -> EventReport:
        """Settle every record of ``notification``.

        Args:
            notification: parsed by :func:`advanced_notes.domain.s3events.parse_notification`.
            source: ``webhook`` or ``sqs`` (the metrics label).
        Returns:
            the outcome counts; ``settled`` False when the message must be delivered again.
        Never raises for a record: a transient store or database failure (:func:`retryable`)
        counts as ``failed``, anything else as ``unhandled`` (logged once with its
        traceback, and settled: a poison record must not block the ones after it, nor
        come back for ever).
        """
        report = EventReport()
        if notification.test_event:
            report.counts["test_event"] += 1
        if notification.sns_control:
            report.counts["sns_control"] += 1
        report.counts["malformed"] += notification.malformed
        for event in notification.events:
            try:
                outcome = self._settle(event)
            except Exception as exc:
                if retryable(exc):
                    log.warning("event for %r not settled: %s", event.key, exc.__class__.__name__)
                    outcome = "failed"
                else:
                    log.exception("event for %r cannot be handled; settled as unhandled", event.key)
                    outcome = "unhandled"
            report.counts[outcome] += 1
        for outcome, count in report.counts.items():
            if count:
                STORAGE_EVENTS.labels(source, outcome).inc(count)
        return report

    def _settle(self, event: ObjectEvent) -> str:
        if not _storable(event.key):
            log.warning("event for %r cannot be handled: not a storable object key; settled as unhandled", event.key)
            return "unhandled"
        if event.bucket is not None and event.bucket != self.bucket:
            return "other_bucket"
        if not event.created:
            return "not_created"
        clip_id = clip_id_from_key(self.folder, event.key)
        if clip_id is None:
            return "other_prefix"
        clip = self._read(clip_id)
        if clip is not None and event.key in derived_keys(clip.storage_key):
            # Processing writes these beside the original and the bucket reports them too;
            # they go with the clip (its DELETE), never as a late object.
            return "derived"
        if clip is None or clip.storage_key != event.key:
            return self._late_object(clip_id, event.key, clip)
        if clip.status == READY:
            return "duplicate"
        if clip.status != PENDING:
            return self._late_object(clip_id, event.key, clip)
        try:
            finished = self.completer.finish(clip, path="event")
        except UploadRejected:
            return "rejected"
        except UploadMissing:
            return "missing"
        except StorageUnavailable:
            raise
        except ApiError:
            # Another path finished, expired or deleted it meanwhile: settle as for that state.
            clip = self._read(clip_id)
            if clip is not None and clip.status == READY:
                return "duplicate"
            return self._late_object(clip_id, event.key, clip)
        return "ready" if finished.status == READY else "duplicate"

    def _read(self, clip_id: uuid.UUID) -> ClipRecord | None:
        with self.db.statement() as conn:
            return clip_sql.get_clip(conn=conn, clip_id=clip_id, owner_id=None)

    def _late_object(self, clip_id: uuid.UUID, key: str, clip: ClipRecord | None) -> str:
        """Schedule the deletion of an object no live clip owns, unless one is already recorded."""
        now = utcnow()
        with self.db.transaction() as session:
            recorded = deletions_of(session=session, clip_id=clip_id, storage_key=key)
            if recorded:
                # Recorded already (kept until the last URL expires): delete now, not at the recheck.
                record, new = recorded[0], False
            else:
                reason = clip.status if clip is not None and clip.storage_key == key else "deleted"
                # Due now and finished by its first delete, as a derived object's record.
                (record,) = DeletionQueue.enqueue_keys(session, clip_id, [key], reason, now)
                new = True
        if new or record.next_attempt_at > now:
            self.deletions.attempt([record])
        return "late_object"


@dataclass
class ConsumeReport:
    """What :meth:`EventConsumer.run` did: messages received, deleted (settled) and kept
    (delivered again after the visibility timeout), given up (not settled after
    ``S3_EVENTS_MAX_RECEIVES`` receives: deleted), and the records' outcomes."""

    received: int = 0
    deleted: int = 0
    kept: int = 0
    given_up: int = 0
    records: EventReport = field(default_factory=EventReport)


class EventConsumer:
    """Consumes S3 event notifications from a queue (``events consume``).

    Args:
        queue: an :class:`~advanced_notes.adapters.queue.SqsQueue` (anything with
            ``receive(max_messages, wait_seconds)`` and ``delete(message)``).
        events: the record settler shared with the webhook endpoint.
        after_batch: called after each batch (the command delivers webhooks there).
        max_receives: ``S3_EVENTS_MAX_RECEIVES``; 0 = never give up (a queue with its own
            redrive policy moves the message to its dead-letter queue instead).

    A message is deleted once every record in it is settled (poison records included:
    they are counted ``unhandled``); otherwise it is left to come back after the queue's
    visibility timeout, until its ``max_receives``-th receive: then it is given up
    (logged as an error, counted, deleted), so a message whose records keep failing
    cannot circulate for the queue's whole retention. Several consumers may share a
    queue: SQS hands each message to one at a time, and a message handled twice (after a
    crash, or a visibility timeout passed mid-batch) settles as duplicates.
    """

    def __init__(
        self,
        queue: Any,
        events: StorageEventService,
        after_batch: Callable[[], object] | None = None,
        max_receives: int = 0,
    ):
        self.queue = queue
        self.events = events
        self.after_batch = after_batch
        self.max_receives = max_receives

    def run(self, *, once: bool, should_stop: Callable[[], bool], wait_seconds: int = 20) -> ConsumeReport:
        """Receive and settle batches until ``should_stop()`` (checked between batches), or,
        with ``once``, until a receive finds nothing.

        Raises:
            StorageUnavailable: the queue could not be reached.
        """
        report = ConsumeReport()
        while not should_stop():
            messages = self.queue.receive(10, 1 if once else wait_seconds)
            if not messages:
                if once:
                    break
                continue
            for message in messages:
                report.received += 1
                self._one(message, report)
            if self.after_batch is not None:
                self.after_batch()
        return report

    def _one(self, message: Any, report: ConsumeReport) -> None:
        """Settle one message, then delete it, keep it, or give it up (see the class)."""
        try:
            outcome = self.events.handle(parse_notification(message.body), source="sqs")
        except Exception:
            # handle() settles every record itself; this is the last guard, so that one
            # message can never stop the consumer or the rest of its batch.
            log.exception("message %s could not be handled; kept for redelivery", message.message_id)
            outcome = EventReport()
            outcome.counts["failed"] += 1
        report.records.add(outcome)
        if outcome.settled:
            self.queue.delete(message)
            report.deleted += 1
        elif self.max_receives and message.receive_count >= self.max_receives:
            log.error(
                "message %s not settled after %d receives (S3_EVENTS_MAX_RECEIVES): given up and deleted; "
                "outcomes %s; body %.2000r",
                message.message_id,
                message.receive_count,
                {k: v for k, v in outcome.as_dict().items() if v},
                message.body,
            )
            STORAGE_EVENTS.labels("sqs", "given_up").inc(outcome.counts["failed"])
            self.queue.delete(message)
            report.given_up += 1
        else:
            report.kept += 1

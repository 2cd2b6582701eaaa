"""The sweeper: expire stale uploads, finish recorded deletions, reconcile bucket and database.

Safe to run from cron on several machines at once: expiry is a compare-and-set,
recorded deletions are claimed with a compare-and-set lease, and every delete of an
object is idempotent. Dry-run unless ``apply`` is set. Memory stays bounded at any
size: the bucket is read one listing page at a time and the table in keyset batches.

Reconcile merges two streams in the same order: the listing of
``<prefix>/audio-clips/`` (S3 lists keys in binary order, and ``<uuid>.<ext>`` keys sort
like their UUIDs) and the rows ordered by ``id`` (UUIDs compare as 16 bytes in
PostgreSQL and as lower-case hex in SQLite, the same order).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from sqlalchemy import select, tuple_

from advanced_notes.adapters.db import Database
from advanced_notes.adapters.models import AudioClip, ClipStatus, PendingDeletion
from advanced_notes.adapters.storage import ListedObject, S3Storage
from advanced_notes.domain.clock import utcnow
from advanced_notes.domain.errors import StorageUnavailable
from advanced_notes.domain.keys import clip_id_from_key, clips_folder
from advanced_notes.services.deletions import AttemptResult, DeletionQueue, latest_upload_expiry
from advanced_notes.services.lifecycle import EXPIRED, PENDING, READY, update_if_pending
from advanced_notes.settings import Settings

log = logging.getLogger(__name__)

_GARBAGE_STATUSES = (ClipStatus.REJECTED.value, ClipStatus.EXPIRED.value)
#: Keys listed per category in a report (counts are always complete).
REPORT_SAMPLE = 20


@dataclass
class Finding:
    """A count and the first :data:`REPORT_SAMPLE` object keys of one kind of finding."""

    count: int = 0
    keys: list[str] = field(default_factory=list)

    def add(self, key: str) -> None:
        self.count += 1
        if len(self.keys) < REPORT_SAMPLE:
            self.keys.append(key)


@dataclass
class SweepReport:
    """What a sweep found and did (in a dry run: what it would do)."""

    applied: bool
    expired: int = 0
    deletions_due: int = 0
    deletions: AttemptResult = field(default_factory=AttemptResult)
    objects_scanned: int = 0
    rows_scanned: int = 0
    orphans: Finding = field(default_factory=Finding)
    orphans_deleted: int = 0
    young_unknown_objects: int = 0
    awaiting_deletion: int = 0
    late_objects: Finding = field(default_factory=Finding)
    late_objects_deleted: int = 0
    missing_objects: Finding = field(default_factory=Finding)

    def summary(self) -> list[str]:
        """Human-readable lines for the command's output."""
        verb = "" if self.applied else "would be "
        lines = [
            f"mode: {'apply' if self.applied else 'dry run (nothing changed; pass --apply)'}",
            f"stale pending clips {verb}expired: {self.expired}",
            f"recorded deletions due: {self.deletions_due}"
            + (
                f" (done {self.deletions.done}, awaiting URL expiry {self.deletions.waiting}, "
                f"failed {self.deletions.failed})"
                if self.applied
                else ""
            ),
            f"objects scanned: {self.objects_scanned}, rows scanned: {self.rows_scanned}",
            f"orphan objects (no row, no recorded deletion): {self.orphans.count}, deleted: {self.orphans_deleted}",
            f"unknown objects younger than the minimum age (left alone): {self.young_unknown_objects}",
            f"objects with a recorded deletion: {self.awaiting_deletion}",
            f"late objects of rejected/expired clips: {self.late_objects.count}, deleted: {self.late_objects_deleted}",
            f"ready clips whose object is missing: {self.missing_objects.count}",
        ]
        for title, finding in (
            ("orphan", self.orphans),
            ("late", self.late_objects),
            ("missing", self.missing_objects),
        ):
            lines += [f"  {title}: {key}" for key in finding.keys]
        return lines


@dataclass(frozen=True)
class _Row:
    id: uuid.UUID
    storage_key: str
    status: str
    completed_at: dt.datetime | None


class Sweeper:
    """Runs the three sweeper jobs.

    Args:
        db, storage, settings: as the app has them (prefix, reservation time).
        batch_size: rows per transaction and per query.
    """

    def __init__(self, db: Database, storage: S3Storage, settings: Settings, batch_size: int = 500):
        self.db = db
        self.storage = storage
        self.queue = DeletionQueue(db, storage)
        self.folder = clips_folder(settings.key_prefix)
        self.reservation = dt.timedelta(seconds=settings.upload_reservation_seconds)
        self.batch_size = batch_size

    def run(
        self,
        *,
        apply: bool,
        delete_orphans: bool = False,
        min_orphan_age: dt.timedelta = dt.timedelta(hours=1),
        progress: Callable[[int], object] | None = None,
    ) -> SweepReport:
        """Expire, retry deletions, reconcile; return the report.

        Args:
            apply: make changes (False: only report).
            delete_orphans: with ``apply``, also delete objects no row or recorded
                deletion knows, if older than ``min_orphan_age``.
            progress: called with the number of objects just scanned.
        Raises:
            StorageUnavailable: the bucket could not be listed (earlier jobs stay done).
        """
        report = SweepReport(applied=apply)
        started = utcnow()
        report.expired = self.expire_stale(apply, started)
        report.deletions_due = self.queue.count_due(started)
        if apply:
            report.deletions = self.retry_deletions(started)
        self.reconcile(
            report,
            started,
            apply=apply,
            delete_orphans=delete_orphans and apply,
            min_orphan_age=min_orphan_age,
            progress=progress,
        )
        return report

    # -- expiry ---------------------------------------------------------------------

    def expire_stale(self, apply: bool, now: dt.datetime) -> int:
        """Expire ``pending`` clips created before ``now - UPLOAD_RESERVATION_SECONDS``.

        Each expiry records its object's deletion in the same transaction, kept until
        the last PUT URL has expired, so an upload arriving later is deleted too.
        """
        cutoff, count = now - self.reservation, 0
        after: tuple[dt.datetime, uuid.UUID] | None = None
        while True:
            query = select(AudioClip).where(AudioClip.status == PENDING, AudioClip.created_at < cutoff)
            if after is not None:  # dry runs change nothing, so they page with a keyset
                query = query.where(tuple_(AudioClip.created_at, AudioClip.id) > tuple_(*after))
            with self.db.read() as session:
                clips = list(session.scalars(query.order_by(AudioClip.created_at, AudioClip.id).limit(self.batch_size)))
            if not clips:
                return count
            if not apply:
                count += len(clips)
                after = (clips[-1].created_at, clips[-1].id)
                continue
            with self.db.transaction() as session:
                won = update_if_pending(session, [c.id for c in clips], status=EXPIRED, updated_at=now)
                # The expiries as stored now, not as read above (issue 13 item 7).
                latest = latest_upload_expiry(session, list(won))
                for clip in clips:
                    if clip.id in won:
                        clip.upload_expires_at = latest[clip.id]
                        DeletionQueue.enqueue(session, clip, "expired", now)
            count += len(won)

    # -- recorded deletions ------------------------------------------------------------

    def retry_deletions(self, now: dt.datetime) -> AttemptResult:
        """Carry out every recorded deletion that is due; failures back off exponentially."""
        total = AttemptResult()
        while records := self.queue.claim_due(self.batch_size, now):
            total.add(self.queue.attempt(records))
            if total.failed:  # the store is failing: the rest waits for the next run
                break
        return total

    # -- reconcile -----------------------------------------------------------------------

    def _objects(self) -> Iterator[ListedObject]:
        for page in self.storage.list_objects(self.folder):
            yield from page

    def _rows(self, report: SweepReport) -> Iterator[_Row]:
        after: uuid.UUID | None = None
        while True:
            query = select(AudioClip.id, AudioClip.storage_key, AudioClip.status, AudioClip.completed_at)
            if after is not None:
                query = query.where(AudioClip.id > after)
            with self.db.read() as session:
                batch = [_Row(*r) for r in session.execute(query.order_by(AudioClip.id).limit(self.batch_size))]
            if not batch:
                return
            report.rows_scanned += len(batch)
            after = batch[-1].id
            # Rows of another prefix (an older S3_KEY_PREFIX) have no object here to compare.
            yield from (row for row in batch if row.storage_key.startswith(self.folder))

    def reconcile(
        self,
        report: SweepReport,
        started: dt.datetime,
        *,
        apply: bool,
        delete_orphans: bool,
        min_orphan_age: dt.timedelta,
        progress: Callable[[int], object] | None = None,
    ) -> None:
        """Compare the bucket under the prefix with the database, both ways (see module doc).

        Finds objects no row or recorded deletion knows (orphans: deleted with
        ``delete_orphans``), objects of rejected/expired clips (late uploads: deleted
        with ``apply``), and ``ready`` clips whose object is gone (reported).
        """
        rows = self._rows(report)
        row, row_has_object = next(rows, None), False
        unknown: list[tuple[uuid.UUID | None, ListedObject]] = []
        last_id: uuid.UUID | None = None

        def finish_row(r: _Row, has_object: bool) -> None:
            if not has_object and r.status == READY and r.completed_at is not None and r.completed_at < started:
                report.missing_objects.add(r.storage_key)

        for obj in self._objects():
            report.objects_scanned += 1
            if progress:
                progress(1)
            clip_id = clip_id_from_key(self.folder, obj.key)
            if clip_id is None:
                unknown.append((None, obj))
            else:
                if last_id is not None and clip_id < last_id:
                    raise StorageUnavailable("The store did not list keys in order; reconcile stopped.")
                last_id = clip_id
                while row is not None and row.id < clip_id:
                    finish_row(row, row_has_object)
                    row, row_has_object = next(rows, None), False
                if row is not None and row.id == clip_id and row.storage_key == obj.key:
                    row_has_object = True
                    if row.status in _GARBAGE_STATUSES:
                        report.late_objects.add(obj.key)
                        if apply:
                            self.storage.delete(obj.key)
                            report.late_objects_deleted += 1
                else:
                    unknown.append((clip_id, obj))
            if len(unknown) >= self.batch_size:
                self._settle_unknown(report, unknown, started, delete_orphans, min_orphan_age)
                unknown = []
        while row is not None:
            finish_row(row, row_has_object)
            row, row_has_object = next(rows, None), False
        self._settle_unknown(report, unknown, started, delete_orphans, min_orphan_age)

    def _settle_unknown(
        self,
        report: SweepReport,
        unknown: list[tuple[uuid.UUID | None, ListedObject]],
        started: dt.datetime,
        delete_orphans: bool,
        min_orphan_age: dt.timedelta,
    ) -> None:
        ids = [clip_id for clip_id, _ in unknown if clip_id is not None]
        recorded: set[str] = set()
        if ids:
            with self.db.read() as session:
                recorded = set(
                    session.scalars(select(PendingDeletion.storage_key).where(PendingDeletion.clip_id.in_(ids)))
                )
        for _, obj in unknown:
            if obj.key in recorded:
                report.awaiting_deletion += 1
            elif obj.last_modified > started - min_orphan_age:
                report.young_unknown_objects += 1
            else:
                report.orphans.add(obj.key)
                if delete_orphans:
                    self.storage.delete(obj.key)
                    report.orphans_deleted += 1


def write_report_metrics(report: SweepReport, path: str) -> None:
    """Write a sweep's results as Prometheus gauges to ``path`` (node_exporter textfile format).

    The file is replaced atomically, so node_exporter never reads half of it.
    """
    import time

    from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

    registry = CollectorRegistry()
    gauges = {
        "last_run_timestamp_seconds": ("When the last sweep finished (Unix time).", time.time()),
        "applied": ("1 when the last sweep made changes, 0 for a dry run.", int(report.applied)),
        "expired": ("Stale pending clips expired by the last sweep.", report.expired),
        "deletions_done": ("Recorded deletions finished by the last sweep.", report.deletions.done),
        "deletions_failed": ("Recorded deletions that failed in the last sweep.", report.deletions.failed),
        "orphan_objects": ("Objects no row or recorded deletion knows.", report.orphans.count),
        "orphans_deleted": ("Orphan objects deleted by the last sweep.", report.orphans_deleted),
        "late_objects": ("Objects of rejected or expired clips found.", report.late_objects.count),
        "missing_objects": ("Ready clips whose object is missing.", report.missing_objects.count),
        "objects_scanned": ("Objects listed by the last sweep.", report.objects_scanned),
    }
    for name, (help_text, value) in gauges.items():
        Gauge(f"advanced_notes_sweeper_{name}", help_text, registry=registry).set(value)
    write_to_textfile(path, registry)

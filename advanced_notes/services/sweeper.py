"""The sweeper: finish uploads nobody completed, expire stale ones, finish recorded deletions,
reconcile bucket and database.

It never deletes a recording that would pass ``complete`` (issue 11): the reconcile pass
lists the bucket anyway, and every ``pending`` clip whose object it meets is finished
through :class:`~advanced_notes.services.completion.ClipCompleter` (the same HEAD + sniff
+ parse checks, ``ready`` or ``rejected``) once the object is older than
``SWEEP_COMPLETE_GRACE_SECONDS`` (the client's own ``complete`` usually comes first), or
at once when the clip is stale. A multipart clip's recording is its parts until someone
assembles them: a pending clip whose upload is in progress (ListMultipartUploads) is
read part by part (ListParts); when every part is stored at its exact length (the rule
``complete`` applies) the sweeper assembles them (CompleteMultipartUpload) and finishes
the clip the same way, under the same grace period (counted from the newest part). Only
a multipart clip with parts missing or of the wrong size is expired (and its upload
aborted). Expiry runs after those passes and only expires clips they did not show with
an object or a complete set of parts; a clip whose PUT URL could still have been used
after the listing started is HEADed first. So the cost at scale is the listing (one
request per 1000 objects) plus one HEAD per stale clip with a still-valid URL, not one
HEAD per pending clip (figures: bench/sweep_pending.py, docs/events.md).

Safe to run from cron on several machines at once: expiry is a compare-and-set,
recorded deletions are claimed with a compare-and-set lease, and every delete of an
object is idempotent. Dry-run unless ``apply`` is set. Memory stays bounded at any
size: the bucket is read one listing page at a time and the table in keyset batches.

Reconcile merges two streams in the same order: the listing of
``<prefix>/audio-clips/`` (S3 lists keys in binary order, and ``<uuid>.<ext>`` keys sort
like their UUIDs, each followed by its derived objects ``<uuid>/<name>``) and the rows
ordered by ``id`` (UUIDs compare as 16 bytes in PostgreSQL and as lower-case hex in SQLite, the same order).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from sqlalchemy import select, tuple_, update

from advanced_notes.adapters.clip_sql import read_clip
from advanced_notes.adapters.db import Database
from advanced_notes.adapters.models import AudioClip, Clip, ClipStatus, PendingDeletion
from advanced_notes.adapters.storage import ListedObject, S3Storage
from advanced_notes.domain.clock import utcnow
from advanced_notes.domain.errors import ApiError, StorageUnavailable, UploadIncomplete, UploadMissing, UploadRejected
from advanced_notes.domain.keys import clip_id_from_key, clips_folder, derived_keys
from advanced_notes.services.completion import ClipCompleter
from advanced_notes.services.deletions import CLOCK_SKEW, AttemptResult, DeletionQueue, latest_upload_expiry
from advanced_notes.services.lifecycle import EXPIRED, PENDING, READY, update_if_pending
from advanced_notes.services.multipart import assemble_parts, check_parts
from advanced_notes.services.multipart_sweep import AbandonedUploads, abort_abandoned_uploads, pending_uploads
from advanced_notes.services.webhooks import WebhookOutbox
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
    finished_ready: int = 0
    finished_rejected: int = 0
    finish_failed: int = 0
    uploads_in_grace: int = 0
    multipart_assembled: int = 0
    multipart_in_grace: int = 0
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
    multipart: AbandonedUploads = field(default_factory=AbandonedUploads)

    def summary(self) -> list[str]:
        """Human-readable lines for the command's output."""
        verb = "" if self.applied else "would be "
        lines = [
            f"mode: {'apply' if self.applied else 'dry run (nothing changed; pass --apply)'}",
            f"uploaded pending clips {verb}finished: {self.finished_ready + self.finished_rejected}"
            + (f" (ready {self.finished_ready}, rejected {self.finished_rejected})" if self.applied else ""),
            f"uploaded pending clips left for the client (grace period): {self.uploads_in_grace}",
            f"uploaded pending clips not finished (store failed; retried next run): {self.finish_failed}",
            f"of which multipart uploads with every part stored: {verb}assembled {self.multipart_assembled}, "
            f"in grace {self.multipart_in_grace}",
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
            self.multipart.summary(self.applied),
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
    created_at: dt.datetime


class Sweeper:
    """Runs the sweeper jobs.

    Args:
        db, storage, settings: as the app has them (prefix, reservation time, grace
            period ``sweep_complete_grace_seconds``, webhook receivers).
        batch_size: rows per transaction and per query.
        completer: the shared completion (default: one built from the arguments).
    """

    def __init__(
        self,
        db: Database,
        storage: S3Storage,
        settings: Settings,
        batch_size: int = 500,
        completer: ClipCompleter | None = None,
    ):
        self.db = db
        self.storage = storage
        self.queue = DeletionQueue(db, storage)
        self.webhooks = WebhookOutbox(settings)
        self.completer = completer or ClipCompleter(db, storage, self.queue, settings, self.webhooks)
        self.folder = clips_folder(settings.key_prefix)
        self.reservation = dt.timedelta(seconds=settings.upload_reservation_seconds)
        self.grace = dt.timedelta(seconds=settings.sweep_complete_grace_seconds)
        self.batch_size = batch_size
        #: Pending clips the current run saw with an object and left pending: never expired.
        self._present: set[uuid.UUID] = set()
        #: True once this run's listing of the whole folder completed.
        self._listed = False

    def run(
        self,
        *,
        apply: bool,
        delete_orphans: bool = False,
        min_orphan_age: dt.timedelta = dt.timedelta(hours=1),
        progress: Callable[[int], object] | None = None,
    ) -> SweepReport:
        """Reconcile (finishing uploaded pending clips), expire, retry deletions; return the report.

        Reconcile runs first because its listing is what tells expiry which pending
        clips have an object: if the bucket cannot be listed, nothing is expired.

        Args:
            apply: make changes (False: only report).
            delete_orphans: with ``apply``, also delete objects no row or recorded
                deletion knows, if older than ``min_orphan_age``.
            progress: called with the number of objects just scanned.
        Raises:
            StorageUnavailable: the bucket could not be listed (nothing was expired).
        """
        report = SweepReport(applied=apply)
        started = utcnow()
        self._present, self._listed = set(), False
        self.reconcile(
            report,
            started,
            apply=apply,
            delete_orphans=delete_orphans and apply,
            min_orphan_age=min_orphan_age,
            progress=progress,
        )
        # Before expiry: a clip whose every part is stored is finished, never expired.
        self.finish_multipart(report, started, apply=apply)
        report.expired = self.expire_stale(apply, started, report)
        report.deletions_due = self.queue.count_due(started)
        if apply:
            report.deletions = self.retry_deletions(started)
        # After expiry and deletions (which abort their clips' uploads through the outbox).
        report.multipart = abort_abandoned_uploads(
            self.db, self.storage, self.folder, started=started, apply=apply, min_age=min_orphan_age
        )
        return report

    # -- expiry ---------------------------------------------------------------------

    def expire_stale(self, apply: bool, now: dt.datetime, report: SweepReport | None = None) -> int:
        """Expire ``pending`` clips created before ``now - UPLOAD_RESERVATION_SECONDS`` that have no object.

        ``now`` is when this run's listing started. Clips the listing saw with an object
        are skipped (the reconcile pass finished them, or will retry). A clip whose last
        PUT URL (plus clock skew) was still valid at ``now`` may have received its object
        after the listing passed its key, so it is HEADed first and finished if the
        object is there. Each expiry records its object's deletion (unless the listing
        proved there is none and none can come) and its ``clip.expired`` webhook in the
        same transaction; the deletion is kept until the last PUT URL has expired, so an
        upload arriving later is deleted too.

        Returns:
            how many clips were (in a dry run: would be) expired.
        """
        report = report or SweepReport(applied=apply)
        cutoff, count = now - self.reservation, 0
        after: tuple[dt.datetime, uuid.UUID] | None = None
        while True:
            # Keyset paging: skipped clips stay pending, so re-querying from the start would loop.
            query = select(AudioClip).where(AudioClip.status == PENDING, AudioClip.created_at < cutoff)
            if after is not None:
                # The plain bound lets the (status, created_at) index start the scan at the
                # keyset instead of walking the entries of every clip expired earlier in this
                # run (dead until vacuumed): without it a run is quadratic in expiries.
                query = query.where(
                    AudioClip.created_at >= after[0], tuple_(AudioClip.created_at, AudioClip.id) > tuple_(*after)
                )
            with self.db.read() as session:
                clips = list(session.scalars(query.order_by(AudioClip.created_at, AudioClip.id).limit(self.batch_size)))
            if not clips:
                return count
            after = (clips[-1].created_at, clips[-1].id)
            doomed = [c for c in clips if c.id not in self._present and not self._arrived_late(c, now, apply, report)]
            if not apply:
                count += len(doomed)
                continue
            with self.db.transaction() as session:
                won = update_if_pending(session, [c.id for c in doomed], status=EXPIRED, updated_at=now)
                # The expiries as stored now, not as read above (issue 13 item 7). A clip whose
                # PUT URL was re-signed since the read may get its object after the listing and
                # the HEAD above: it stays pending (this transaction never commits its expiry)
                # and the next run looks again, so a recording is never expired under a live URL.
                latest = latest_upload_expiry(session, list(won))
                racers = set()
                for c in doomed:
                    stored = latest.get(c.id)
                    if (
                        c.id in won
                        and stored is not None
                        and stored != c.upload_expires_at
                        and stored + CLOCK_SKEW > now
                    ):
                        racers.add(c.id)
                if racers:
                    session.execute(
                        update(AudioClip)
                        .where(AudioClip.id.in_(racers))
                        .values(status=PENDING)
                        .execution_options(synchronize_session=False)
                    )
                won -= racers
                for clip in doomed:
                    if clip.id in won:
                        clip.upload_expires_at = latest[clip.id]
                        if self._may_hold_object(clip, now):
                            DeletionQueue.enqueue(session, clip, "expired", now)
                        self.webhooks.enqueue(session, "clip.expired", clip, status=EXPIRED, updated_at=now)
            count += len(won)

    def _may_hold_object(self, clip: Clip, listed_at: dt.datetime) -> bool:
        """Whether an expired clip needs a recorded deletion.

        Not when this run's complete listing showed no object at its key and no PUT URL
        of it worked after the listing started: no object is there and none can come.
        Recording nothing then keeps expiring 10^5 abandoned clips a matter of seconds
        (one store DELETE each would take many minutes).
        """
        if not self._listed or not clip.storage_key.startswith(self.folder):
            return True
        return clip.upload_expires_at is None or clip.upload_expires_at + CLOCK_SKEW > listed_at

    def _arrived_late(self, clip: Clip, listed_at: dt.datetime, apply: bool, report: SweepReport) -> bool:
        """True when ``clip`` must not expire: its object may be (or is) there after the listing."""
        if clip.upload_expires_at is not None and clip.upload_expires_at + CLOCK_SKEW <= listed_at:
            return False  # no URL worked after the listing started: the listing was the truth
        try:
            if self.storage.head(clip.storage_key) is None:
                return False
        except StorageUnavailable:
            report.finish_failed += 1
            return True  # unknown: keep it pending until the store answers
        self._finish(clip, apply, report)
        return True

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
            query = select(
                AudioClip.id, AudioClip.storage_key, AudioClip.status, AudioClip.completed_at, AudioClip.created_at
            )
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

        Finds objects of ``pending`` clips (finished with ``apply`` once older than the
        grace period, or at once when the clip is stale), objects no row or recorded
        deletion knows (orphans: deleted with ``delete_orphans``), objects of
        rejected/expired clips (late uploads: deleted with ``apply``), and ``ready`` clips
        whose object is gone (reported).
        """
        rows = self._rows(report)
        row, row_has_object = next(rows, None), False
        unknown: list[tuple[uuid.UUID | None, ListedObject]] = []
        to_finish: list[uuid.UUID] = []
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
                    if row.status == PENDING:
                        self._present.add(row.id)
                        if obj.last_modified <= started - self.grace or row.created_at < started - self.reservation:
                            to_finish.append(row.id)
                        else:
                            report.uploads_in_grace += 1
                        if len(to_finish) >= self.batch_size:
                            self._finish_batch(to_finish, apply, report)
                            to_finish = []
                    elif row.status in _GARBAGE_STATUSES:
                        report.late_objects.add(obj.key)
                        if apply:
                            self.storage.delete(obj.key)
                            report.late_objects_deleted += 1
                elif row is not None and row.id == clip_id and obj.key in derived_keys(row.storage_key):
                    # The processing stage's output of a known clip (listed after its
                    # original: "." sorts before "/"); it goes when the clip is deleted.
                    pass
                else:
                    unknown.append((clip_id, obj))
            if len(unknown) >= self.batch_size:
                self._settle_unknown(report, unknown, started, delete_orphans, min_orphan_age)
                unknown = []
        while row is not None:
            finish_row(row, row_has_object)
            row, row_has_object = next(rows, None), False
        self._settle_unknown(report, unknown, started, delete_orphans, min_orphan_age)
        self._finish_batch(to_finish, apply, report)
        self._listed = True

    # -- finishing uploads nobody completed ------------------------------------------------

    def finish_multipart(self, report: SweepReport, started: dt.datetime, *, apply: bool) -> None:
        """Assemble and finish pending multipart clips whose every part is stored.

        For each pending clip whose current upload is in progress under the prefix
        (:func:`~advanced_notes.services.multipart_sweep.pending_uploads`): ListParts
        (every page, up to 10,000 parts), then the rule of ``complete``
        (:func:`~advanced_notes.services.multipart.check_parts`: parts 1..N, each of its
        exact length, summing to the declared ``bytes``). A complete set is assembled
        (CompleteMultipartUpload with the listed ETags) and the clip finished through
        ``ClipCompleter.finish(path="sweeper")`` (``ready``, or ``rejected``), once its
        newest part is older than ``SWEEP_COMPLETE_GRACE_SECONDS`` at ``started``, or at
        once when the clip is stale (as an object of a single PUT is). Such a clip is
        never expired by this run. A clip with parts missing is left alone: a live one is
        still uploading, a stale one is expired next (its upload aborted by the outbox).

        Args:
            report: updated in place; started: when this run began (aware UTC);
            apply: change things (False: count what would be assembled).
        Raises:
            StorageUnavailable: ListMultipartUploads failed (nothing is expired then).
        """
        stale_before, grace_before = started - self.reservation, started - self.grace
        for page in pending_uploads(self.db, self.storage, self.folder):
            for clip in page:
                self._finish_parts(clip, clip.created_at < stale_before, grace_before, apply, report)

    def _finish_parts(
        self, clip: Clip, stale: bool, grace_before: dt.datetime, apply: bool, report: SweepReport
    ) -> None:
        """ListParts of one pending multipart clip; assemble and finish it when every part is there."""
        assert clip.multipart_upload_id is not None  # pending_uploads matched it
        try:
            parts = self.storage.list_parts(clip.storage_key, clip.multipart_upload_id)
        except StorageUnavailable:
            self._present.add(clip.id)  # unknown: keep it pending until the store answers
            report.finish_failed += 1
            return
        if parts is None:
            return  # completed or aborted since the listing: expiry HEADs the key first
        try:
            ordered = check_parts(clip, parts)
        except UploadIncomplete:
            return  # still uploading, or (stale) expired next and its upload aborted
        times = [p.last_modified for p in ordered if p.last_modified is not None]
        # Without every part's time the client may still be at it: only the reservation decides.
        if not stale and (len(times) < len(ordered) or max(times) > grace_before):
            self._present.add(clip.id)
            report.uploads_in_grace += 1
            report.multipart_in_grace += 1
            return
        if not apply:
            report.multipart_assembled += 1
            self._finish(clip, apply, report)
            return
        current = read_clip(self.db, clip.id, clip.owner_id)
        if current is None or current.status != PENDING or current.multipart_upload_id != clip.multipart_upload_id:
            return  # completed, deleted or aborted since the page was read: that path has the word
        self._present.add(clip.id)
        failure: Exception | None = None
        try:
            if assemble_parts(self.storage, current, ordered):
                report.multipart_assembled += 1
                self._finish(current, apply, report)
                return
        except (UploadIncomplete, StorageUnavailable) as exc:
            failure = exc
        # NoSuchUpload (a client's complete assembled it first, or it was aborted), or a
        # refusal: re-read. moto and radosgw answer a complete of an aborted upload with a
        # 500, so the clip's state, not the store's code, says whether another path acted.
        latest = read_clip(self.db, clip.id, clip.owner_id)
        if latest is None:
            return  # deleted meanwhile
        if failure is not None and latest.status == PENDING and latest.multipart_upload_id == clip.multipart_upload_id:
            # Nobody else acted: a part re-uploaded since ListParts, or the store failed.
            report.finish_failed += 1
            log.warning("sweeper could not assemble clip %s (%s); next run retries", clip.id, failure)
            return
        self._finish(latest, apply, report)  # the object (or its absence) decides

    def _finish_batch(self, clip_ids: list[uuid.UUID], apply: bool, report: SweepReport) -> None:
        if not clip_ids:
            return
        with self.db.read() as session:
            clips = list(session.scalars(select(AudioClip).where(AudioClip.id.in_(clip_ids))))
        for clip in clips:
            self._finish(clip, apply, report)

    def _finish(self, clip: Clip, apply: bool, report: SweepReport) -> None:
        """Run ``complete``'s verification on a pending clip whose object is in the bucket."""
        self._present.add(clip.id)
        if clip.status != PENDING:
            return  # finished by another path since the row was read
        if not apply:
            report.finished_ready += 1  # a dry run cannot know the verdict without verifying
            return
        try:
            finished = self.completer.finish(clip, path="sweeper")
        except UploadRejected:
            report.finished_rejected += 1
        except UploadMissing:
            self._present.discard(clip.id)  # gone since the listing: it may expire
        except StorageUnavailable:
            report.finish_failed += 1
            log.warning("sweeper could not finish clip %s: the store failed; next run retries", clip.id)
        except ApiError:
            pass  # deleted, expired or rejected meanwhile by another path: theirs is the word
        else:
            if finished.status == READY:
                report.finished_ready += 1

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
        "finished_ready": ("Uploaded pending clips the last sweep made ready.", report.finished_ready),
        "finished_rejected": ("Uploaded pending clips the last sweep rejected.", report.finished_rejected),
        "finish_failed": ("Uploaded pending clips the last sweep could not verify.", report.finish_failed),
        "multipart_assembled": (
            "Pending multipart uploads with every part stored that the last sweep assembled.",
            report.multipart_assembled,
        ),
        "expired": ("Stale pending clips expired by the last sweep.", report.expired),
        "deletions_done": ("Recorded deletions finished by the last sweep.", report.deletions.done),
        "deletions_failed": ("Recorded deletions that failed in the last sweep.", report.deletions.failed),
        "orphan_objects": ("Objects no row or recorded deletion knows.", report.orphans.count),
        "orphans_deleted": ("Orphan objects deleted by the last sweep.", report.orphans_deleted),
        "late_objects": ("Objects of rejected or expired clips found.", report.late_objects.count),
        "missing_objects": ("Ready clips whose object is missing.", report.missing_objects.count),
        "objects_scanned": ("Objects listed by the last sweep.", report.objects_scanned),
        "multipart_uploads_abandoned": (
            "Abandoned multipart uploads found (expired/rejected/deleted clip, no clip, superseded).",
            sum(report.multipart.abandoned.values()),
        ),
        "multipart_uploads_aborted": ("Abandoned multipart uploads aborted.", report.multipart.aborted),
    }
    for name, (help_text, value) in gauges.items():
        Gauge(f"advanced_notes_sweeper_{name}", help_text, registry=registry).set(value)
    write_to_textfile(path, registry)

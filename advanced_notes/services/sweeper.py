"""The sweeper: finish uploads nobody completed, expire stale ones, finish recorded deletions.

It never deletes a recording that would pass ``complete``: every ``pending`` clip whose
object is in the bucket is finished through
:class:`~advanced_notes.services.completion.ClipCompleter` (the same HEAD + sniff + parse
checks, ``ready`` or ``rejected``) once the object is older than
``SWEEP_COMPLETE_GRACE_SECONDS`` (the client's own ``complete`` usually comes first), or
at once when the clip is stale. A multipart clip's recording is its parts until someone
assembles them: when ListParts shows every part stored at its exact length (the rule
``complete`` applies) the sweeper assembles them (CompleteMultipartUpload) and finishes
the clip the same way. Only a clip with no object and no complete set of parts expires.

The frequent run costs what is pending, not what is stored: it reads the pending rows
(an index range) and asks the store about each pending clip (HEAD, or ListParts for a
multipart upload; :data:`PROBE_THREADS` at a time). When more than ``listing_threshold``
clips are pending, one listing of the folder (a request per 1000 objects) is cheaper than
a request per clip, and the run lists instead (:mod:`~advanced_notes.services.reconcile`).
The two-way reconcile (orphan, late and missing objects) reads every row and the whole
folder (or an S3 Inventory report): ``run(reconcile=True)``, nightly (docs/operations.md).

Safe to run from cron on several machines at once: expiry is a compare-and-set,
recorded deletions are claimed with a compare-and-set lease, and every delete of an
object is idempotent. Dry-run unless ``apply`` is set. Memory stays bounded at any
size: rows are read in keyset batches and the bucket one listing page at a time.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

from advanced_notes.adapters import clip_sql
from advanced_notes.adapters.clip_scans import count_pending_created_before, pending_created_before, reopen_pending
from advanced_notes.adapters.db import Database
from advanced_notes.adapters.models import ClipRecord
from advanced_notes.adapters.storage import ListedObject, S3Storage
from advanced_notes.domain.clock import utcnow
from advanced_notes.domain.errors import StorageUnavailable
from advanced_notes.domain.keys import clips_folder
from advanced_notes.services import reconcile as reconcile_pass
from advanced_notes.services.completion import ClipCompleter
from advanced_notes.services.deletions import CLOCK_SKEW, AttemptResult, DeletionQueue, latest_upload_expiry
from advanced_notes.services.lifecycle import EXPIRED
from advanced_notes.services.multipart_sweep import abort_abandoned_uploads
from advanced_notes.services.sweep_finish import Finisher, Probe
from advanced_notes.services.sweep_report import SweepReport
from advanced_notes.services.webhooks import WebhookOutbox
from advanced_notes.settings import Settings

#: Pending clips above which the frequent run lists the folder instead of asking per clip.
#: A HEAD costs what a LIST of 1000 keys costs, so asking per clip is cheaper while the
#: pending clips are fewer than a thousandth of the stored objects; at 10^4 pending a run
#: is 10^4 HEADs (seconds with :data:`PROBE_THREADS`), still well within its period.
LISTING_THRESHOLD = 10_000
#: Store requests in flight at once while asking about pending clips (boto3's default
#: connection pool holds 10).
PROBE_THREADS = 8


class Sweeper(Finisher):
    """Runs the sweeper jobs.

    Args:
        db, storage, settings: as the app has them (prefix, reservation time, grace
            period ``sweep_complete_grace_seconds``, webhook receivers).
        batch_size: rows per transaction and per query.
        completer: the shared completion (default: one built from the arguments).
        listing_threshold: pending clips above which the frequent run lists the folder.
    """

    def __init__(
        self,
        db: Database,
        storage: S3Storage,
        settings: Settings,
        batch_size: int = 500,
        completer: ClipCompleter | None = None,
        listing_threshold: int = LISTING_THRESHOLD,
    ):
        self.queue = DeletionQueue(db, storage)
        self.webhooks = WebhookOutbox(settings)
        super().__init__(
            db,
            storage,
            completer or ClipCompleter(db, storage, self.queue, settings, self.webhooks),
            grace=dt.timedelta(seconds=settings.sweep_complete_grace_seconds),
        )
        self.folder = clips_folder(settings.key_prefix)
        self.reservation = dt.timedelta(seconds=settings.upload_reservation_seconds)
        self.batch_size = batch_size
        self.listing_threshold = listing_threshold
        #: True once this run's listing of the whole folder completed.
        self._listed = False

    def run(
        self,
        *,
        apply: bool,
        reconcile: bool = False,
        delete_orphans: bool = False,
        min_orphan_age: dt.timedelta = dt.timedelta(hours=1),
        progress: Callable[[int], object] | None = None,
        inventory: tuple[dt.datetime, Iterable[ListedObject]] | None = None,
    ) -> SweepReport:
        """Finish uploaded pending clips, expire stale ones, retry deletions, abort abandoned
        multipart uploads; with ``reconcile``, then compare bucket and database both ways.

        The pending clips are checked first because that check is what tells expiry which
        of them have an object: if the store cannot answer, nothing is expired.

        Args:
            apply: make changes (False: only report).
            reconcile: also run the two-way reconcile (every row, the whole folder).
            delete_orphans: with ``apply`` and ``reconcile``, also delete objects no row or
                recorded deletion knows, if older than ``min_orphan_age``.
            progress: called with the number of objects (or clips) just scanned.
            inventory: for the reconcile, ``(taken_at, objects in key order)`` of an S3
                Inventory report instead of a listing (:mod:`advanced_notes.adapters.inventory`).
        Raises:
            StorageUnavailable: the store could not be asked (nothing was expired).
        """
        report = SweepReport(applied=apply, reconciled=reconcile)
        started = utcnow()
        self._present, self._absent, self._listed = set(), set(), False
        self._failures, self._failure = 0, None
        with self.db.statement() as conn:
            pending = count_pending_created_before(conn, before=started, limit=self.listing_threshold + 1)
        if pending > self.listing_threshold:
            report.listed = True
            reconcile_pass.finish_listed(self, report, started, apply=apply, progress=progress)
            self._listed = True
            # Before expiry: a clip whose every part is stored is finished, never expired.
            reconcile_pass.finish_listed_uploads(self, report, started, apply=apply)
            report.expired = self.expire_stale(apply, started, report)
        else:
            report.expired = self.check_pending(report, started, apply=apply, progress=progress)
        report.deletions_due = self.queue.count_due(started)
        if apply:
            report.deletions = self.retry_deletions(started)
        # After expiry and deletions (which abort their clips' uploads through the outbox).
        report.multipart = abort_abandoned_uploads(
            self.db, self.storage, self.folder, started=started, apply=apply, min_age=min_orphan_age
        )
        if reconcile:
            taken_at, objects = inventory or (utcnow(), reconcile_pass.listing(self.storage, self.folder))
            reconcile_pass.find(
                self,
                report,
                objects,
                taken_at,
                apply=apply,
                delete_orphans=delete_orphans and apply,
                min_orphan_age=min_orphan_age,
                progress=progress,
            )
        return report

    # -- the pending clips, one store request each --------------------------------------------

    def check_pending(
        self,
        report: SweepReport,
        started: dt.datetime,
        *,
        apply: bool,
        progress: Callable[[int], object] | None = None,
    ) -> int:
        """Ask the store about every pending clip created before ``started``; finish or expire each.

        Pending rows are read in keyset batches of ``batch_size`` (each row once); each
        batch's clips are asked about concurrently (:meth:`probe`), then finished (an
        object or a complete set of parts) or, when stale and empty, expired
        (:meth:`expire_batch`).

        Returns:
            how many clips were (in a dry run: would be) expired.
        Raises:
            StorageUnavailable: the store stopped answering (``OUTAGE_AFTER`` failures in a
                row); what was done stays done.
        """
        stale_before, expired = started - self.reservation, 0
        after: tuple[dt.datetime, uuid.UUID] | None = None
        with ThreadPoolExecutor(PROBE_THREADS, thread_name_prefix="sweep-probe") as pool:
            while True:
                with self.db.statement() as conn:
                    clips = pending_created_before(conn, before=started, after=after, limit=self.batch_size)
                if not clips:
                    return expired
                after = (clips[-1].created_at, clips[-1].id)
                report.rows_scanned += len(clips)
                report.pending_checked += len(clips)
                for clip, probe in zip(clips, pool.map(self.probe, clips), strict=True):
                    self.settle(clip, probe, started, clip.created_at < stale_before, apply, report)
                if progress:
                    progress(len(clips))
                expired += self.expire_batch([c for c in clips if c.created_at < stale_before], apply, started, report)
                if (failure := self.store_down()) is not None:
                    raise failure  # clips it could not ask about stay pending; the next run retries

    # -- expiry ---------------------------------------------------------------------

    def expire_stale(self, apply: bool, now: dt.datetime, report: SweepReport | None = None) -> int:
        """Expire ``pending`` clips created before ``now - UPLOAD_RESERVATION_SECONDS`` that have no object.

        ``now`` is when this run started (its listing, if any). Each batch goes through
        :meth:`expire_batch`.

        Returns:
            how many clips were (in a dry run: would be) expired.
        """
        report = report or SweepReport(applied=apply)
        count = 0
        after: tuple[dt.datetime, uuid.UUID] | None = None
        while True:
            # Keyset paging: skipped clips stay pending, so re-querying from the start would loop.
            with self.db.statement() as conn:
                clips = pending_created_before(conn, before=now - self.reservation, after=after, limit=self.batch_size)
            if not clips:
                return count
            after = (clips[-1].created_at, clips[-1].id)
            report.rows_scanned += len(clips)
            count += self.expire_batch(clips, apply, now, report)

    def expire_batch(self, clips: Sequence[ClipRecord], apply: bool, now: dt.datetime, report: SweepReport) -> int:
        """Expire the stale pending ``clips`` that have no object; returns how many (would) expire.

        Clips this run saw with an object are skipped (finished, or retried next run). A
        clip whose last PUT URL (plus clock skew) was still valid at ``now`` may have
        received its object since this run looked, so it is HEADed first and finished if
        the object is there. Each expiry records its object's deletion (unless this run
        proved there is none and none can come) and its ``clip.expired`` webhook in the
        same transaction; the deletion is kept until the last PUT URL has expired, so an
        upload arriving later is deleted too.
        """
        doomed = [c for c in clips if c.id not in self._present and not self._arrived_late(c, now, apply, report)]
        if not apply or not doomed:
            return len(doomed) if not apply else 0
        with self.db.transaction() as session:
            won = {c.id for c in clip_sql.mark_expired(conn=session, clip_ids=[c.id for c in doomed], now=now)}
            # The expiries as stored now, not as read above. A clip whose PUT URL was
            # re-signed since the read may get its object after this run looked: it stays
            # pending (this transaction never commits its expiry) and the next run looks
            # again, so a recording is never expired under a live URL.
            latest = latest_upload_expiry(session, list(won))
            racers = {
                c.id
                for c in doomed
                if c.id in won
                and (stored := latest.get(c.id)) is not None
                and stored != c.upload_expires_at
                and stored + CLOCK_SKEW > now
            }
            reopen_pending(session, ids=racers)
            won -= racers
            for clip in doomed:
                if clip.id in won:
                    clip.upload_expires_at = latest[clip.id]
                    if self._may_hold_object(clip, now):
                        DeletionQueue.enqueue(session, clip, "expired", now)
                    self.webhooks.enqueue(session, "clip.expired", clip, status=EXPIRED, updated_at=now)
        return len(won)

    def _may_hold_object(self, clip: ClipRecord, checked_at: dt.datetime) -> bool:
        """Whether an expired clip needs a recorded deletion.

        Not when this run showed no object at its key (a HEAD, or a complete listing) and
        no PUT URL of it worked after the run started: no object is there and none can
        come. Recording nothing keeps expiring 10^5 abandoned clips a matter of seconds
        (one store DELETE each would take many minutes).
        """
        proven_empty = clip.id in self._absent or (self._listed and clip.storage_key.startswith(self.folder))
        if not proven_empty:
            return True
        return clip.upload_expires_at is None or clip.upload_expires_at + CLOCK_SKEW > checked_at

    def _arrived_late(self, clip: ClipRecord, listed_at: dt.datetime, apply: bool, report: SweepReport) -> bool:
        """True when ``clip`` must not expire: its object may be (or is) there after this run looked."""
        if clip.upload_expires_at is not None and clip.upload_expires_at + CLOCK_SKEW <= listed_at:
            return False  # no URL worked after the run started: what it saw was the truth
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


__all__ = ["LISTING_THRESHOLD", "PROBE_THREADS", "Probe", "SweepReport", "Sweeper"]

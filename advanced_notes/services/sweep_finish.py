"""The sweeper's finishing of uploads nobody completed: what the store says of a pending clip, and the verdict.

A pending clip whose object is stored (or whose every multipart part is) is finished
through ``ClipCompleter.finish(path="sweeper")``, the checks ``complete`` runs, once the
object (the newest part) is older than the grace period, or at once when the clip is
stale. :class:`Finisher` holds that rule; :class:`~advanced_notes.services.sweeper.Sweeper`
decides which clips to ask about and expires the rest.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from collections.abc import Collection
from dataclasses import dataclass

from advanced_notes.adapters.clip_scans import clips_by_ids
from advanced_notes.adapters.clip_sql import read_clip
from advanced_notes.adapters.db import Database
from advanced_notes.adapters.models import ClipRecord
from advanced_notes.adapters.storage import ObjectInfo, S3Storage, UploadedPart
from advanced_notes.domain.errors import ApiError, StorageUnavailable, UploadIncomplete, UploadMissing, UploadRejected
from advanced_notes.services.completion import ClipCompleter
from advanced_notes.services.lifecycle import PENDING, READY
from advanced_notes.services.multipart_parts import assemble_parts, check_parts
from advanced_notes.services.sweep_report import SweepReport

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Probe:
    """What the store said of one pending clip.

    ``parts``: the parts of its multipart upload in progress (None: no upload in
    progress, or a single PUT); otherwise ``stored``: its object's HEAD (None: no
    object). ``failed``: the store did not answer.
    """

    stored: ObjectInfo | None = None
    parts: list[UploadedPart] | None = None
    failed: bool = False


class Finisher:
    """Finish pending clips whose recording is stored.

    Args:
        db: the database; storage: the S3 adapter; completer: the shared completion.
        grace: how old an object (the newest part) must be before the sweeper finishes
            a clip that is not yet stale (``SWEEP_COMPLETE_GRACE_SECONDS``).
    """

    def __init__(self, db: Database, storage: S3Storage, completer: ClipCompleter, grace: dt.timedelta):
        self.db = db
        self.storage = storage
        self.completer = completer
        self.grace = grace
        #: Pending clips the current run saw with an object and left pending: never expired.
        self._present: set[uuid.UUID] = set()
        #: Pending clips the current run showed with no object (a HEAD answered 404).
        self._absent: set[uuid.UUID] = set()
        #: The store failures since its last answer, and the first of the current streak.
        self._failures = 0
        self._failure: StorageUnavailable | None = None
        self._failures_lock = threading.Lock()

    #: Failed store requests in a row (no answer between them) after which the run stops
    #: asking: the store is down, and each further request would wait for its timeout.
    OUTAGE_AFTER = 8

    def store_down(self) -> StorageUnavailable | None:
        """The first failure of the current streak once :data:`OUTAGE_AFTER` requests in a row failed."""
        with self._failures_lock:
            return self._failure if self._failures >= self.OUTAGE_AFTER else None

    def probe(self, clip: ClipRecord) -> Probe:
        """Ask the store about ``clip``: ListParts when it has a multipart upload, else (or
        when the store no longer knows the upload) HEAD. Store calls only: safe in a thread.
        Once the store is down (:meth:`store_down`), answers failed without asking."""
        if self.store_down() is not None:
            return Probe(failed=True)
        try:
            if clip.multipart_upload_id is not None:
                parts = self.storage.list_parts(clip.storage_key, clip.multipart_upload_id)
                if parts is not None:
                    return self._answered(Probe(parts=parts))
            return self._answered(Probe(stored=self.storage.head(clip.storage_key)))
        except StorageUnavailable as exc:
            with self._failures_lock:
                self._failures += 1
                self._failure = self._failure or exc
            return Probe(failed=True)

    def _answered(self, probe: Probe) -> Probe:
        with self._failures_lock:
            self._failures, self._failure = 0, None
        return probe

    def settle(
        self, clip: ClipRecord, probe: Probe, started: dt.datetime, stale: bool, apply: bool, report: SweepReport
    ) -> None:
        """Act on what :meth:`probe` found: finish, leave in grace, or note that no object is there.

        Args:
            clip: the pending clip as read; probe: the store's answer; started: when the run
            began (aware UTC); stale: created before the reservation ended; apply: change things.
        """
        if probe.failed:
            self._present.add(clip.id)  # unknown: keep it pending until the store answers
            report.finish_failed += 1
        elif probe.parts is not None:
            self.settle_parts(clip, probe.parts, stale, started - self.grace, apply, report)
        elif probe.stored is None:
            self._absent.add(clip.id)
        else:
            self._present.add(clip.id)
            modified = probe.stored.last_modified
            if stale or (modified is not None and modified <= started - self.grace):
                self._finish(clip, apply, report)
            else:
                report.uploads_in_grace += 1

    def settle_parts(
        self,
        clip: ClipRecord,
        parts: list[UploadedPart],
        stale: bool,
        grace_before: dt.datetime,
        apply: bool,
        report: SweepReport,
    ) -> None:
        """Assemble and finish a pending multipart clip when its ``parts`` are all there.

        The rule of ``complete`` (:func:`~advanced_notes.services.multipart_parts.check_parts`:
        parts 1..N, each of its exact length, summing to the declared ``bytes``). A
        complete set is assembled (CompleteMultipartUpload with the listed ETags) and the
        clip finished, once its newest part is older than ``grace_before``, or at once when
        ``stale``. A clip with parts missing is left alone: a live one is still uploading,
        a stale one is expired next (its upload aborted by the outbox).
        """
        assert clip.multipart_upload_id is not None  # only clips with an upload have parts
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

    def finish_batch(self, clip_ids: Collection[uuid.UUID], apply: bool, report: SweepReport) -> None:
        """Read the clips ``clip_ids`` and finish those still pending (their objects were listed)."""
        if not clip_ids:
            return
        with self.db.statement() as conn:
            clips = clips_by_ids(conn, ids=clip_ids)
        for clip in clips:
            self._finish(clip, apply, report)

    def _finish(self, clip: ClipRecord, apply: bool, report: SweepReport) -> None:
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
            self._present.discard(clip.id)  # gone since the store was asked: it may expire
        except StorageUnavailable:
            report.finish_failed += 1
            log.warning("sweeper could not finish clip %s: the store failed; next run retries", clip.id)
        except ApiError:
            pass  # deleted, expired or rejected meanwhile by another path: theirs is the word
        else:
            if finished.status == READY:
                report.finished_ready += 1

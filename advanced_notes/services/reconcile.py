"""The sweeper's passes that read the whole folder: the listing fallback and the two-way reconcile.

Both merge two streams in the same order: the objects of ``<prefix>/audio-clips/`` (S3
lists keys in binary order, and ``<uuid>.<ext>`` keys sort like their UUIDs, each followed
by its derived objects ``<uuid>/<name>``) and the rows ordered by ``id`` (UUIDs compare as
16 bytes in PostgreSQL and as lower-case hex in SQLite, the same order). Memory stays
bounded: one listing page and one batch of rows at a time.

- :func:`finish_listed` (the frequent run when many clips are pending) merges with the
  pending rows only (a partial index), to finish the pending clips whose object is there;
  :func:`finish_listed_uploads` finds their multipart uploads the same way (one listing).
- :func:`find` (``sweep --reconcile``, nightly) merges with every row and reports objects no
  row or recorded deletion knows (orphans), objects of rejected/expired clips (late
  uploads: deleted with ``apply``) and ready clips whose object is gone (missing).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from advanced_notes.adapters.clip_scans import clip_scan_after
from advanced_notes.adapters.models import ClipStatus
from advanced_notes.adapters.outbox_sql import deletion_keys
from advanced_notes.adapters.storage import ListedObject, S3Storage
from advanced_notes.domain.errors import StorageUnavailable
from advanced_notes.domain.keys import clip_id_from_key, derived_keys
from advanced_notes.services.multipart_sweep import pending_uploads
from advanced_notes.services.sweep_report import SweepReport

if TYPE_CHECKING:
    from advanced_notes.services.sweeper import Sweeper

_GARBAGE_STATUSES = (ClipStatus.REJECTED.value, ClipStatus.EXPIRED.value)


@dataclass(frozen=True)
class _Row:
    id: uuid.UUID
    storage_key: str
    status: str
    completed_at: dt.datetime | None
    created_at: dt.datetime


def listing(storage: S3Storage, folder: str) -> Iterator[ListedObject]:
    """The objects under ``folder`` in key order, one listing page (1000 keys) at a time."""
    for page in storage.list_objects(folder):
        yield from page


def _rows(sweeper: Sweeper, report: SweepReport, *, pending_only: bool) -> Iterator[_Row]:
    after: uuid.UUID | None = None
    while True:
        with sweeper.db.statement() as conn:
            scanned = clip_scan_after(conn, after=after, limit=sweeper.batch_size, pending_only=pending_only)
        batch = [_Row(*r) for r in scanned]
        if not batch:
            return
        report.rows_scanned += len(batch)
        after = batch[-1].id
        # Rows of another prefix (an older S3_KEY_PREFIX) have no object here to compare.
        yield from (row for row in batch if row.storage_key.startswith(sweeper.folder))


def _keyed(
    folder: str, objects: Iterable[ListedObject], report: SweepReport, progress: Callable[[int], object] | None
) -> Iterator[tuple[uuid.UUID | None, ListedObject]]:
    """Each object with the clip id its key names (None: not a clip's key), checking the order."""
    last_id: uuid.UUID | None = None
    for obj in objects:
        report.objects_scanned += 1
        if progress:
            progress(1)
        clip_id = clip_id_from_key(folder, obj.key)
        if clip_id is not None:
            if last_id is not None and clip_id < last_id:
                raise StorageUnavailable("The store did not list keys in order; reconcile stopped.")
            last_id = clip_id
        yield clip_id, obj


def finish_listed(
    sweeper: Sweeper,
    report: SweepReport,
    started: dt.datetime,
    *,
    apply: bool,
    progress: Callable[[int], object] | None = None,
) -> None:
    """Finish the pending clips whose object the listing of the folder shows.

    Each such clip is finished (``apply``) once its object is older than the grace
    period, or at once when the clip is stale; a younger one is left to its client and
    never expired by this run. Objects of other clips are not this pass's business.
    """
    rows = _rows(sweeper, report, pending_only=True)
    row = next(rows, None)
    to_finish: list[uuid.UUID] = []
    for clip_id, obj in _keyed(sweeper.folder, listing(sweeper.storage, sweeper.folder), report, progress):
        if clip_id is None:
            continue
        while row is not None and row.id < clip_id:
            row = next(rows, None)
        if row is None or row.id != clip_id or row.storage_key != obj.key:
            continue
        sweeper._present.add(row.id)
        if obj.last_modified <= started - sweeper.grace or row.created_at < started - sweeper.reservation:
            to_finish.append(row.id)
        else:
            report.uploads_in_grace += 1
        if len(to_finish) >= sweeper.batch_size:
            sweeper.finish_batch(to_finish, apply, report)
            to_finish = []
    sweeper.finish_batch(to_finish, apply, report)


def finish_listed_uploads(sweeper: Sweeper, report: SweepReport, started: dt.datetime, *, apply: bool) -> None:
    """Assemble and finish the pending multipart clips whose every part is stored, found by listing.

    The uploads in progress under the prefix (:func:`~advanced_notes.services.multipart_sweep.pending_uploads`,
    one ListMultipartUploads request per 1000 uploads) that are a pending clip's current
    upload: ListParts each, then :meth:`~advanced_notes.services.sweep_finish.Finisher.settle`.

    Raises:
        StorageUnavailable: ListMultipartUploads failed (nothing is expired then).
    """
    stale_before = started - sweeper.reservation
    for page in pending_uploads(sweeper.db, sweeper.storage, sweeper.folder):
        for clip in page:
            sweeper.settle(clip, sweeper.probe(clip), started, clip.created_at < stale_before, apply, report)


def find(
    sweeper: Sweeper,
    report: SweepReport,
    objects: Iterable[ListedObject],
    taken_at: dt.datetime,
    *,
    apply: bool,
    delete_orphans: bool,
    min_orphan_age: dt.timedelta,
    progress: Callable[[int], object] | None = None,
) -> None:
    """Compare ``objects`` (the folder, in key order) with every row, both ways.

    Args:
        objects: a listing, or an S3 Inventory report's entries (see module doc).
        taken_at: when ``objects`` was read (aware UTC): a ready clip completed later may
            miss from it without being missing; an unknown object younger than
            ``min_orphan_age`` at that time is left alone.
        apply: delete late objects; delete_orphans: delete orphans too.
    """
    rows = _rows(sweeper, report, pending_only=False)
    row, row_has_object = next(rows, None), False
    unknown: list[tuple[uuid.UUID | None, ListedObject]] = []

    def finish_row(r: _Row, has_object: bool) -> None:
        if not has_object and r.status == ClipStatus.READY.value and r.completed_at and r.completed_at < taken_at:
            report.missing_objects.add(r.storage_key)

    for clip_id, obj in _keyed(sweeper.folder, objects, report, progress):
        if clip_id is not None:
            while row is not None and row.id < clip_id:
                finish_row(row, row_has_object)
                row, row_has_object = next(rows, None), False
        if clip_id is None or row is None or row.id != clip_id:
            unknown.append((clip_id, obj))
        elif row.storage_key == obj.key:
            row_has_object = True  # a pending clip's object is the frequent pass's business
            if row.status in _GARBAGE_STATUSES:
                report.late_objects.add(obj.key)
                if apply:
                    sweeper.storage.delete(obj.key)
                    report.late_objects_deleted += 1
        elif obj.key not in derived_keys(row.storage_key):
            # Derived objects (listed after their original: "." sorts before "/") go with their clip.
            unknown.append((clip_id, obj))
        if len(unknown) >= sweeper.batch_size:
            _settle_unknown(sweeper, report, unknown, taken_at, delete_orphans, min_orphan_age)
            unknown = []
    while row is not None:
        finish_row(row, row_has_object)
        row, row_has_object = next(rows, None), False
    _settle_unknown(sweeper, report, unknown, taken_at, delete_orphans, min_orphan_age)


def _settle_unknown(
    sweeper: Sweeper,
    report: SweepReport,
    unknown: list[tuple[uuid.UUID | None, ListedObject]],
    taken_at: dt.datetime,
    delete_orphans: bool,
    min_orphan_age: dt.timedelta,
) -> None:
    with sweeper.db.statement() as conn:
        recorded = deletion_keys(conn, clip_ids={clip_id for clip_id, _ in unknown if clip_id is not None})
    for _, obj in unknown:
        if obj.key in recorded:
            report.awaiting_deletion += 1
        elif obj.last_modified > taken_at - min_orphan_age:
            report.young_unknown_objects += 1
        else:
            report.orphans.add(obj.key)
            if delete_orphans:
                sweeper.storage.delete(obj.key)
                report.orphans_deleted += 1

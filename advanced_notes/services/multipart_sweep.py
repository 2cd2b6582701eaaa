"""The sweeper's multipart job: abort unfinished uploads nobody will complete (the bill stays clean).

Parts of an unfinished multipart upload are billed but invisible to ListObjects. This
lists the uploads in progress under our prefix (ListMultipartUploads) and aborts those
of expired, rejected or deleted clips, those of no clip, and those a clip no longer
refers to (superseded). A pending clip's current upload is left alone here: the sweeper
assembles it when every part is stored (:func:`pending_uploads` lists them for it, before
expiry), and otherwise the clip's expiry aborts it through the deletion outbox.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from advanced_notes.adapters.clip_scans import clips_by_ids
from advanced_notes.adapters.db import Database
from advanced_notes.adapters.models import ClipRecord
from advanced_notes.adapters.outbox_sql import deletion_keys
from advanced_notes.adapters.storage import InProgressUpload, S3Storage
from advanced_notes.domain.keys import clip_id_from_key
from advanced_notes.services.lifecycle import EXPIRED, PENDING, REJECTED

log = logging.getLogger(__name__)

#: Why an upload is abandoned, in report order.
REASONS = ("expired", "rejected", "deleted", "no_clip", "superseded")


@dataclass
class AbandonedUploads:
    """What the multipart job found: uploads listed, abandoned ones by reason, aborted."""

    scanned: int = 0
    abandoned: Counter[str] = field(default_factory=Counter)
    aborted: int = 0
    young: int = 0

    def summary(self, applied: bool) -> str:
        reasons = ", ".join(f"{r} {self.abandoned[r]}" for r in REASONS)
        verb = "aborted" if applied else "would be aborted"
        return (
            f"multipart uploads in progress: {self.scanned}; abandoned ({reasons}) {verb}: "
            f"{self.aborted if applied else sum(self.abandoned.values())}; younger than the minimum age: {self.young}"
        )


def pending_uploads(db: Database, storage: S3Storage, folder: str) -> Iterator[list[ClipRecord]]:
    """Pages of the pending clips whose current multipart upload is in progress under ``folder``.

    One ListMultipartUploads listing (a request per 1000 uploads) and one query per page:
    the clips that may hold every part of a recording nobody completed. A clip is yielded
    when the listed upload is the one it refers to (its key and upload id).

    Raises:
        StorageUnavailable: the listing failed (pages already yielded stay valid).
    """
    for page in storage.list_multipart_uploads(folder):
        listed = {(u.key, u.upload_id) for u in page}
        ids = [i for i in (clip_id_from_key(folder, u.key) for u in page) if i is not None]
        if not ids:
            continue
        with db.statement() as conn:
            clips: list[ClipRecord] = list(clips_by_ids(conn, ids=ids, pending_only=True))
        yield [c for c in clips if (c.storage_key, c.multipart_upload_id) in listed]


def abort_abandoned_uploads(
    db: Database,
    storage: S3Storage,
    folder: str,
    *,
    started: dt.datetime,
    apply: bool,
    min_age: dt.timedelta,
) -> AbandonedUploads:
    """List the multipart uploads under ``folder`` and abort the abandoned ones.

    Args:
        folder: ``<prefix>/audio-clips/``. started: the sweep's start (aware UTC).
        apply: abort (False: only count). min_age: an upload of no clip younger than this
            is left alone (a create may be between CreateMultipartUpload and its INSERT).
    Returns:
        the counts.
    Raises:
        StorageUnavailable: listing or aborting failed (what was done stays done).
    """
    result = AbandonedUploads()
    for page in storage.list_multipart_uploads(folder):
        result.scanned += len(page)
        for upload, reason in _classify(db, folder, page, started - min_age, result):
            result.abandoned[reason] += 1
            if apply:
                storage.abort_multipart_upload(upload.key, upload.upload_id)
                result.aborted += 1
                log.info("aborted abandoned multipart upload key=%s reason=%s", upload.key, reason)
    return result


def _classify(
    db: Database, folder: str, page: list[InProgressUpload], young_after: dt.datetime, result: AbandonedUploads
) -> list[tuple[InProgressUpload, str]]:
    ids = {u.key: clip_id_from_key(folder, u.key) for u in page}
    known = [i for i in ids.values() if i is not None]
    with db.statement() as conn:
        clips = {c.id: c for c in clips_by_ids(conn, ids=known)}
        deleted = deletion_keys(conn, clip_ids=known)
    verdicts = []
    for upload in page:
        clip_id = ids[upload.key]
        clip = clips.get(clip_id) if clip_id is not None else None
        if clip is not None and clip.storage_key == upload.key:
            if clip.status in (EXPIRED, REJECTED):
                verdicts.append((upload, clip.status))
            elif clip.status == PENDING and clip.multipart_upload_id == upload.upload_id:
                continue  # in progress: assembled by the sweeper when complete, else its expiry aborts it
            elif upload.initiated is None or upload.initiated < young_after:
                verdicts.append((upload, "superseded"))
            else:
                result.young += 1
        elif upload.key in deleted:
            verdicts.append((upload, "deleted"))
        elif upload.initiated is None or upload.initiated < young_after:
            verdicts.append((upload, "no_clip"))
        else:
            result.young += 1
    return verdicts

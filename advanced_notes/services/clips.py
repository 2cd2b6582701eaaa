"""Reading clips, playing them back, attaching them to notes, deleting them.

The upload flow (create, fresh PUT URLs, complete) is :mod:`advanced_notes.services.uploads`.
Object deletions go through the :class:`~advanced_notes.services.deletions.DeletionQueue`
outbox, in the transaction that deletes the row.
"""

from __future__ import annotations

import builtins  # ClipService.list shadows the builtin inside the class body
import datetime as dt
import logging
import uuid
from dataclasses import dataclass

from advanced_notes.adapters import clip_sql
from advanced_notes.adapters.db import Database, Transaction
from advanced_notes.adapters.models import ClipRecord, PendingDeletion
from advanced_notes.adapters.storage import S3Storage
from advanced_notes.domain.clock import utcnow
from advanced_notes.domain.errors import (
    ClipNotReady,
    NotFound,
    ValidationFailed,
    before_ready,
)
from advanced_notes.domain.keys import derived_keys
from advanced_notes.domain.mime import extension_for
from advanced_notes.domain.pagination import decode_cursor, encode_cursor
from advanced_notes.domain.processing import ORIGINAL, stored_peaks, stored_rendition
from advanced_notes.services.deletions import DeletionQueue
from advanced_notes.services.lifecycle import READY
from advanced_notes.services.webhooks import WebhookOutbox

log = logging.getLogger(__name__)

#: Clips deleted per transaction by DELETE /api/notes/<id>/audio.
_NOTE_DELETE_BATCH = 200


@dataclass(frozen=True)
class ClipPage:
    """One page of a listing; ``next_cursor`` is None on the last page."""

    clips: list[ClipRecord]
    next_cursor: str | None


@dataclass(frozen=True)
class Playback:
    """A clip and a presigned GET for it (``expires_at`` aware UTC).

    ``cache_seconds``: how long the answer may be reused (the URL's signing window ends
    then, see :meth:`S3Storage.presign_get`); None when the URL was signed for this request alone.
    """

    clip: ClipRecord
    url: str
    expires_at: dt.datetime
    cache_seconds: int | None = None


class ClipService:
    """Get, list, play back, attach and delete an owner's audio clips.

    Args:
        db: the database (metadata only).
        storage: the S3 adapter (the bytes).
        deletions: the deletion outbox.
        webhooks: the outbound webhook outbox (``clip.deleted``).

    Every method takes the authenticated ``owner_id``; a clip of another owner is
    reported exactly like a missing one (:class:`NotFound`).
    """

    def __init__(self, db: Database, storage: S3Storage, deletions: DeletionQueue, webhooks: WebhookOutbox):
        self.db = db
        self.storage = storage
        self.deletions = deletions
        self.webhooks = webhooks

    # -- read ---------------------------------------------------------------------

    def get(self, owner_id: str, clip_id: uuid.UUID) -> ClipRecord:
        """One clip of ``owner_id`` (one SELECT). Raises NotFound (also for another owner's clip)."""
        with self.db.statement() as conn:
            clip = clip_sql.get_clip(conn=conn, clip_id=clip_id, owner_id=owner_id)
        if clip is None:
            raise NotFound("No such audio clip.")
        return clip

    def list(
        self,
        owner_id: str,
        *,
        note_id: str | None = None,
        status: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> ClipPage:
        """The owner's clips, newest first, ``limit`` per page (keyset pagination).

        Raises:
            ValidationFailed: ``cursor`` is not one this API produced.
        """
        before = None
        if cursor is not None:
            try:
                before = decode_cursor(cursor)
            except ValueError:
                raise ValidationFailed("The request failed validation.", {"cursor": ["Invalid cursor."]}) from None
        with self.db.statement() as conn:
            rows = clip_sql.list_clips(
                conn=conn, owner_id=owner_id, note_id=note_id, status=status, before=before, limit=limit + 1
            )
        if len(rows) <= limit:
            return ClipPage(rows, None)
        last = rows[limit - 1]
        return ClipPage(rows[:limit], encode_cursor(last.created_at, last.id))

    # -- playback -----------------------------------------------------------------

    def playback(self, owner_id: str, clip_id: uuid.UUID, rendition: str = ORIGINAL) -> Playback:
        """A presigned GET for a ``ready`` clip's original, or one of its renditions.

        Args:
            rendition: ``original`` (default), ``seekable``, ``universal`` or ``normalized``.
        Raises:
            NotFound, ClipNotReady (any other status), RenditionNotReady (the rendition is
            not made yet, failed, or skipped: the message says what to ask for).
        """
        clip = self.get(owner_id, clip_id)
        if clip.status != READY:
            raise ClipNotReady(
                f"The clip is {clip.status}; only ready clips can be played. {before_ready(clip.status, clip.id)}",
                {"status": clip.status},
            )
        return self._playback(clip, rendition)

    def note_audio(self, owner_id: str, note_id: str, rendition: str = ORIGINAL) -> Playback:
        """The note's primary clip (most recent ``ready`` by ``created_at``) with a playback URL.

        Args:
            rendition: as for :meth:`playback`.
        Raises:
            NotFound: the note has no ready clip of this owner. RenditionNotReady.
        """
        with self.db.statement() as conn:
            clip = clip_sql.get_note_audio(conn=conn, owner_id=owner_id, note_id=note_id)
        if clip is None:
            raise NotFound("The note has no ready audio clip.")
        return self._playback(clip, rendition)

    def peaks(self, owner_id: str, clip_id: uuid.UUID) -> Playback:
        """A presigned GET of a ready clip's waveform peaks (audiowaveform JSON, version 2).

        Raises:
            NotFound, ClipNotReady, RenditionNotReady (processing not done, or failed).
        """
        clip = self.get(owner_id, clip_id)
        if clip.status != READY:
            raise ClipNotReady(
                f"The clip is {clip.status}; only ready clips have peaks. {before_ready(clip.status, clip.id)}",
                {"status": clip.status},
            )
        peaks = stored_peaks(clip.processing_status, clip.processing)
        signed = self.storage.presign_get(peaks.key, peaks.mime_type, f"{clip.id}-peaks.json")
        return Playback(clip, signed.url, signed.expires_at, signed.cache_seconds)

    def _playback(self, clip: ClipRecord, rendition: str = ORIGINAL) -> Playback:
        stored = stored_rendition(rendition, clip.processing_status, clip.processing)
        if stored is None:
            key, mime_type, filename = clip.storage_key, clip.mime_type, f"{clip.id}.{extension_for(clip.mime_type)}"
        else:
            key, mime_type, filename = stored.key, stored.mime_type, f"{clip.id}-{rendition}.{stored.extension}"
        signed = self.storage.presign_get(key, mime_type, filename)
        return Playback(clip, signed.url, signed.expires_at, signed.cache_seconds)

    # -- attach, delete -----------------------------------------------------------

    def set_note(self, owner_id: str, clip_id: uuid.UUID, note_id: str | None) -> ClipRecord:
        """Attach the clip to ``note_id``, or detach it with None (one UPDATE ... RETURNING). Raises NotFound."""
        with self.db.statement(write=True) as conn:
            clip = clip_sql.set_note(conn=conn, clip_id=clip_id, owner_id=owner_id, note_id=note_id, now=utcnow())
        if clip is None:
            raise NotFound("No such audio clip.")
        return clip

    def delete(self, owner_id: str, clip_id: uuid.UUID) -> None:
        """Delete the clip's row and its object (now, or later by the sweeper if the store fails).

        Raises:
            NotFound.
        """
        with self.db.transaction() as session:
            # DELETE ... RETURNING, not SELECT then DELETE: the deletion must be recorded
            # with the upload expiry the row has when it goes. A concurrent upload-url
            # could extend it between a plain read and the delete, and a PUT with that
            # new URL would then store an object no row and no deletion knew.
            gone = clip_sql.delete_clip(conn=session, clip_id=clip_id, owner_id=owner_id)
            if gone is None:
                raise NotFound("No such audio clip.")
            records = self._enqueue_deletions(session, gone)
            self._deleted_event(session, gone)
        self.deletions.attempt(records)

    def delete_note_audio(self, owner_id: str, note_id: str) -> int:
        """Delete every clip of the owner's note (any status) and their objects; returns how many."""
        deleted, records = 0, []
        while True:
            with self.db.transaction() as session:
                gone = clip_sql.delete_note_clips(
                    conn=session, owner_id=owner_id, note_id=note_id, limit=_NOTE_DELETE_BATCH
                )
                for clip in gone:
                    records += self._enqueue_deletions(session, clip)
                    self._deleted_event(session, clip)
            deleted += len(gone)
            if len(gone) < _NOTE_DELETE_BATCH:
                break
        self.deletions.attempt(records)
        return deleted

    @staticmethod
    def _enqueue_deletions(session: Transaction, clip: ClipRecord) -> builtins.list[PendingDeletion]:
        """The original's deletion and, once its processing was queued, every derived object's
        (a worker may be writing them now: it records their deletion itself when it finds
        the clip gone)."""
        records = [DeletionQueue.enqueue(session, clip, "deleted")]
        if clip.processing_status is not None:
            records += DeletionQueue.enqueue_keys(session, clip.id, derived_keys(clip.storage_key), "deleted")
        return records

    def _deleted_event(self, session: Transaction, clip: ClipRecord) -> None:
        # In the deleting transaction: the event exists exactly when the deletion does.
        self.webhooks.enqueue(session, "clip.deleted", clip, updated_at=utcnow())

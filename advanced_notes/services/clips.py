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
from typing import Any

from sqlalchemy import delete, select, tuple_, update
from sqlalchemy.orm import Session

from advanced_notes.adapters.clip_sql import CLIPS, NOTE_AUDIO, read_clip, record
from advanced_notes.adapters.db import Database
from advanced_notes.adapters.models import AudioClip, ClipRecord, PendingDeletion
from advanced_notes.adapters.storage import S3Storage
from advanced_notes.domain.clock import utcnow
from advanced_notes.domain.errors import (
    ClipNotReady,
    NotFound,
    ValidationFailed,
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
        webhooks: the outbound webhook outbox (``clip.deleted``); None sends none.

    Every method takes the authenticated ``owner_id``; a clip of another owner is
    reported exactly like a missing one (:class:`NotFound`).
    """

    def __init__(
        self, db: Database, storage: S3Storage, deletions: DeletionQueue, webhooks: WebhookOutbox | None = None
    ):
        self.db = db
        self.storage = storage
        self.deletions = deletions
        self.webhooks = webhooks

    # -- read ---------------------------------------------------------------------

    def get(self, owner_id: str, clip_id: uuid.UUID) -> ClipRecord:
        """One clip of ``owner_id`` (one SELECT). Raises NotFound (also for another owner's clip)."""
        clip = read_clip(self.db, clip_id, owner_id)
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
        clips = CLIPS.c
        query = select(CLIPS).where(clips.owner_id == owner_id)
        if note_id is not None:
            query = query.where(clips.note_id == note_id)
        if status is not None:
            query = query.where(clips.status == status)
        if cursor is not None:
            try:
                created_at, last_id = decode_cursor(cursor)
            except ValueError:
                raise ValidationFailed("The request failed validation.", {"cursor": ["Invalid cursor."]}) from None
            query = query.where(tuple_(clips.created_at, clips.id) < tuple_(created_at, last_id))
        query = query.order_by(clips.created_at.desc(), clips.id.desc()).limit(limit + 1)
        with self.db.statement() as conn:
            rows = [ClipRecord.from_row(row) for row in conn.execute(query)]
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
            raise ClipNotReady(f"The clip is {clip.status}; only ready clips can be played.", {"status": clip.status})
        return self._playback(clip, rendition)

    def note_audio(self, owner_id: str, note_id: str, rendition: str = ORIGINAL) -> Playback:
        """The note's primary clip (most recent ``ready`` by ``created_at``) with a playback URL.

        Args:
            rendition: as for :meth:`playback`.
        Raises:
            NotFound: the note has no ready clip of this owner. RenditionNotReady.
        """
        with self.db.statement() as conn:
            clip = record(conn.execute(NOTE_AUDIO, {"owner_id": owner_id, "note_id": note_id}).first())
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
            raise ClipNotReady(f"The clip is {clip.status}; only ready clips have peaks.", {"status": clip.status})
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
        statement = (
            update(CLIPS)
            .where(CLIPS.c.id == clip_id, CLIPS.c.owner_id == owner_id)
            .values(note_id=note_id, updated_at=utcnow())
            .returning(*CLIPS.c)
        )
        with self.db.statement(write=True) as conn:
            clip = record(conn.execute(statement).first())
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
            # new URL then stored an object no row and no deletion knew (issue 13 item 7).
            gone = self._delete_rows(session, (AudioClip.id == clip_id) & (AudioClip.owner_id == owner_id))
            if not gone:
                raise NotFound("No such audio clip.")
            records = self._enqueue_deletions(session, gone[0])
            self._deleted_event(session, gone[0])
        self.deletions.attempt(records)

    def delete_note_audio(self, owner_id: str, note_id: str) -> int:
        """Delete every clip of the owner's note (any status) and their objects; returns how many."""
        deleted, records = 0, []
        while True:
            with self.db.transaction() as session:
                ids = list(
                    session.scalars(
                        select(AudioClip.id)
                        .where(AudioClip.owner_id == owner_id, AudioClip.note_id == note_id)
                        .limit(_NOTE_DELETE_BATCH)
                    )
                )
                gone = self._delete_rows(session, AudioClip.id.in_(ids)) if ids else []
                for row in gone:
                    records += self._enqueue_deletions(session, row)
                    self._deleted_event(session, row)
            deleted += len(gone)
            if len(ids) < _NOTE_DELETE_BATCH:
                break
        self.deletions.attempt(records)
        return deleted

    @staticmethod
    def _enqueue_deletions(session: Session, clip: Any) -> builtins.list[PendingDeletion]:
        """The original's deletion and, once its processing was queued, every derived object's
        (a worker may be writing them now: it records their deletion itself when it finds
        the clip gone)."""
        records = [DeletionQueue.enqueue(session, clip, "deleted")]
        if clip.processing_status is not None:
            records += DeletionQueue.enqueue_keys(session, clip.id, derived_keys(clip.storage_key), "deleted")
        return records

    def _deleted_event(self, session: Session, clip: Any) -> None:
        # In the deleting transaction: the event exists exactly when the deletion does.
        if self.webhooks is not None:
            self.webhooks.enqueue(session, "clip.deleted", clip, updated_at=utcnow())

    @staticmethod
    def _delete_rows(session: Session, condition: Any) -> builtins.list[Any]:
        """``DELETE FROM audio_clips WHERE condition RETURNING *`` (every column, for ``clip.deleted``).

        Returns the deleted rows as they were when deleted (the row lock of the DELETE
        makes a concurrent expiry update either land before, and show here, or find no row).
        """
        statement = (
            delete(AudioClip)
            .where(condition)
            .returning(*AudioClip.__table__.columns)
            .execution_options(synchronize_session=False)
        )
        return list(session.execute(statement).all())

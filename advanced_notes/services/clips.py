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

from sqlalchemy import delete, select, tuple_, update
from sqlalchemy.orm import Session

from advanced_notes.adapters.db import Database
from advanced_notes.adapters.models import AudioClip, PendingDeletion
from advanced_notes.adapters.storage import S3Storage
from advanced_notes.domain.clock import utcnow
from advanced_notes.domain.errors import (
    ClipNotReady,
    NotFound,
    ValidationFailed,
)
from advanced_notes.domain.mime import extension_for
from advanced_notes.domain.pagination import decode_cursor, encode_cursor
from advanced_notes.services.deletions import DeletionQueue
from advanced_notes.services.lifecycle import READY

log = logging.getLogger(__name__)

#: Clips deleted per transaction by DELETE /api/notes/<id>/audio.
_NOTE_DELETE_BATCH = 200


@dataclass(frozen=True)
class ClipPage:
    """One page of a listing; ``next_cursor`` is None on the last page."""

    clips: list[AudioClip]
    next_cursor: str | None


@dataclass(frozen=True)
class Playback:
    """A clip and a presigned GET for it (``expires_at`` aware UTC)."""

    clip: AudioClip
    url: str
    expires_at: dt.datetime


class ClipService:
    """Get, list, play back, attach and delete an owner's audio clips.

    Args:
        db: the database (metadata only).
        storage: the S3 adapter (the bytes).
        deletions: the deletion outbox.

    Every method takes the authenticated ``owner_id``; a clip of another owner is
    reported exactly like a missing one (:class:`NotFound`).
    """

    def __init__(self, db: Database, storage: S3Storage, deletions: DeletionQueue):
        self.db = db
        self.storage = storage
        self.deletions = deletions

    # -- read ---------------------------------------------------------------------

    def get(self, owner_id: str, clip_id: uuid.UUID) -> AudioClip:
        """One clip of ``owner_id``. Raises NotFound (also for another owner's clip)."""
        with self.db.read() as session:
            clip = session.scalar(select(AudioClip).where(AudioClip.id == clip_id, AudioClip.owner_id == owner_id))
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
        query = select(AudioClip).where(AudioClip.owner_id == owner_id)
        if note_id is not None:
            query = query.where(AudioClip.note_id == note_id)
        if status is not None:
            query = query.where(AudioClip.status == status)
        if cursor is not None:
            try:
                created_at, last_id = decode_cursor(cursor)
            except ValueError:
                raise ValidationFailed("The request failed validation.", {"cursor": ["Invalid cursor."]}) from None
            query = query.where(tuple_(AudioClip.created_at, AudioClip.id) < tuple_(created_at, last_id))
        query = query.order_by(AudioClip.created_at.desc(), AudioClip.id.desc()).limit(limit + 1)
        with self.db.read() as session:
            rows = list(session.scalars(query))
        if len(rows) <= limit:
            return ClipPage(rows, None)
        last = rows[limit - 1]
        return ClipPage(rows[:limit], encode_cursor(last.created_at, last.id))

    # -- playback -----------------------------------------------------------------

    def playback(self, owner_id: str, clip_id: uuid.UUID) -> Playback:
        """A presigned GET for a ``ready`` clip.

        Raises:
            NotFound, ClipNotReady (any other status).
        """
        clip = self.get(owner_id, clip_id)
        if clip.status != READY:
            raise ClipNotReady(f"The clip is {clip.status}; only ready clips can be played.", {"status": clip.status})
        return self._playback(clip)

    def note_audio(self, owner_id: str, note_id: str) -> Playback:
        """The note's primary clip (most recent ``ready`` by ``created_at``) with a playback URL.

        Raises:
            NotFound: the note has no ready clip of this owner.
        """
        query = (
            select(AudioClip)
            .where(AudioClip.owner_id == owner_id, AudioClip.note_id == note_id, AudioClip.status == READY)
            .order_by(AudioClip.created_at.desc(), AudioClip.id.desc())
            .limit(1)
        )
        with self.db.read() as session:
            clip = session.scalar(query)
        if clip is None:
            raise NotFound("The note has no ready audio clip.")
        return self._playback(clip)

    def _playback(self, clip: AudioClip) -> Playback:
        filename = f"{clip.id}.{extension_for(clip.mime_type)}"
        signed = self.storage.presign_get(clip.storage_key, clip.mime_type, filename)
        return Playback(clip, signed.url, signed.expires_at)

    # -- attach, delete -----------------------------------------------------------

    def set_note(self, owner_id: str, clip_id: uuid.UUID, note_id: str | None) -> AudioClip:
        """Attach the clip to ``note_id``, or detach it with None. Raises NotFound."""
        with self.db.transaction() as session:
            changed = session.scalar(
                update(AudioClip)
                .where(AudioClip.id == clip_id, AudioClip.owner_id == owner_id)
                .values(note_id=note_id, updated_at=utcnow())
                .returning(AudioClip.id)
                .execution_options(synchronize_session=False)
            )
        if changed is None:
            raise NotFound("No such audio clip.")
        return self.get(owner_id, clip_id)

    def delete(self, owner_id: str, clip_id: uuid.UUID) -> None:
        """Delete the clip's row and its object (now, or later by the sweeper if the store fails).

        Raises:
            NotFound.
        """
        with self.db.transaction() as session:
            clip = session.scalar(select(AudioClip).where(AudioClip.id == clip_id, AudioClip.owner_id == owner_id))
            if clip is None or not self._delete_row(session, clip):
                raise NotFound("No such audio clip.")
            record = DeletionQueue.enqueue(session, clip, "deleted")
        self.deletions.attempt([record])

    def delete_note_audio(self, owner_id: str, note_id: str) -> int:
        """Delete every clip of the owner's note (any status) and their objects; returns how many."""
        deleted, records = 0, []
        while True:
            with self.db.transaction() as session:
                clips = list(
                    session.scalars(
                        select(AudioClip)
                        .where(AudioClip.owner_id == owner_id, AudioClip.note_id == note_id)
                        .limit(_NOTE_DELETE_BATCH)
                    )
                )
                batch = [DeletionQueue.enqueue(session, c, "deleted") for c in clips if self._delete_row(session, c)]
            deleted += len(batch)
            records += batch
            if len(clips) < _NOTE_DELETE_BATCH:
                break
        self.deletions.attempt(records)
        return deleted

    @staticmethod
    def _delete_row(session: Session, clip: AudioClip) -> bool:
        statement = delete(AudioClip).where(AudioClip.id == clip.id).returning(AudioClip.id)
        return session.scalar(statement.execution_options(synchronize_session=False)) is not None

    def pending_deletions(self, clip_id: uuid.UUID) -> builtins.list[PendingDeletion]:
        """The outbox records of a clip (for operators and tests)."""
        with self.db.read() as session:
            return list(session.scalars(select(PendingDeletion).where(PendingDeletion.clip_id == clip_id)))

"""The audio-clip lifecycle: upload sessions, verification, playback, notes, deletion.

State transitions are compare-and-set (``UPDATE ... WHERE status = 'pending'``), so
repeated or concurrent calls are safe: exactly one caller makes a transition and every
caller sees the same final state (DESIGN §3). Object deletions go through the
:class:`~advanced_notes.services.deletions.DeletionQueue` outbox.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from advanced_notes.adapters.db import Database
from advanced_notes.adapters.models import AudioClip, ClipStatus, PendingDeletion
from advanced_notes.adapters.storage import PresignedRequest, S3Storage
from advanced_notes.domain.clock import utcnow
from advanced_notes.domain.errors import (
    ClipNotReady,
    Conflict,
    NotFound,
    QuotaExceeded,
    UploadMissing,
    UploadRejected,
    ValidationFailed,
)
from advanced_notes.domain.keys import build_object_key
from advanced_notes.domain.mime import extension_for
from advanced_notes.domain.pagination import decode_cursor, encode_cursor
from advanced_notes.services.deletions import DeletionQueue
from advanced_notes.services.verification import check_declaration, verify_audio
from advanced_notes.settings import Settings

log = logging.getLogger(__name__)

PENDING, READY, REJECTED = ClipStatus.PENDING.value, ClipStatus.READY.value, ClipStatus.REJECTED.value
#: Declared fields an idempotent repeat must match (note_id may change later by PATCH).
_IMMUTABLE_DECLARATION = ("mime_type", "bytes", "duration_ms", "checksum_sha256")
#: Clips deleted per transaction by DELETE /api/notes/<id>/audio.
_NOTE_DELETE_BATCH = 200


@dataclass(frozen=True)
class UploadSession:
    """A clip and the presigned PUT that fills it.

    ``upload`` is None when an idempotent repeat finds the clip no longer pending (a
    fresh PUT URL would let a verified object be overwritten). ``replayed`` is True
    for such repeats.
    """

    clip: AudioClip
    upload: PresignedRequest | None
    replayed: bool = False


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


def cas_transition(session: Session, clip_id: uuid.UUID, to: str, **values: Any) -> bool:
    """Compare-and-set ``pending -> to`` in ``session``; True when this call made the transition.

    The ``WHERE status = 'pending'`` makes concurrent or repeated calls safe: one wins.
    """
    statement = (
        update(AudioClip)
        .where(AudioClip.id == clip_id, AudioClip.status == PENDING)
        .values(status=to, updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    return session.execute(statement).rowcount == 1


def _ready_or_conflict(clip: AudioClip) -> AudioClip:
    """What complete answers for a clip that is no longer pending: itself when ready."""
    if clip.status == READY:
        return clip
    raise Conflict(f"The clip is {clip.status} and cannot be completed.", {"status": clip.status})


class ClipService:
    """Create, verify, list, play back, re-sign, attach and delete audio clips.

    Args:
        db: the database (metadata only).
        storage: the S3 adapter (the bytes).
        settings: key prefix and limits.

    Every method takes the authenticated ``owner_id``; a clip of another owner is
    reported exactly like a missing one (:class:`NotFound`).
    """

    def __init__(self, db: Database, storage: S3Storage, settings: Settings):
        self.db = db
        self.storage = storage
        self.deletions = DeletionQueue(db, storage)
        self.key_prefix = settings.key_prefix
        self.max_duration_ms = settings.max_duration_ms
        self.audio_probe_max_bytes = settings.audio_probe_max_bytes
        self.max_pending_uploads = settings.max_pending_uploads_per_owner
        self.owner_quota_bytes = settings.owner_quota_bytes

    # -- create -------------------------------------------------------------------

    def create(
        self,
        owner_id: str,
        *,
        mime_type: str,
        bytes: int,
        duration_ms: int | None = None,
        note_id: str | None = None,
        checksum_sha256: str | None = None,
        idempotency_key: str | None = None,
    ) -> UploadSession:
        """Reserve a clip (``pending``) and presign the PUT for its bytes.

        Args:
            owner_id: the token's ``sub``.
            mime_type: an allowed audio MIME type, lower-case (signed as Content-Type).
            bytes: declared size in bytes (signed as Content-Length).
            duration_ms: declared duration, ms.
            note_id: optional note to attach to.
            checksum_sha256: optional base64 SHA-256 (signed as x-amz-checksum-sha256).
            idempotency_key: the request's Idempotency-Key: a repeat by the same owner
                returns the same clip (with a freshly signed upload while pending).
        Returns:
            the clip and its presigned PUT.
        Raises:
            Conflict: the idempotency key was used with another declaration.
            QuotaExceeded: the owner has ``MAX_PENDING_UPLOADS_PER_OWNER`` pending clips, or
                pending + ready bytes would pass ``OWNER_QUOTA_BYTES``. Counted here, at
                presign time, so minting URLs cannot fill the bucket.
        """
        declared = {
            "mime_type": mime_type,
            "bytes": bytes,
            "duration_ms": duration_ms,
            "checksum_sha256": checksum_sha256,
        }
        if idempotency_key is not None:
            existing = self._by_idempotency_key(owner_id, idempotency_key)
            if existing is not None:
                return self._replay(existing, declared)
        clip_id = uuid.uuid4()
        now = utcnow()
        clip = AudioClip(
            id=clip_id,
            owner_id=owner_id,
            note_id=note_id,
            status=PENDING,
            storage_key=build_object_key(self.key_prefix, clip_id, mime_type),
            idempotency_key=idempotency_key,
            created_at=now,
            updated_at=now,
            **declared,
        )
        # Sign first: a failed signature (e.g. no credentials) then leaves no orphan row.
        upload = self._presign_put(clip)
        clip.upload_expires_at = upload.expires_at
        quotas = bool(self.max_pending_uploads or self.owner_quota_bytes)
        try:
            # The per-owner lock makes count-then-insert exact under concurrent creates.
            with self.db.transaction(lock_key=f"quota:{owner_id}" if quotas else None) as session:
                if quotas:
                    self._check_quotas(session, owner_id, bytes)
                session.add(clip)
        except IntegrityError:
            # A concurrent repeat with the same key inserted first: answer with its clip.
            existing = self._by_idempotency_key(owner_id, idempotency_key) if idempotency_key else None
            if existing is None:
                raise
            return self._replay(existing, declared)
        return UploadSession(clip, upload)

    def _check_quotas(self, session: Session, owner_id: str, new_bytes: int) -> None:
        owned = AudioClip.owner_id == owner_id
        if self.max_pending_uploads:
            pending = session.scalar(select(func.count()).where(owned, AudioClip.status == PENDING)) or 0
            if pending >= self.max_pending_uploads:
                raise QuotaExceeded(
                    f"You have {pending} pending uploads; complete or delete some first.",
                    {"quota": "pending_uploads", "limit": self.max_pending_uploads, "current": pending},
                )
        if self.owner_quota_bytes:
            # int(): PostgreSQL sums bigint as numeric (a Decimal).
            used = int(
                session.scalar(
                    select(func.coalesce(func.sum(AudioClip.bytes), 0)).where(
                        owned, AudioClip.status.in_([PENDING, READY])
                    )
                )
                or 0
            )
            if used + new_bytes > self.owner_quota_bytes:
                raise QuotaExceeded(
                    f"This upload would use {used + new_bytes} bytes of your {self.owner_quota_bytes}-byte quota.",
                    {"quota": "owner_bytes", "limit": self.owner_quota_bytes, "current": used, "requested": new_bytes},
                )

    def _by_idempotency_key(self, owner_id: str, key: str) -> AudioClip | None:
        with self.db.read() as session:
            return session.scalar(
                select(AudioClip).where(AudioClip.owner_id == owner_id, AudioClip.idempotency_key == key)
            )

    def _replay(self, clip: AudioClip, declared: dict[str, Any]) -> UploadSession:
        different = sorted(k for k in _IMMUTABLE_DECLARATION if getattr(clip, k) != declared[k])
        if different:
            raise Conflict(
                "This Idempotency-Key was used for a different request.",
                {"idempotency_key": ["Reused with other values of: " + ", ".join(different) + "."]},
            )
        if clip.status == PENDING:
            upload = self._presign_put(clip)
            if self._record_upload_expiry(clip, upload):
                return UploadSession(clip, upload, replayed=True)
            clip = self.get(clip.owner_id, clip.id)  # completed meanwhile: no URL onto a verified object
        return UploadSession(clip, None, replayed=True)

    def _presign_put(self, clip: AudioClip) -> PresignedRequest:
        return self.storage.presign_put(clip.storage_key, clip.mime_type, clip.bytes, clip.checksum_sha256)

    def _record_upload_expiry(self, clip: AudioClip, upload: PresignedRequest) -> bool:
        expires_at = max(upload.expires_at, clip.upload_expires_at or upload.expires_at)
        with self.db.transaction() as session:
            won = (
                session.execute(
                    update(AudioClip)
                    .where(AudioClip.id == clip.id, AudioClip.status == PENDING)
                    .values(upload_expires_at=expires_at, updated_at=utcnow())
                    .execution_options(synchronize_session=False)
                ).rowcount
                == 1
            )
        clip.upload_expires_at = expires_at
        return won

    def refresh_upload(self, owner_id: str, clip_id: uuid.UUID) -> UploadSession:
        """A freshly signed PUT URL for a ``pending`` clip (the previous one expired).

        Raises:
            NotFound; Conflict when the clip is no longer pending.
        """
        clip = self.get(owner_id, clip_id)
        if clip.status == PENDING:
            upload = self._presign_put(clip)
            if self._record_upload_expiry(clip, upload):
                return UploadSession(clip, upload)
            clip = self.get(owner_id, clip_id)
        raise Conflict(f"The clip is {clip.status}; only pending clips take uploads.", {"status": clip.status})

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

    # -- complete -----------------------------------------------------------------

    def complete(self, owner_id: str, clip_id: uuid.UUID) -> AudioClip:
        """Verify the uploaded object and mark the clip ``ready`` (idempotent).

        HEAD decides presence, size, content type and checksum; a ranged GET of the
        first bytes decides whether it is audio of a container that fits the declared
        type; parsing through ranged GETs measures its duration. No object ->
        UploadMissing (clip stays pending). Anything wrong -> UploadRejected (clip
        ``rejected``, object deleted through the outbox). A ``ready`` clip is returned
        as it is.

        Raises:
            NotFound, UploadMissing, UploadRejected, Conflict (rejected/expired clip),
            StorageUnavailable (nothing changed).
        """
        clip = self.get(owner_id, clip_id)
        if clip.status != PENDING:
            return _ready_or_conflict(clip)
        info = self.storage.head(clip.storage_key, with_checksum=bool(clip.checksum_sha256))
        if info is None:
            raise UploadMissing(
                "No object has been uploaded for this clip yet; PUT it, then complete.",
                {"storage_key": clip.storage_key},
            )
        rejection = check_declaration(clip, info)
        measured_ms = None
        if rejection is None:
            try:
                measured_ms = verify_audio(
                    self.storage,
                    clip,
                    info.size,
                    max_duration_ms=self.max_duration_ms,
                    max_read_bytes=self.audio_probe_max_bytes,
                ).measured_duration_ms
            except UploadRejected as exc:
                rejection = exc
        if rejection is not None:
            self._reject(clip, rejection, etag=info.etag, stored_bytes=info.size)
            return self._after_lost_race(owner_id, clip_id)
        with self.db.transaction() as session:
            won = cas_transition(
                session,
                clip.id,
                READY,
                etag=info.etag,
                stored_bytes=info.size,
                measured_duration_ms=measured_ms,
                completed_at=utcnow(),
            )
        if won:
            return self.get(owner_id, clip_id)
        return self._after_lost_race(owner_id, clip_id)

    def _reject(self, clip: AudioClip, rejection: UploadRejected, **values: Any) -> None:
        """Mark ``clip`` rejected and queue its object's deletion; raises ``rejection`` if we did."""
        with self.db.transaction() as session:
            won = cas_transition(session, clip.id, REJECTED, **values)
            record = DeletionQueue.enqueue(session, clip, "rejected") if won else None
        if record is not None:
            self.deletions.attempt([record])
            raise rejection

    def _after_lost_race(self, owner_id: str, clip_id: uuid.UUID) -> AudioClip:
        # Another complete made the transition between our read and our update.
        return _ready_or_conflict(self.get(owner_id, clip_id))

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
            changed = session.execute(
                update(AudioClip)
                .where(AudioClip.id == clip_id, AudioClip.owner_id == owner_id)
                .values(note_id=note_id, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            ).rowcount
        if not changed:
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
        return (
            session.execute(
                delete(AudioClip).where(AudioClip.id == clip.id).execution_options(synchronize_session=False)
            ).rowcount
            == 1
        )

    def pending_deletions(self, clip_id: uuid.UUID) -> list[PendingDeletion]:
        """The outbox records of a clip (for operators and tests)."""
        with self.db.read() as session:
            return list(session.scalars(select(PendingDeletion).where(PendingDeletion.clip_id == clip_id)))

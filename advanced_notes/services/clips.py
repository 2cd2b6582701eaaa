"""The audio-clip lifecycle: create an upload session, verify and complete, play back.

State transitions are compare-and-set (``UPDATE ... WHERE status = 'pending'``), so
repeated or concurrent calls are safe: exactly one caller makes a transition and every
caller sees the same final state (DESIGN §3).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, tuple_, update
from sqlalchemy.orm import Session

from ..config import Settings
from ..db import Database, utcnow
from ..errors import ClipNotReady, Conflict, NotFound, UploadMissing, UploadRejected, ValidationFailed
from ..keys import build_object_key
from ..mime import extension_for, normalize_mime_type
from ..models import AudioClip, ClipStatus
from ..pagination import decode_cursor, encode_cursor
from ..storage import ObjectInfo, PresignedRequest, S3Storage

log = logging.getLogger(__name__)

PENDING, READY, REJECTED = ClipStatus.PENDING.value, ClipStatus.READY.value, ClipStatus.REJECTED.value


@dataclass(frozen=True)
class UploadSession:
    """A pending clip and the presigned PUT that fills it."""

    clip: AudioClip
    upload: PresignedRequest


@dataclass(frozen=True)
class ClipPage:
    """One page of a listing; ``next_cursor`` is None on the last page."""

    clips: list[AudioClip]
    next_cursor: str | None


@dataclass(frozen=True)
class Playback:
    """A clip and a presigned GET for it."""

    clip: AudioClip
    url: str
    expires_at: Any


def _rejection(clip: AudioClip, info: ObjectInfo) -> UploadRejected | None:
    """Why the stored object does not match the declaration, or None when it does."""
    if info.size != clip.bytes:
        return UploadRejected("size_mismatch", f"The object has {info.size} bytes; {clip.bytes} were declared.",
                              expected_bytes=clip.bytes, stored_bytes=info.size)
    stored_type = normalize_mime_type(info.content_type or "")
    if stored_type != clip.mime_type:
        return UploadRejected("type_mismatch", f"The object was stored as {stored_type or 'no type'!r}; "
                              f"{clip.mime_type!r} was declared.",
                              expected_type=clip.mime_type, stored_type=stored_type or None)
    # Multipart uploads report a checksum of checksums ("...-N"): not comparable, skip.
    if clip.checksum_sha256 and info.checksum_sha256 and "-" not in info.checksum_sha256 \
            and info.checksum_sha256 != clip.checksum_sha256:
        return UploadRejected("checksum_mismatch", "The object's SHA-256 differs from the declared one.")
    return None


class ClipService:
    """Create, verify, list and play back audio clips.

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
        self.key_prefix = settings.key_prefix

    # -- create -------------------------------------------------------------------

    def create(self, owner_id: str, *, mime_type: str, bytes: int, duration_ms: int | None = None,
               note_id: str | None = None, checksum_sha256: str | None = None) -> UploadSession:
        """Reserve a clip (``pending``) and presign the PUT for its bytes.

        Args:
            owner_id: the token's ``sub``.
            mime_type: an allowed audio MIME type, lower-case (signed as Content-Type).
            bytes: declared size in bytes (signed as Content-Length).
            duration_ms: declared duration, ms.
            note_id: optional note to attach to.
            checksum_sha256: optional base64 SHA-256 (signed as x-amz-checksum-sha256).
        Returns:
            the clip and its presigned PUT.
        """
        clip_id = uuid.uuid4()
        now = utcnow()
        clip = AudioClip(
            id=clip_id, owner_id=owner_id, note_id=note_id, status=PENDING, mime_type=mime_type,
            bytes=bytes, duration_ms=duration_ms, checksum_sha256=checksum_sha256,
            storage_key=build_object_key(self.key_prefix, clip_id, mime_type),
            created_at=now, updated_at=now,
        )
        # Sign first: a failed signature (e.g. no credentials) then leaves no orphan row.
        upload = self._presign_put(clip)
        with self.db.transaction() as session:
            session.add(clip)
        return UploadSession(clip, upload)

    def _presign_put(self, clip: AudioClip) -> PresignedRequest:
        return self.storage.presign_put(clip.storage_key, clip.mime_type, clip.bytes, clip.checksum_sha256)

    # -- read ---------------------------------------------------------------------

    def get(self, owner_id: str, clip_id: uuid.UUID) -> AudioClip:
        """One clip of ``owner_id``. Raises NotFound (also for another owner's clip)."""
        with self.db.read() as session:
            return self._get(session, owner_id, clip_id)

    @staticmethod
    def _get(session: Session, owner_id: str, clip_id: uuid.UUID) -> AudioClip:
        clip = session.scalar(select(AudioClip).where(AudioClip.id == clip_id, AudioClip.owner_id == owner_id))
        if clip is None:
            raise NotFound("No such audio clip.")
        return clip

    def list(self, owner_id: str, *, note_id: str | None = None, status: str | None = None,
             limit: int = 20, cursor: str | None = None) -> ClipPage:
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

        HEAD decides: no object -> UploadMissing (clip stays pending, client may PUT
        again); size, content type or checksum differ from the declaration ->
        UploadRejected (clip ``rejected``, object deleted). A ``ready`` clip is returned
        as it is.

        Raises:
            NotFound, UploadMissing, UploadRejected, Conflict (rejected/expired clip),
            StorageUnavailable (nothing changed).
        """
        clip = self.get(owner_id, clip_id)
        if clip.status == READY:
            return clip
        if clip.status != PENDING:
            raise Conflict(f"The clip is {clip.status} and cannot be completed.", {"status": clip.status})
        info = self.storage.head(clip.storage_key, with_checksum=bool(clip.checksum_sha256))
        if info is None:
            raise UploadMissing("No object has been uploaded for this clip yet; PUT it, then complete.",
                                {"storage_key": clip.storage_key})
        rejection = _rejection(clip, info)
        if rejection is not None:
            if self._transition(clip.id, REJECTED, etag=info.etag, stored_bytes=info.size):
                self._delete_rejected_object(clip)
                raise rejection
            return self._after_lost_race(owner_id, clip_id)
        if self._transition(clip.id, READY, etag=info.etag, stored_bytes=info.size, completed_at=utcnow()):
            return self.get(owner_id, clip_id)
        return self._after_lost_race(owner_id, clip_id)

    def _after_lost_race(self, owner_id: str, clip_id: uuid.UUID) -> AudioClip:
        # Another complete made the transition between our read and our update.
        clip = self.get(owner_id, clip_id)
        if clip.status == READY:
            return clip
        raise Conflict(f"The clip is {clip.status} and cannot be completed.", {"status": clip.status})

    def _transition(self, clip_id: uuid.UUID, to: str, **values: Any) -> bool:
        """Compare-and-set ``pending -> to``; True when this call made the transition."""
        statement = (
            update(AudioClip)
            .where(AudioClip.id == clip_id, AudioClip.status == PENDING)
            .values(status=to, updated_at=utcnow(), **values)
            .execution_options(synchronize_session=False)
        )
        with self.db.transaction() as session:
            return session.execute(statement).rowcount == 1

    def _delete_rejected_object(self, clip: AudioClip) -> None:
        # A rejected object must not stay in the bucket. If the store fails here the
        # key is still derivable from the rejected row, and the sweeper's reconcile
        # removes objects of rejected clips.
        try:
            self.storage.delete(clip.storage_key)
        except Exception:  # noqa: BLE001 - the rejection itself must still be reported
            log.warning("could not delete rejected object %s", clip.storage_key, exc_info=True)

    # -- playback -----------------------------------------------------------------

    def playback(self, owner_id: str, clip_id: uuid.UUID) -> Playback:
        """A presigned GET for a ``ready`` clip.

        Raises:
            NotFound, ClipNotReady (any other status).
        """
        clip = self.get(owner_id, clip_id)
        if clip.status != READY:
            raise ClipNotReady(f"The clip is {clip.status}; only ready clips can be played.",
                               {"status": clip.status})
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

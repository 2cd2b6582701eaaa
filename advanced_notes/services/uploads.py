"""The upload flow: upload sessions (create, idempotent repeats, fresh PUT URLs) and complete.

Quotas are counted at presign time, so minting URLs cannot fill the bucket. Completion
is :class:`~advanced_notes.services.completion.ClipCompleter`'s, shared with every other
path that finishes uploads.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from advanced_notes.adapters.db import Database
from advanced_notes.adapters.models import AudioClip
from advanced_notes.adapters.storage import PresignedRequest, S3Storage
from advanced_notes.domain.clock import utcnow
from advanced_notes.domain.errors import Conflict, QuotaExceeded
from advanced_notes.domain.keys import build_object_key
from advanced_notes.services.clips import ClipService
from advanced_notes.services.completion import ClipCompleter
from advanced_notes.services.deletions import latest_upload_expiry
from advanced_notes.services.lifecycle import PENDING, READY, later_expiry, update_if_pending
from advanced_notes.settings import Settings

#: Declared fields an idempotent repeat must match (note_id may change later by PATCH).
_IMMUTABLE_DECLARATION = ("mime_type", "bytes", "duration_ms", "checksum_sha256")


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


class UploadService:
    """Create upload sessions, re-sign their PUT URLs, and complete them.

    Args:
        db: the database; storage: the S3 adapter; clips: reads of the owner's clips;
        completer: the shared verification and transition; settings: key prefix, quotas.

    Every method takes the authenticated ``owner_id``; a clip of another owner is
    reported exactly like a missing one (NotFound).
    """

    def __init__(
        self, db: Database, storage: S3Storage, clips: ClipService, completer: ClipCompleter, settings: Settings
    ):
        self.db = db
        self.storage = storage
        self.clips = clips
        self.completer = completer
        self.key_prefix = settings.key_prefix
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
            clip = self.clips.get(clip.owner_id, clip.id)  # completed meanwhile: no URL onto a verified object
        return UploadSession(clip, None, replayed=True)

    def _presign_put(self, clip: AudioClip) -> PresignedRequest:
        return self.storage.presign_put(clip.storage_key, clip.mime_type, clip.bytes, clip.checksum_sha256)

    def _record_upload_expiry(self, clip: AudioClip, upload: PresignedRequest) -> bool:
        # The later of the stored expiry and this URL's, computed by the database: a
        # Python max() over an earlier read could move it backwards under a concurrent
        # refresh (issue 13 item 7).
        with self.db.transaction() as session:
            won = bool(update_if_pending(session, clip.id, upload_expires_at=later_expiry(upload.expires_at)))
            if won:
                clip.upload_expires_at = latest_upload_expiry(session, [clip.id])[clip.id]
        return won

    def refresh_upload(self, owner_id: str, clip_id: uuid.UUID) -> UploadSession:
        """A freshly signed PUT URL for a ``pending`` clip (the previous one expired).

        Raises:
            NotFound; Conflict when the clip is no longer pending.
        """
        clip = self.clips.get(owner_id, clip_id)
        if clip.status == PENDING:
            upload = self._presign_put(clip)
            if self._record_upload_expiry(clip, upload):
                return UploadSession(clip, upload)
            clip = self.clips.get(owner_id, clip_id)
        raise Conflict(f"The clip is {clip.status}; only pending clips take uploads.", {"status": clip.status})

    def complete(self, owner_id: str, clip_id: uuid.UUID) -> AudioClip:
        """Verify the uploaded object and mark the clip ``ready`` (idempotent).

        See :meth:`ClipCompleter.finish` for the checks. Raises NotFound, UploadMissing,
        UploadRejected, Conflict (rejected/expired clip), StorageUnavailable (nothing changed).
        """
        return self.completer.finish(self.clips.get(owner_id, clip_id))

"""The upload flow: upload sessions (create, idempotent repeats, fresh PUT URLs) and complete.

Quotas are counted at presign time, so minting URLs cannot fill the bucket. Completion
is :class:`~advanced_notes.services.completion.ClipCompleter`'s, shared with every other
path that finishes uploads.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from advanced_notes.adapters import clip_sql
from advanced_notes.adapters.db import Database
from advanced_notes.adapters.models import ClipRecord
from advanced_notes.adapters.storage import PresignedRequest, S3Storage
from advanced_notes.domain.clock import utcnow
from advanced_notes.domain.errors import Conflict, QuotaExceeded, after_pending
from advanced_notes.domain.keys import build_object_key
from advanced_notes.services.clips import ClipService
from advanced_notes.services.completion import ClipCompleter
from advanced_notes.services.lifecycle import PENDING
from advanced_notes.services.multipart import MultipartService, MultipartSession, bounded_lifetime
from advanced_notes.settings import Settings

#: Declared fields an idempotent repeat must match (note_id may change later by PATCH).
_IMMUTABLE_DECLARATION = ("mime_type", "bytes", "duration_ms", "checksum_sha256")


@dataclass(frozen=True)
class UploadSession:
    """A clip and the presigned PUT that fills it.

    ``upload`` is None when an idempotent repeat finds the clip no longer pending (a
    fresh PUT URL would let a verified object be overwritten). ``replayed`` is True
    for such repeats. A clip uploaded in parts has ``multipart`` instead of ``upload``.
    """

    clip: ClipRecord
    upload: PresignedRequest | None
    replayed: bool = False
    multipart: MultipartSession | None = None


class UploadService:
    """Create upload sessions, re-sign their PUT URLs, and complete them.

    Args:
        db: the database; storage: the S3 adapter; clips: reads of the owner's clips;
        completer: the shared verification and transition; multipart: uploads in parts;
        settings: key prefix, quotas, URL lifetimes.

    Every method takes the authenticated ``owner_id``; a clip of another owner is
    reported exactly like a missing one (NotFound).
    """

    def __init__(
        self,
        db: Database,
        storage: S3Storage,
        clips: ClipService,
        completer: ClipCompleter,
        multipart: MultipartService,
        settings: Settings,
    ):
        self.db = db
        self.multipart = multipart
        self.put_expires_seconds = settings.presign_put_expires_seconds
        self.max_put_url_seconds = settings.max_put_url_seconds
        self._why_max = (
            ""
            if settings.s3_conditional_writes
            else " (upload URLs are not write-once here, so one lives no longer than S3_PRESIGN_PUT_EXPIRES_SECONDS)"
        )
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
        multipart: bool | None = None,
        expires_in: int | None = None,
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
            multipart: upload in parts (docs/multipart.md); None lets the server decide
                (MULTIPART_THRESHOLD_BYTES).
            expires_in: PUT URL lifetime in seconds (default S3_PRESIGN_PUT_EXPIRES_SECONDS,
                at most :attr:`Settings.max_put_url_seconds` for a single PUT: with write-once
                off no longer than the default; for part URLs at most
                S3_PRESIGN_MAX_EXPIRES_SECONDS and the reservation).
        Returns:
            the clip and its presigned PUT, or its multipart session.
        Raises:
            Conflict: the idempotency key was used with another declaration.
            ValidationFailed: multipart with a checksum, or expires_in too long.
            StorageUnavailable: the multipart upload could not be started.
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
        plan = self.multipart.plan(bytes, multipart, checksum_sha256)
        if plan is None:
            lifetime = bounded_lifetime(expires_in, self.put_expires_seconds, self.max_put_url_seconds, self._why_max)
        else:  # part URLs are signed later; none of them can write onto an assembled object
            lifetime = bounded_lifetime(expires_in, self.put_expires_seconds, self.multipart.max_expires_seconds)
        declared["multipart"] = plan is not None
        if idempotency_key is not None:
            existing = self._by_idempotency_key(owner_id, idempotency_key)
            if existing is not None:
                return self._replay(existing, declared)
        clip_id = uuid.uuid4()
        now = utcnow()
        clip = ClipRecord(
            id=clip_id,
            owner_id=owner_id,
            note_id=note_id,
            status=PENDING,
            mime_type=mime_type,
            bytes=bytes,
            duration_ms=duration_ms,
            checksum_sha256=checksum_sha256,
            storage_key=build_object_key(self.key_prefix, clip_id, mime_type),
            idempotency_key=idempotency_key,
            created_at=now,
            updated_at=now,
        )
        # Sign (or start the multipart upload) first: a failure then leaves no orphan row.
        upload = None
        if plan is not None:
            self.multipart.start(clip, plan)
        else:
            upload = self._presign_put(clip, lifetime)
            clip.upload_expires_at = upload.expires_at
        try:
            try:
                inserted = self._insert_within_quotas(clip)
            except BaseException:
                self.multipart.discard(clip)  # no row: abort the upload we started
                raise
        except clip_sql.IdempotencyKeyTaken:
            # A concurrent repeat with the same key inserted first: answer with its clip.
            assert idempotency_key is not None  # only a clip with a key can collide on it
            existing = self._by_idempotency_key(owner_id, idempotency_key)
            if existing is None:
                raise
            return self._replay(existing, declared)
        if not inserted:
            self.multipart.discard(clip)
            raise self._quota_exceeded(owner_id, bytes)
        multipart_session = self.multipart.session(clip) if plan is not None else None
        return UploadSession(clip, upload, multipart=multipart_session)

    def _insert_within_quotas(self, clip: ClipRecord) -> bool:
        """Insert ``clip`` if its owner stays within the quotas: one statement, one round trip
        on PostgreSQL (:func:`~advanced_notes.adapters.clip_sql.create_clip`).

        Returns:
            False when a quota refused it (nothing was written).
        Raises:
            IdempotencyKeyTaken: the owner already used the clip's idempotency key.
        """
        with self.db.statement(write=True) as conn:
            return clip_sql.create_clip(
                conn=conn, clip=clip, max_pending=self.max_pending_uploads, quota_bytes=self.owner_quota_bytes
            )

    def _quota_exceeded(self, owner_id: str, new_bytes: int) -> QuotaExceeded:
        """The error of a create that a quota refused, with the owner's figures as they are now."""
        with self.db.statement() as conn:
            pending, used = clip_sql.owner_usage(conn=conn, owner_id=owner_id)
        if self.max_pending_uploads and pending >= self.max_pending_uploads:
            return QuotaExceeded(
                f"You have {pending} pending uploads; complete or delete some first.",
                {"quota": "pending_uploads", "limit": self.max_pending_uploads, "current": pending},
            )
        return QuotaExceeded(
            f"This upload would use {used + new_bytes} bytes of your {self.owner_quota_bytes}-byte quota.",
            {"quota": "owner_bytes", "limit": self.owner_quota_bytes, "current": used, "requested": new_bytes},
        )

    def _by_idempotency_key(self, owner_id: str, key: str) -> ClipRecord | None:
        with self.db.statement() as conn:
            return clip_sql.get_clip_by_idempotency_key(conn=conn, owner_id=owner_id, key=key)

    def _replay(self, clip: ClipRecord, declared: dict[str, Any]) -> UploadSession:
        different = sorted(k for k in _IMMUTABLE_DECLARATION if getattr(clip, k) != declared[k])
        if (clip.part_size is not None) != declared.get("multipart", False):
            different.append("multipart")
        if different:
            raise Conflict(
                "This Idempotency-Key was used for a different request: send a new key for a new upload, "
                "or the first request's values to repeat it.",
                {"idempotency_key": ["Reused with other values of: " + ", ".join(different) + "."]},
            )
        if clip.status == PENDING and clip.part_size is not None:
            return UploadSession(clip, None, replayed=True, multipart=self.multipart.session(clip))
        if clip.status == PENDING:
            upload = self._presign_put(clip)
            if self._record_upload_expiry(clip, upload):
                return UploadSession(clip, upload, replayed=True)
            clip = self.clips.get(clip.owner_id, clip.id)  # completed meanwhile: no URL onto a verified object
        return UploadSession(clip, None, replayed=True)

    def _presign_put(self, clip: ClipRecord, expires_seconds: int | None = None) -> PresignedRequest:
        return self.storage.presign_put(
            clip.storage_key, clip.mime_type, clip.bytes, clip.checksum_sha256, expires_seconds=expires_seconds
        )

    def _record_upload_expiry(self, clip: ClipRecord, upload: PresignedRequest) -> bool:
        # The later of the stored expiry and this URL's, computed by the database: a
        # Python max() over an earlier read could move it backwards under a concurrent refresh.
        with self.db.statement(write=True) as conn:
            stored = clip_sql.extend_upload_expiry(
                conn=conn, clip_id=clip.id, expires_at=upload.expires_at, now=utcnow()
            )
        if stored is None:
            return False
        clip.upload_expires_at = stored
        return True

    def refresh_upload(self, owner_id: str, clip_id: uuid.UUID) -> UploadSession:
        """A freshly signed PUT URL for a ``pending`` clip (the previous one expired).

        Raises:
            NotFound; Conflict when the clip is no longer pending.
        """
        clip = self.clips.get(owner_id, clip_id)
        if clip.part_size is not None:
            raise Conflict(
                "This clip is uploaded in parts: sign part URLs instead "
                f"(POST /api/audio-clips/{clip.id}/multipart/parts).",
                {"multipart": True},
            )
        if clip.status == PENDING:
            upload = self._presign_put(clip)
            if self._record_upload_expiry(clip, upload):
                return UploadSession(clip, upload)
            clip = self.clips.get(owner_id, clip_id)
        raise Conflict(
            f"The clip is {clip.status}; only pending clips take uploads. {after_pending(clip.status, clip.id)}",
            {"status": clip.status},
        )

    def complete(self, owner_id: str, clip_id: uuid.UUID) -> ClipRecord:
        """Verify the uploaded object and mark the clip ``ready`` (idempotent).

        A multipart clip's parts are assembled first (:meth:`MultipartService.assemble`:
        UploadIncomplete when parts are missing or of the wrong size). See
        :meth:`ClipCompleter.finish` for the checks. Raises NotFound, UploadMissing,
        UploadRejected, Conflict (rejected/expired clip), StorageUnavailable (nothing changed).
        """
        clip = self.clips.get(owner_id, clip_id)
        if clip.status == PENDING and clip.part_size is not None:
            self.multipart.assemble(clip)
        return self.completer.finish(clip)

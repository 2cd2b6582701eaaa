"""ORM models (DESIGN §3). Schema changes go through Alembic revisions only."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from advanced_notes.adapters.db import Base, UTCDateTime
from advanced_notes.domain.clock import utcnow


class ClipStatus(enum.StrEnum):
    """Lifecycle of a clip: pending -> ready | rejected | expired (DESIGN §3 states)."""

    PENDING = "pending"
    READY = "ready"
    REJECTED = "rejected"
    EXPIRED = "expired"


_STATUSES = ", ".join(f"'{s.value}'" for s in ClipStatus)


class AudioClip(Base):
    """The ``audio_clips`` table: the mapping Alembic's autogenerate compares with the schema.

    Statements on it are in :mod:`advanced_notes.adapters.clip_sql`, which returns
    :class:`ClipRecord`. Sizes are bytes, durations milliseconds, timestamps aware UTC;
    the bytes live in the bucket at ``storage_key``.
    """

    __tablename__ = "audio_clips"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    owner_id: Mapped[str] = mapped_column(String(255))
    note_id: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default=ClipStatus.PENDING.value)
    mime_type: Mapped[str] = mapped_column(String(64))
    bytes: Mapped[int] = mapped_column(BigInteger)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    storage_key: Mapped[str] = mapped_column(String(1024), unique=True)
    checksum_sha256: Mapped[str | None] = mapped_column(String(44))
    etag: Mapped[str | None] = mapped_column(String(255))
    stored_bytes: Mapped[int | None] = mapped_column(BigInteger)
    measured_duration_ms: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: When the latest presigned PUT URL stops working (the store's clock): until then
    #: an object can still arrive, even after the clip was rejected, expired or deleted.
    upload_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: The client's Idempotency-Key of the create request, unique per owner.
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    #: S3's UploadId while the clip is uploaded in parts (docs/multipart.md); None for a
    #: single PUT. ``part_size`` (bytes) and ``part_count`` are fixed at creation.
    multipart_upload_id: Mapped[str | None] = mapped_column(String(1024))
    part_size: Mapped[int | None] = mapped_column(BigInteger)
    part_count: Mapped[int | None] = mapped_column(Integer)
    #: While a verification of this pending clip runs: until when it holds the clip
    #: (single flight, ``services/completion.py``); None when none runs.
    verification_lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: A rejected clip's verdict: ``{"reason": ..., "message": ..., **details}``.
    rejection: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: The processing stage (docs/processing.md): None until the clip is ready, then
    #: ``queued`` | ``running`` | ``done`` | ``failed`` (:class:`ProcessingStatus`).
    processing_status: Mapped[str | None] = mapped_column(String(16))
    #: The worker's results as JSON text at done or failed (reason, measurements,
    #: renditions and their keys, skipped renditions, peaks); None before.
    processing: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("owner_id", "idempotency_key"),
        CheckConstraint(f"status IN ({_STATUSES})", name="status_valid"),
        CheckConstraint("bytes > 0", name="bytes_positive"),
        # The note's primary clip: WHERE owner_id=? AND note_id=? AND status='ready'
        # ORDER BY created_at DESC, id DESC LIMIT 1 is one backward index scan, no sort.
        Index("ix_audio_clips_owner_note_status_created", "owner_id", "note_id", "status", "created_at", "id"),
        # The caller's clips, newest first, keyset-paginated on (created_at, id).
        Index("ix_audio_clips_owner_created", "owner_id", "created_at", "id"),
        # The sweeper: status='pending' AND created_at < T.
        Index("ix_audio_clips_status_created", "status", "created_at"),
        # The sweeper's listing fallback: pending clips in id order (a partial index, as
        # small as the pending set whatever is stored; revision 0010).
        Index(
            "ix_audio_clips_pending_id",
            "id",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
    )


@dataclass(slots=True)
class ClipRecord:
    """One ``audio_clips`` row as plain data: the one clip type services pass around.

    The same attributes as :class:`AudioClip` (sizes bytes, durations ms, timestamps aware
    UTC), without an ORM session or identity map (docs/benchmarks.md has what that saves
    per request). Mutable, so a service can fill in what it learns (an upload id, a new
    expiry) before the row is written.
    """

    id: uuid.UUID
    owner_id: str
    note_id: str | None
    status: str
    mime_type: str
    bytes: int
    duration_ms: int | None
    storage_key: str
    created_at: dt.datetime
    updated_at: dt.datetime
    checksum_sha256: str | None = None
    etag: str | None = None
    stored_bytes: int | None = None
    measured_duration_ms: int | None = None
    completed_at: dt.datetime | None = None
    upload_expires_at: dt.datetime | None = None
    idempotency_key: str | None = None
    multipart_upload_id: str | None = None
    part_size: int | None = None
    part_count: int | None = None
    verification_lease_until: dt.datetime | None = None
    rejection: dict[str, Any] | None = None
    processing_status: str | None = None
    processing: str | None = None


class ProcessingStatus(enum.StrEnum):
    """Processing of a ready clip: queued -> running -> done | failed (DESIGN §3)."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ProcessingJob(Base):
    """One clip to process: the outbox of the processing stage (docs/processing.md).

    Written by a database trigger (revision 0009) in the statement that makes the clip
    ready, so a broker outage delays processing but never skips it. The relay publishes
    rows whose ``next_attempt_at`` has come and pushes it ahead (a lost message is
    published again); a worker holds the job while ``lease_until`` is in the future;
    ``next_attempt_at`` is None once the job finished (done or failed). Deleted with its
    clip (ON DELETE CASCADE).
    """

    __tablename__ = "processing_jobs"

    clip_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("audio_clips.id", ondelete="CASCADE"), primary_key=True)
    #: Runs started (claims won by a worker).
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        # The relay: WHERE next_attempt_at <= now (NULL once finished).
        Index("ix_processing_jobs_next_attempt_at", "next_attempt_at"),
    )


class OwnerUsage(Base):
    """An owner's pending uploads and the bytes of their pending + ready clips (the quotas).

    Maintained by database triggers on ``audio_clips`` (revision 0007) for every insert,
    update and delete, never by the application: the figures are the table's truth by
    construction. Create checks them and inserts the clip in one statement
    (:func:`~advanced_notes.adapters.clip_sql.create_clip`).
    """

    __tablename__ = "owner_usage"

    owner_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    pending_uploads: Mapped[int] = mapped_column(Integer)
    #: Declared bytes of the owner's pending and ready clips.
    used_bytes: Mapped[int] = mapped_column(BigInteger)


class PendingDeletion(Base):
    """An object that must be deleted from the bucket: the outbox of every deletion.

    Written in the same transaction that removes (or rejects, or expires) the clip, so
    a store outage or a crash can never forget an object. The sweeper retries with
    backoff until the delete succeeds *and* ``recheck_until`` has passed: a presigned
    PUT cannot be revoked, so an object may still arrive until the URL expires.
    """

    __tablename__ = "pending_deletions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    clip_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    storage_key: Mapped[str] = mapped_column(String(1024))
    reason: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    recheck_until: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))
    #: The clip's unfinished multipart upload, aborted before the object is deleted
    #: (its parts are billed but invisible to ListObjects).
    multipart_upload_id: Mapped[str | None] = mapped_column(String(1024))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_pending_deletions_next_attempt_at", "next_attempt_at"),
        Index("ix_pending_deletions_clip_id", "clip_id"),
    )


class WebhookDelivery(Base):
    """One event for one receiver: the outbox of outbound webhooks (docs/events.md).

    Written in the same transaction as the clip's transition (ready, rejected, expired,
    deleted), so an event is never lost nor sent for a transition that rolled back.
    ``event_id`` is the Standard Webhooks ``webhook-id``: the same on every retry, so
    receivers deduplicate on it. ``payload`` is the exact JSON body that is signed.
    Delivered rows keep ``delivered_at``; rows that kept failing past
    ``WEBHOOK_GIVE_UP_SECONDS`` keep ``given_up_at`` and stay listed.
    """

    __tablename__ = "webhook_deliveries"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    event_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(32))
    clip_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    endpoint_url: Mapped[str] = mapped_column(String(2048))
    payload: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    given_up_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("event_id", "endpoint_url"),
        # The deliverer: WHERE next_attempt_at <= now (NULL once delivered or given up).
        Index("ix_webhook_deliveries_next_attempt_at", "next_attempt_at"),
        Index("ix_webhook_deliveries_clip_id", "clip_id"),
    )

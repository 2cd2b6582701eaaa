"""The one way a pending clip becomes ``ready`` or ``rejected``: verify its object, then compare-and-set.

``complete`` (the client's call) uses it today; any other path that finishes uploads
(the sweeper, bucket events) must use it too, so no path is weaker than another
(DESIGN §3: "every path to ready runs the same verification"). Each path names itself
(``client``, ``event``, ``sweeper``) so completions are counted by path, and each won
transition records its outbound webhook in the same transaction.

Single flight: verifying an object costs ranged GETs and parsing, so one verification
runs per clip at a time, across workers, machines and paths. Before verifying, a caller
takes the clip's lease (``verification_lease_until``) by compare-and-set; a caller that
finds it held waits for the holder's verdict, re-reading the row, and answers the same
(the clip when ready, the same 422 when rejected). A lease that expired (its holder died)
is taken over; a verification that ends without a verdict (no object yet, the store
failed) gives the lease back at once, so the next caller verifies without waiting.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from advanced_notes.adapters.clip_sql import MARK_READY, RELEASE_LEASE, TAKE_LEASE, read_clip, record
from advanced_notes.adapters.db import Database
from advanced_notes.adapters.models import Clip, ClipRecord
from advanced_notes.adapters.storage import S3Storage
from advanced_notes.domain.clock import utcnow
from advanced_notes.domain.errors import (
    NotFound,
    ObjectVanished,
    UploadMissing,
    UploadRejected,
    VerificationBusy,
)
from advanced_notes.services.deletions import DeletionQueue, latest_upload_expiry
from advanced_notes.services.lifecycle import PENDING, READY, REJECTED, ready_or_conflict, update_if_pending
from advanced_notes.services.telemetry import COMPLETIONS
from advanced_notes.services.verification import check_declaration, verify_audio
from advanced_notes.services.webhooks import WebhookOutbox
from advanced_notes.settings import Settings

#: How often a caller waiting on another's verification re-reads the clip, seconds.
LEASE_POLL_SECONDS = 0.1
#: How long past the lease a waiting caller keeps waiting before it answers busy, seconds.
LEASE_MARGIN_SECONDS = 5.0


class ClipCompleter:
    """Verify a pending clip's stored object and record the verdict.

    Args:
        db: the database; storage: the S3 adapter; deletions: the deletion outbox.
        settings: ``max_duration_ms`` (longest measured duration), ``audio_probe_max_bytes``
            (the most verification reads from the store), ``audio_probe_max_reads`` and
            ``audio_probe_max_seconds`` (the most parser calls and parsing time),
            ``verification_lease_seconds`` (how long one verification holds its clip).
        webhooks: the outbound webhook outbox (default: one for ``settings.webhook_urls``).
    """

    def __init__(
        self,
        db: Database,
        storage: S3Storage,
        deletions: DeletionQueue,
        settings: Settings,
        webhooks: WebhookOutbox | None = None,
    ):
        self.db = db
        self.storage = storage
        self.deletions = deletions
        self.webhooks = webhooks or WebhookOutbox(settings)
        self.max_duration_ms = settings.max_duration_ms
        self.audio_probe_max_bytes = settings.audio_probe_max_bytes
        self.audio_probe_max_reads = settings.audio_probe_max_reads
        self.audio_probe_max_seconds = settings.audio_probe_max_seconds
        self.lease_seconds = settings.verification_lease_seconds
        #: Verifications this completer ran (HEAD and parse), for tests and benchmarks.
        self.verifications = 0

    def finish(self, clip: Clip, path: str = "client") -> Clip:
        """Verify ``clip``'s object and mark it ``ready`` (idempotent).

        HEAD decides presence, size, content type and checksum; a ranged GET of the first
        bytes decides whether it is audio of a container that fits the declared type;
        parsing through ranged GETs measures its duration. A clip that is already
        ``ready`` is returned as it is. ``path`` (``client``, ``event`` or ``sweeper``)
        names the caller for the completion counter. One verification runs per clip at a time (see the
        module's docstring): a caller that finds another verifying waits for its verdict,
        at most the lease (``VERIFICATION_LEASE_SECONDS``) plus a margin.

        Returns:
            the clip as stored after the transition (``ready``).
        Raises:
            UploadMissing: no object at the key (the clip stays pending).
            UploadRejected: the object is not what was declared (the clip becomes
                ``rejected`` and its object's deletion is recorded and attempted), also
                for a caller that waited on the verification that rejected it.
            Conflict: the clip is rejected or expired.
            NotFound: the clip was deleted meanwhile.
            StorageUnavailable: the store failed (nothing changed).
            VerificationBusy: another verification held the clip past its lease and margin.
        """
        if clip.status != PENDING:
            return ready_or_conflict(clip)
        give_up = time.monotonic() + self.lease_seconds + LEASE_MARGIN_SECONDS
        while True:
            lease = self._take_lease(clip)
            if lease is not None:
                try:
                    return self._verify(clip, path)  # a verdict clears the lease in its UPDATE
                except UploadRejected:
                    raise  # raised only by the caller whose UPDATE recorded the verdict
                except BaseException:
                    self._release_lease(clip, lease)
                    raise
            if time.monotonic() > give_up:
                raise VerificationBusy(
                    "Another verification of this clip is taking too long; retry later.",
                    details={"clip_id": str(clip.id)},
                )
            time.sleep(LEASE_POLL_SECONDS)
            current = read_clip(self.db, clip.id, clip.owner_id)
            if current is None:
                raise NotFound("No such audio clip.")
            if current.status != PENDING:
                return self._verdict(current)
            clip = current

    def _take_lease(self, clip: Clip) -> dt.datetime | None:
        """Hold ``clip`` for one verification: the lease's end if this call took it, else None."""
        now = utcnow()
        until = now + dt.timedelta(seconds=self.lease_seconds)
        with self.db.statement(write=True) as conn:
            taken = conn.execute(TAKE_LEASE, {"clip_id": clip.id, "now": now, "until": until}).rowcount
        return until if taken == 1 else None

    def _release_lease(self, clip: Clip, until: dt.datetime) -> None:
        """Give the lease back (a verdict already cleared it; then this changes nothing)."""
        with self.db.statement(write=True) as conn:
            conn.execute(RELEASE_LEASE, {"clip_id": clip.id, "until": until})

    @staticmethod
    def _verdict(clip: Clip) -> Clip:
        """What a caller that waited on another's verification answers: the same as it did."""
        rejection = getattr(clip, "rejection", None)
        if clip.status == REJECTED and rejection and rejection.get("reason"):
            details = {k: v for k, v in rejection.items() if k not in ("reason", "message")}
            raise UploadRejected(rejection["reason"], rejection.get("message") or "The upload was rejected.", **details)
        return ready_or_conflict(clip)

    def _verify(self, clip: Clip, path: str) -> Clip:
        """The verification itself, run by the holder of the clip's lease (see :meth:`finish`)."""
        self.verifications += 1
        info = self.storage.head(clip.storage_key, with_checksum=bool(clip.checksum_sha256))
        if info is None:
            raise UploadMissing(
                "No object has been uploaded for this clip yet; PUT it, then complete.",
                {"storage_key": clip.storage_key},
            )
        try:
            check_declaration(clip, info)
            verified = verify_audio(
                self.storage,
                clip,
                info.size,
                max_duration_ms=self.max_duration_ms,
                max_read_bytes=self.audio_probe_max_bytes,
                max_reads=self.audio_probe_max_reads,
                max_seconds=self.audio_probe_max_seconds,
            )
        except UploadRejected as rejection:
            self._reject(clip, rejection, path, etag=info.etag, stored_bytes=info.size)
            return self._current(clip)
        except ObjectVanished:
            # Deleted between HEAD and GET: usually a DELETE of the clip raced us. The
            # clip's state, not the store, decides the answer: 404 when it is gone (from
            # _current), the clip when another path finished it, else upload_missing.
            current = read_clip(self.db, clip.id, clip.owner_id)
            if current is None:
                raise NotFound("No such audio clip.") from None
            if current.status != PENDING:
                return ready_or_conflict(current)
            raise
        now = utcnow()
        values: dict[str, Any] = {
            "etag": info.etag,
            "stored_bytes": info.size,
            "measured_duration_ms": verified.measured_duration_ms,
            "completed_at": now,
            "updated_at": now,
        }
        ready = self._mark_ready(clip, values)
        if ready is None:  # another path finished (or deleted) it first
            return self._current(clip)
        COMPLETIONS.labels(path, READY).inc()
        return ready

    def _mark_ready(self, clip: Clip, values: dict[str, Any]) -> ClipRecord | None:
        """The compare-and-set to ``ready`` (:data:`~advanced_notes.adapters.clip_sql.MARK_READY`).

        Returns:
            the row as stored if this call won, None if the clip was no longer pending.
        With outbound webhooks the ``clip.ready`` event is recorded in the same
        transaction; without, the UPDATE runs alone (one round trip on PostgreSQL).
        """
        params = {"clip_id": clip.id, **values}
        if not self.webhooks.urls:
            with self.db.statement(write=True) as conn:
                return record(conn.execute(MARK_READY, params).first())
        with self.db.transaction() as session:
            ready = record(session.execute(MARK_READY, params).first())
            if ready is not None:
                self.webhooks.enqueue(session, "clip.ready", clip, status=READY, **values)
        return ready

    def _reject(self, clip: Clip, rejection: UploadRejected, path: str, **values: Any) -> None:
        """Mark ``clip`` rejected and queue its object's deletion; raises ``rejection`` if we did."""
        verdict = {"message": rejection.message, **(rejection.details or {})}
        values.update(status=REJECTED, updated_at=utcnow(), rejection=verdict, verification_lease_until=None)
        with self.db.transaction() as session:
            won = bool(update_if_pending(session, clip.id, **values))
            if won:  # the expiry as stored now: an upload-url may have extended it since our read
                clip.upload_expires_at = latest_upload_expiry(session, [clip.id])[clip.id]
            record = DeletionQueue.enqueue(session, clip, "rejected") if won else None
            if won:
                rejected = {"rejection": {"reason": rejection.reason, "message": rejection.message}}
                self.webhooks.enqueue(session, "clip.rejected", clip, rejected, **values)
        if record is not None:
            COMPLETIONS.labels(path, REJECTED).inc()
            self.deletions.attempt([record])
            raise rejection

    def _current(self, clip: Clip) -> Clip:
        # After losing the transition to a concurrent one: the state as stored.
        current = read_clip(self.db, clip.id, clip.owner_id)
        if current is None:
            raise NotFound("No such audio clip.")
        return ready_or_conflict(current)

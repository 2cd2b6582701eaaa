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
import functools
import time

from advanced_notes.adapters import clip_sql
from advanced_notes.adapters.db import Database
from advanced_notes.adapters.models import ClipRecord
from advanced_notes.adapters.storage import S3Storage
from advanced_notes.domain.clock import utcnow
from advanced_notes.domain.errors import (
    NotFound,
    ObjectVanished,
    UploadMissing,
    UploadRejected,
    VerificationBusy,
)
from advanced_notes.services.deletions import DeletionQueue
from advanced_notes.services.lifecycle import PENDING, READY, REJECTED, ready_or_conflict
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
        webhooks: the outbound webhook outbox.
    """

    def __init__(
        self,
        db: Database,
        storage: S3Storage,
        deletions: DeletionQueue,
        settings: Settings,
        webhooks: WebhookOutbox,
    ):
        self.db = db
        self.storage = storage
        self.deletions = deletions
        self.webhooks = webhooks
        self.max_duration_ms = settings.max_duration_ms
        self.audio_probe_max_bytes = settings.audio_probe_max_bytes
        self.audio_probe_max_reads = settings.audio_probe_max_reads
        self.audio_probe_max_seconds = settings.audio_probe_max_seconds
        self.lease_seconds = settings.verification_lease_seconds
        #: Verifications this completer ran (HEAD and parse), for tests and benchmarks.
        self.verifications = 0

    def finish(self, clip: ClipRecord, path: str = "client") -> ClipRecord:
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
        pending: ClipRecord = clip
        while True:
            lease = self._take_lease(pending)
            if lease is not None:
                try:
                    return self._verify(pending, path)  # a verdict clears the lease in its UPDATE
                except UploadRejected:
                    raise  # raised only by the caller whose UPDATE recorded the verdict
                except BaseException:
                    self._release_lease(pending, lease)
                    raise
            if time.monotonic() > give_up:
                raise VerificationBusy(
                    "Another verification of this clip is taking too long; retry later.",
                    details={"clip_id": str(clip.id)},
                )
            time.sleep(LEASE_POLL_SECONDS)
            current = self._read(pending)
            if current is None:
                raise NotFound("No such audio clip.")
            if current.status != PENDING:
                return self._verdict(current)
            pending = current

    def _take_lease(self, clip: ClipRecord) -> dt.datetime | None:
        """Hold ``clip`` for one verification: the lease's end if this call took it, else None."""
        now = utcnow()
        until = now + dt.timedelta(seconds=self.lease_seconds)
        with self.db.statement(write=True) as conn:
            taken = clip_sql.take_verification_lease(conn=conn, clip_id=clip.id, now=now, until=until)
        return until if taken else None

    def _release_lease(self, clip: ClipRecord, until: dt.datetime) -> None:
        """Give the lease back (a verdict already cleared it; then this changes nothing)."""
        with self.db.statement(write=True) as conn:
            clip_sql.release_verification_lease(conn=conn, clip_id=clip.id, until=until)

    @staticmethod
    def _verdict(clip: ClipRecord) -> ClipRecord:
        """What a caller that waited on another's verification answers: the same as it did."""
        rejection = clip.rejection
        if clip.status == REJECTED and rejection and rejection.get("reason"):
            details = {k: v for k, v in rejection.items() if k not in ("reason", "message")}
            raise UploadRejected(rejection["reason"], rejection.get("message") or "The upload was rejected.", **details)
        return ready_or_conflict(clip)

    def _verify(self, clip: ClipRecord, path: str) -> ClipRecord:
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
            current = self._read(clip)
            if current is None:
                raise NotFound("No such audio clip.") from None
            if current.status != PENDING:
                return ready_or_conflict(current)
            raise
        ready = self._mark_ready(clip, info.etag, info.size, verified.measured_duration_ms)
        if ready is None:  # another path finished (or deleted) it first
            return self._current(clip)
        COMPLETIONS.labels(path, READY).inc()
        return ready

    def _mark_ready(
        self, clip: ClipRecord, etag: str | None, stored_bytes: int, measured_duration_ms: int | None
    ) -> ClipRecord | None:
        """The compare-and-set to ``ready`` (:func:`~advanced_notes.adapters.clip_sql.mark_ready`).

        Returns:
            the row as stored if this call won, None if the clip was no longer pending.
        With outbound webhooks the ``clip.ready`` event is recorded in the same
        transaction; without, the UPDATE runs alone (one round trip on PostgreSQL).
        """
        mark_ready = functools.partial(
            clip_sql.mark_ready,
            clip_id=clip.id,
            etag=etag,
            stored_bytes=stored_bytes,
            measured_duration_ms=measured_duration_ms,
            now=utcnow(),
        )
        if not self.webhooks.urls:
            with self.db.statement(write=True) as conn:
                return mark_ready(conn=conn)
        with self.db.transaction() as session:
            ready = mark_ready(conn=session)
            if ready is not None:
                self.webhooks.enqueue(session, "clip.ready", ready)
        return ready

    def _reject(
        self, clip: ClipRecord, rejection: UploadRejected, path: str, etag: str | None, stored_bytes: int
    ) -> None:
        """Mark ``clip`` rejected and queue its object's deletion; raises ``rejection`` if we did."""
        verdict = {"message": rejection.message, **(rejection.details or {})}
        with self.db.transaction() as session:
            rejected = clip_sql.mark_rejected(
                conn=session, clip_id=clip.id, rejection=verdict, etag=etag, stored_bytes=stored_bytes, now=utcnow()
            )
            if rejected is None:
                return
            # The row as the UPDATE left it: its upload expiry is final (an upload-url may
            # have extended it since our read), and the deletion waits for that URL.
            record = DeletionQueue.enqueue(session, rejected, "rejected")
            event = {"rejection": {"reason": rejection.reason, "message": rejection.message}}
            self.webhooks.enqueue(session, "clip.rejected", rejected, event)
        COMPLETIONS.labels(path, REJECTED).inc()
        self.deletions.attempt([record])
        raise rejection

    def _read(self, clip: ClipRecord) -> ClipRecord | None:
        with self.db.statement() as conn:
            return clip_sql.get_clip(conn=conn, clip_id=clip.id, owner_id=clip.owner_id)

    def _current(self, clip: ClipRecord) -> ClipRecord:
        # After losing the transition to a concurrent one: the state as stored.
        current = self._read(clip)
        if current is None:
            raise NotFound("No such audio clip.")
        return ready_or_conflict(current)

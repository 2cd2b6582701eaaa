"""Multipart upload sessions: a clip uploaded in parts straight to the bucket (docs/multipart.md).

The server decides the part size at creation (S3's limits: parts of 5 MiB..5 GiB except
the last, at most 10,000) and derives each part's exact length from the declared size,
so every presigned part URL binds its ``Content-Length`` without trusting the client.
``complete`` asks the store which parts it holds (ListParts), so a client that lost its
ETags can still finish, assembles them (CompleteMultipartUpload), then hands the clip to
:class:`~advanced_notes.services.completion.ClipCompleter` for the same verification as a
single PUT. Unfinished uploads are aborted through the deletion outbox (delete, reject,
expire) and by the sweeper (uploads with no clip). The rules of the parts themselves
(which clip takes parts, which parts make the object) are in
:mod:`~advanced_notes.services.multipart_parts`.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from advanced_notes.adapters import clip_sql
from advanced_notes.adapters.db import Database
from advanced_notes.adapters.models import ClipRecord
from advanced_notes.adapters.storage import PresignedRequest, S3Storage, UploadedPart
from advanced_notes.domain.clock import utcnow
from advanced_notes.domain.errors import (
    Conflict,
    StorageUnavailable,
    ValidationFailed,
    after_pending,
)
from advanced_notes.domain.multipart import PartPlan, plan_parts
from advanced_notes.services.clips import ClipService
from advanced_notes.services.lifecycle import PENDING
from advanced_notes.services.multipart_parts import MAX_LISTED, assemble_stored_parts, open_plan, single_put_conflict
from advanced_notes.settings import Settings

log = logging.getLogger(__name__)

#: The most part numbers one signing request may ask for (a batch; Uppy asks one at a time).
MAX_PARTS_PER_BATCH = 1000


@dataclass(frozen=True)
class MultipartSession:
    """What a client needs to upload a clip in parts.

    Attributes:
        upload_id: S3's UploadId. part_size: bytes of every part but the last.
        part_count: number of parts. expires_at: aware UTC end of the clip's reservation
        (UPLOAD_RESERVATION_SECONDS after creation); after it the sweeper may expire the
        clip and abort the upload.
    """

    upload_id: str
    part_size: int
    part_count: int
    storage_key: str
    expires_at: dt.datetime


@dataclass(frozen=True)
class SignedPart:
    """A presigned PUT of one part: send exactly ``request.headers`` (its Content-Length)."""

    part_number: int
    request: PresignedRequest


def bounded_lifetime(requested: int | None, default: int, maximum: int, why: str = "") -> int:
    """The URL lifetime to sign, in seconds: ``requested`` (checked) or ``default``.

    Args:
        requested: the client's ``expires_in`` (None: not asked).
        default: the configured lifetime; maximum: S3_PRESIGN_MAX_EXPIRES_SECONDS bounded
            by the clip's reservation (a URL should not outlive its clip), or for a single
            PUT :attr:`Settings.max_put_url_seconds`.
        why: appended to the error message (where the maximum comes from), e.g. ": ...".
    Raises:
        ValidationFailed: ``requested`` is above ``maximum``.
    """
    if requested is None:
        return default
    if requested > maximum:
        raise ValidationFailed(
            f"expires_in may be at most {maximum} seconds on this server{why}.",
            {"expires_in": [f"Must be between 1 and {maximum}."]},
        )
    return requested


class MultipartService:
    """Start, sign, list, abort and assemble multipart uploads of an owner's clips.

    Args:
        db: the database; storage: the S3 adapter; clips: reads of the owner's clips;
        settings: part size, threshold, reservation, URL lifetimes.
    Every method taking ``owner_id`` answers NotFound for another owner's clip.
    """

    def __init__(self, db: Database, storage: S3Storage, clips: ClipService, settings: Settings):
        self.db = db
        self.storage = storage
        self.clips = clips
        self.part_size = settings.multipart_part_size_bytes
        self.threshold = settings.multipart_threshold_bytes
        self.reservation = dt.timedelta(seconds=settings.upload_reservation_seconds)
        self.put_expires_seconds = settings.presign_put_expires_seconds
        self.max_expires_seconds = min(settings.presign_max_expires_seconds, settings.upload_reservation_seconds)

    # -- at creation (UploadService.create) ------------------------------------------

    def plan(self, total_bytes: int, requested: bool | None, checksum_sha256: str | None) -> PartPlan | None:
        """Whether a new clip is uploaded in parts, and how: None for a single PUT.

        Args:
            total_bytes: declared size. requested: the client's ``multipart`` (None: the
                server decides: multipart from MULTIPART_THRESHOLD_BYTES, when set and no
                checksum was declared). checksum_sha256: the declared checksum.
        Raises:
            ValidationFailed: multipart asked together with ``checksum_sha256`` (a part URL
                cannot bind the whole object's SHA-256, and a multipart object's stored
                checksum is a checksum of part checksums).
        """
        if requested is None:
            requested = bool(self.threshold) and total_bytes >= self.threshold and not checksum_sha256
        if not requested:
            return None
        if checksum_sha256:
            raise ValidationFailed(
                "checksum_sha256 cannot be combined with a multipart upload.",
                {"checksum_sha256": ["Not supported with multipart: true; omit it or upload with a single PUT."]},
            )
        return plan_parts(total_bytes, self.part_size)

    def start(self, clip: ClipRecord, plan: PartPlan) -> None:
        """CreateMultipartUpload for ``clip`` (not yet stored) and record it on the clip.

        Raises StorageUnavailable (nothing was stored).
        """
        clip.multipart_upload_id = self.storage.create_multipart_upload(clip.storage_key, clip.mime_type)
        clip.part_size, clip.part_count = plan.part_size, plan.part_count

    def discard(self, clip: ClipRecord) -> None:
        """Abort ``clip``'s upload after its row could not be stored (best effort: the
        sweeper aborts uploads that no clip knows)."""
        if clip.multipart_upload_id:
            try:
                self.storage.abort_multipart_upload(clip.storage_key, clip.multipart_upload_id)
            except StorageUnavailable:
                log.warning("abort of an unstored clip's upload failed; the sweeper will abort it")

    def session(self, clip: ClipRecord) -> MultipartSession | None:
        """The multipart session of a pending multipart clip, else None."""
        if clip.status != PENDING or not clip.multipart_upload_id or not clip.part_size or not clip.part_count:
            return None
        return MultipartSession(
            clip.multipart_upload_id,
            clip.part_size,
            clip.part_count,
            clip.storage_key,
            clip.created_at + self.reservation,
        )

    # -- endpoints ---------------------------------------------------------------

    def sign_parts(
        self, owner_id: str, clip_id: uuid.UUID, part_numbers: Sequence[int], expires_in: int | None = None
    ) -> tuple[ClipRecord, list[SignedPart]]:
        """Presign PUT URLs for ``part_numbers`` of the clip's upload.

        Each URL signs the part's exact ``Content-Length`` (from the declared size and
        the part size), the part number and the upload id.

        Args:
            part_numbers: 1..part_count each, at most MAX_PARTS_PER_BATCH (duplicates ignored).
            expires_in: URL lifetime in seconds (default S3_PRESIGN_PUT_EXPIRES_SECONDS),
                at most S3_PRESIGN_MAX_EXPIRES_SECONDS and the clip's reservation.
        Returns:
            the clip and one signed part per distinct number, in ascending order.
        Raises:
            NotFound; Conflict (not pending, not multipart, or aborted);
            ValidationFailed (a part number outside 1..part_count, expires_in too long).
        """
        clip = self.clips.get(owner_id, clip_id)
        plan = open_plan(clip)
        wrong = sorted({n for n in part_numbers if not 1 <= n <= plan.part_count})
        if wrong:
            raise ValidationFailed(
                f"Part numbers go from 1 to {plan.part_count} for this clip.",
                {"part_numbers": [f"Not a part of this upload: {wrong[:MAX_LISTED]}."]},
            )
        lifetime = bounded_lifetime(expires_in, self.put_expires_seconds, self.max_expires_seconds)
        assert clip.multipart_upload_id is not None  # open_plan checked it
        signed = [
            SignedPart(
                n,
                self.storage.presign_upload_part(
                    clip.storage_key, clip.multipart_upload_id, n, plan.part_length(n), expires_seconds=lifetime
                ),
            )
            for n in sorted(set(part_numbers))
        ]
        return clip, signed

    def open_clip(self, owner_id: str, clip_id: uuid.UUID) -> ClipRecord:
        """The clip, when it is pending with a live multipart upload.

        Raises:
            NotFound; Conflict (not pending, not multipart, or aborted).
        """
        clip = self.clips.get(owner_id, clip_id)
        open_plan(clip)
        return clip

    def list_parts(self, owner_id: str, clip_id: uuid.UUID) -> tuple[ClipRecord, list[UploadedPart]]:
        """The parts the store already holds for the clip (resume after a crash or elsewhere).

        Raises:
            NotFound; Conflict (not pending, not multipart, or the upload is gone);
            StorageUnavailable.
        """
        clip = self.clips.get(owner_id, clip_id)
        open_plan(clip)
        assert clip.multipart_upload_id is not None
        parts = self.storage.list_parts(clip.storage_key, clip.multipart_upload_id)
        if parts is None:
            raise Conflict(
                "The store no longer has this multipart upload (completed or aborted); call complete.",
                {"upload_id": clip.multipart_upload_id},
            )
        return clip, parts

    def abort(self, owner_id: str, clip_id: uuid.UUID) -> ClipRecord:
        """Abort the clip's multipart upload (its parts are freed); the clip stays pending
        without an upload, and the sweeper expires it after its reservation.

        The store decides a race with complete: of AbortMultipartUpload and
        CompleteMultipartUpload on one upload, one wins. When complete assembled the object
        first, nothing was aborted and the answer says so (Conflict, ``details.status`` the
        clip's status as stored and ``details.assembled`` true); complete then verifies it
        as usual. Only after the store aborted does the clip drop its upload id, by a
        compare-and-set on the pending clip and that upload id.

        Idempotent: aborting an aborted upload answers the same.
        Returns:
            the clip as stored after the abort (pending, no upload).
        Raises:
            NotFound; Conflict (the clip is not pending, not multipart, or complete
            assembled its object first); StorageUnavailable (nothing changed).
        """
        clip = self.clips.get(owner_id, clip_id)
        if clip.part_size is None:
            raise single_put_conflict(clip)
        if clip.status != PENDING:
            raise Conflict(
                f"The clip is {clip.status}; only pending uploads can be aborted. "
                f"{after_pending(clip.status, clip.id)}",
                {"status": clip.status},
            )
        upload_id = clip.multipart_upload_id
        if upload_id:
            stopped = self.storage.abort_multipart_upload(clip.storage_key, upload_id)
            if not stopped and self.storage.head(clip.storage_key) is not None:
                # The store no longer knew the upload because complete assembled it.
                current = self.clips.get(owner_id, clip_id)
                raise Conflict(
                    "Complete assembled this clip's parts before the abort; nothing was aborted "
                    f"and the clip is {current.status}.",
                    {"status": current.status, "assembled": True},
                )
            with self.db.statement(write=True) as conn:
                won = clip_sql.drop_multipart_upload(conn=conn, clip_id=clip.id, upload_id=upload_id, now=utcnow())
            if not won:
                current = self.clips.get(owner_id, clip_id)
                if current.status != PENDING:
                    raise Conflict(
                        f"The clip is {current.status}; only pending uploads can be aborted. "
                        f"{after_pending(current.status, current.id)}",
                        {"status": current.status},
                    )
        return self.clips.get(owner_id, clip_id)

    # -- at complete (UploadService.complete) -------------------------------------------

    def assemble(self, clip: ClipRecord) -> None:
        """Assemble a pending multipart clip's parts into its object, before verification.

        See :func:`~advanced_notes.services.multipart_parts.assemble_stored_parts` (its errors).
        """
        assemble_stored_parts(self.storage, clip)

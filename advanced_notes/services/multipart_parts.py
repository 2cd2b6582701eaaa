"""The rules of a multipart clip's parts: which clip takes parts, which stored parts make
its object, and assembling them (docs/multipart.md).

Shared by the multipart endpoints (:class:`~advanced_notes.services.multipart.MultipartService`),
complete, and the sweeper, which assembles an upload nobody completed by the same rule.
"""

from __future__ import annotations

from collections.abc import Sequence

from advanced_notes.adapters.models import ClipRecord
from advanced_notes.adapters.storage import PartsRefused, S3Storage, UploadedPart
from advanced_notes.domain.errors import NEW_UPLOAD_SESSION, Conflict, UploadIncomplete, UploadMissing, after_pending
from advanced_notes.domain.multipart import PartPlan
from advanced_notes.services.lifecycle import PENDING

#: The most part numbers an error lists in its details (the count is always given).
MAX_LISTED = 100


def single_put_conflict(clip: ClipRecord) -> Conflict:
    """The 409 for a parts operation on a clip uploaded with a single PUT (``details.multipart`` false)."""
    return Conflict(
        "This clip is uploaded with a single PUT, not in parts: PUT the file to its upload URL "
        f"(POST /api/audio-clips/{clip.id}/upload-url signs a fresh one), then complete.",
        {"multipart": False},
    )


def open_plan(clip: ClipRecord) -> PartPlan:
    """The part plan of ``clip``, when it is pending with a live multipart upload.

    Raises:
        Conflict: the clip is uploaded with a single PUT (``details.multipart`` false), is
            not pending (``details.status``), or its upload was aborted (``details.aborted``).
    """
    if clip.part_size is None or clip.part_count is None:
        raise single_put_conflict(clip)
    if clip.status != PENDING:
        raise Conflict(
            f"The clip is {clip.status}; only pending clips take parts. {after_pending(clip.status, clip.id)}",
            {"status": clip.status},
        )
    if not clip.multipart_upload_id:
        raise Conflict(f"The multipart upload of this clip was aborted. {NEW_UPLOAD_SESSION}", {"aborted": True})
    return PartPlan(clip.bytes, clip.part_size, clip.part_count)


def check_parts(clip: ClipRecord, parts: Sequence[UploadedPart]) -> list[UploadedPart]:
    """The parts that make ``clip``'s object, when the store holds every one at its exact length.

    The rule of ``complete`` (docs/multipart.md), also applied by the sweeper before it
    assembles an upload nobody completed: parts 1..part_count must all be there, each of
    the length the server derived from the declared ``bytes`` and part size (so their
    sizes sum to ``bytes``); parts numbered beyond part_count are ignored.

    Args:
        clip: a multipart clip (``bytes``, ``part_size``, ``part_count``).
        parts: what ListParts reported (any order).
    Returns:
        parts 1..part_count in order, ready for CompleteMultipartUpload.
    Raises:
        UploadIncomplete: parts missing or of the wrong size (``details`` list them).
    """
    plan = PartPlan(clip.bytes, clip.part_size or 0, clip.part_count or 0)
    by_number = {p.part_number: p for p in parts if 1 <= p.part_number <= plan.part_count}
    missing = [n for n in range(1, plan.part_count + 1) if n not in by_number]
    wrong = [
        {"part_number": n, "size": p.size, "expected_size": plan.part_length(n)}
        for n, p in sorted(by_number.items())
        if p.size != plan.part_length(n)
    ]
    if missing or wrong:
        raise UploadIncomplete(
            f"The upload lacks {len(missing)} part(s) and has {len(wrong)} part(s) of the wrong size; "
            "upload them (again), then complete.",
            {
                "missing_parts": missing[:MAX_LISTED],
                "missing_count": len(missing),
                "wrong_size_parts": wrong[:MAX_LISTED],
                "part_count": plan.part_count,
            },
        )
    return [by_number[n] for n in range(1, plan.part_count + 1)]


def assemble_parts(storage: S3Storage, clip: ClipRecord, parts: list[UploadedPart]) -> bool:
    """CompleteMultipartUpload of ``clip``'s upload with ``parts`` (from :func:`check_parts`).

    Returns:
        True when this call assembled the object; False when the store no longer knows
        the upload (NoSuchUpload: another complete finished it, or it was aborted): the
        caller re-reads the clip and lets the object decide.
    Raises:
        UploadIncomplete: the store refused the parts (a part re-uploaded since ListParts,
            a part too small for this store); ``details.store_code`` names the refusal.
        StorageUnavailable: nothing changed.
    """
    assert clip.multipart_upload_id is not None
    try:
        return storage.complete_multipart_upload(clip.storage_key, clip.multipart_upload_id, parts)
    except PartsRefused as exc:
        raise UploadIncomplete(
            f"The store refused the parts ({exc.code}); upload them again, then complete.",
            {"store_code": exc.code, "part_count": len(parts)},
        ) from exc


def assemble_stored_parts(storage: S3Storage, clip: ClipRecord) -> None:
    """Assemble a pending multipart clip's parts into its object, before verification.

    The parts come from the store (ListParts), not the client; :func:`check_parts`
    decides whether they make the object, then :func:`assemble_parts`. When the store
    no longer knows the upload (a concurrent complete assembled it), the object decides.

    Raises:
        UploadIncomplete: parts missing or of the wrong size (the clip stays pending;
            upload those parts again).
        UploadMissing: the upload was aborted and no object exists.
        StorageUnavailable: nothing changed.
    """
    parts = storage.list_parts(clip.storage_key, clip.multipart_upload_id) if clip.multipart_upload_id else None
    if parts is None:
        if storage.head(clip.storage_key) is None:
            raise UploadMissing(
                f"The multipart upload of this clip was aborted and no object is stored. {NEW_UPLOAD_SESSION}",
                {"storage_key": clip.storage_key, "upload_id": clip.multipart_upload_id},
            )
        return  # assembled by an earlier complete: verification decides
    assemble_parts(storage, clip, check_parts(clip, parts))

"""``/api/audio-clips/<id>/multipart``: sign part URLs, list stored parts, abort (docs/multipart.md).

A clip created with ``"multipart": true`` (or above MULTIPART_THRESHOLD_BYTES) is
uploaded in parts; ``POST /api/audio-clips/<id>/complete`` assembles and verifies it.
"""

from __future__ import annotations

import uuid
from typing import Any

from advanced_notes.api import links
from advanced_notes.api.auth import current_owner
from advanced_notes.api.common import NO_CLIP, ApiBlueprint, authenticated_blueprint, error_responses, upload_body
from advanced_notes.api.context import current_services
from advanced_notes.api.schemas import (
    ABORTED_EXAMPLE,
    SIGNED_PARTS_EXAMPLE,
    STORED_PARTS_EXAMPLE,
    AbortedSchema,
    SignedPartsSchema,
    SignPartsSchema,
    StoredPartsSchema,
)

_NOT_MULTIPART = "conflict: the clip is not pending, not uploaded in parts, or its upload was aborted."


def multipart_blueprint() -> ApiBlueprint:
    """The ``/api/audio-clips/<id>/multipart`` blueprint of one app (built per app by ``init_api``).

    Returns:
        a new blueprint whose every route requires a bearer token; each view calls the
        :class:`~advanced_notes.services.multipart.MultipartService`.
    """
    blp = authenticated_blueprint(
        "multipart-uploads", __name__, "Multipart uploads: part URLs, stored parts, abort (resumable uploads)."
    )

    @blp.route("/audio-clips/<uuid:clip_id>/multipart/parts", methods=["POST"])
    @blp.doc(responses={200: {"links": links.PARTS_SIGNED}})
    @blp.arguments(SignPartsSchema())
    @blp.response(200, SignedPartsSchema, example=SIGNED_PARTS_EXAMPLE)
    @error_responses(
        blp,
        {
            404: NO_CLIP,
            409: _NOT_MULTIPART,
            422: "validation_error: a part number outside 1..part_count, or expires_in.",
        },
    )
    def sign_parts(body: dict[str, Any], clip_id: uuid.UUID) -> dict[str, Any]:
        """Presign PUT URLs for a batch of parts.

        Each URL binds the part's exact `Content-Length` (derived by the server from the
        declared size and the part size: every part is `part_size` bytes but the last), its
        `partNumber` and the `uploadId`. PUT each part's bytes with exactly `headers`; the
        store's `ETag` answer need not be kept (complete lists the parts on the server).
        """
        clip, signed = current_services().multipart.sign_parts(
            current_owner(), clip_id, body["part_numbers"], body["expires_in"]
        )
        return {
            "parts": [
                {"part_number": s.part_number, **(upload_body(s.request, clip.storage_key) or {})} for s in signed
            ]
        }

    @blp.route("/audio-clips/<uuid:clip_id>/multipart/parts", methods=["GET"])
    @blp.doc(responses={200: {"links": links.PARTS_LISTED}})
    @blp.response(200, StoredPartsSchema, example=STORED_PARTS_EXAMPLE)
    @error_responses(blp, {404: NO_CLIP, 409: _NOT_MULTIPART})
    def list_parts(clip_id: uuid.UUID) -> dict[str, Any]:
        """The parts the store already holds (ListParts), and those still missing: resume
        after a crash, a reload or on another device by uploading only `missing_parts`."""
        service = current_services().multipart
        clip, parts = service.list_parts(current_owner(), clip_id)
        have = {p.part_number for p in parts}
        return {
            "multipart": service.session(clip),
            "parts": [{"part_number": p.part_number, "size": p.size, "etag": p.etag} for p in parts],
            "missing_parts": [n for n in range(1, (clip.part_count or 0) + 1) if n not in have],
        }

    @blp.route("/audio-clips/<uuid:clip_id>/multipart", methods=["DELETE"])
    @blp.doc(responses={200: {"links": links.ABORTED}})
    @blp.response(200, AbortedSchema, example=ABORTED_EXAMPLE)
    @error_responses(
        blp,
        {
            404: NO_CLIP,
            409: "conflict: the clip is not pending or not uploaded in parts, or complete assembled its parts "
            "first (`details.assembled`: nothing was aborted).",
        },
    )
    def abort_upload(clip_id: uuid.UUID) -> dict[str, Any]:
        """Abort the multipart upload (its stored parts are freed). The clip stays pending with
        no upload until the sweeper expires it; delete it to remove it now. Idempotent.

        `aborted: true` means the store aborted the upload. When a concurrent complete assembled
        the parts first, nothing was aborted: 409 with `details.assembled` true and
        `details.status` the clip's status (complete goes on to verify it)."""
        clip = current_services().multipart.abort(current_owner(), clip_id)
        return {"clip_id": clip.id, "aborted": clip.multipart_upload_id is None}

    return blp

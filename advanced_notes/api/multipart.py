"""``/api/audio-clips/<id>/multipart``: sign part URLs, list stored parts, abort (docs/multipart.md).

A clip created with ``"multipart": true`` (or above MULTIPART_THRESHOLD_BYTES) is
uploaded in parts; ``POST /api/audio-clips/<id>/complete`` assembles and verifies it.
"""

from __future__ import annotations

import uuid
from typing import Any

from marshmallow import Schema, fields, validate

from advanced_notes.api import links
from advanced_notes.api.auth import current_owner
from advanced_notes.api.common import NO_CLIP, authenticated_blueprint, error_responses, upload_body
from advanced_notes.api.context import current_services
from advanced_notes.api.schemas import MultipartSessionSchema, StrictSchema, UTCDateTime
from advanced_notes.services.multipart import MAX_PARTS_PER_BATCH, MultipartService

blp = authenticated_blueprint(
    "multipart-uploads", __name__, "Multipart uploads: part URLs, stored parts, abort (resumable uploads)."
)


def _service() -> MultipartService:
    return current_services().multipart


class SignPartsSchema(StrictSchema):
    """Body of ``POST .../multipart/parts``."""

    part_numbers = fields.List(
        fields.Integer(strict=True, validate=validate.Range(1, 10_000)),
        required=True,
        validate=validate.Length(1, MAX_PARTS_PER_BATCH),
        metadata={"description": f"Parts to sign (1..part_count), at most {MAX_PARTS_PER_BATCH} per request."},
    )
    expires_in = fields.Integer(
        strict=True,
        load_default=None,
        allow_none=True,
        validate=validate.Range(1, 604_800),
        metadata={
            "description": "URL lifetime in seconds (default S3_PRESIGN_PUT_EXPIRES_SECONDS; at most "
            "S3_PRESIGN_MAX_EXPIRES_SECONDS, SigV4's 604800 and the clip's reservation)."
        },
    )


class SignedPartSchema(Schema):
    part_number = fields.Integer()
    method = fields.String(metadata={"example": "PUT"})
    url = fields.String()
    headers = fields.Dict(
        keys=fields.String(), values=fields.String(), metadata={"description": "Signed headers: Content-Length."}
    )
    expires_at = UTCDateTime()


class SignedPartsSchema(Schema):
    parts = fields.List(fields.Nested(SignedPartSchema))


class StoredPartSchema(Schema):
    part_number = fields.Integer()
    size = fields.Integer(metadata={"description": "bytes"})
    etag = fields.String()


class StoredPartsSchema(Schema):
    multipart = fields.Nested(MultipartSessionSchema)
    parts = fields.List(fields.Nested(StoredPartSchema), metadata={"description": "What the store holds."})
    missing_parts = fields.List(fields.Integer(), metadata={"description": "Part numbers still to upload."})


class AbortedSchema(Schema):
    clip_id = fields.UUID()
    aborted = fields.Boolean()


_CLIP_ID = "3f0c6a2e-8d4b-4a7e-9b1c-2d5e6f708192"
_KEY = f"prod/audio-clips/{_CLIP_ID}.wav"
_UPLOAD_ID = "2~n0tS3cR3tUpl0adId"
_SESSION_EXAMPLE = {
    "upload_id": _UPLOAD_ID,
    "storage_key": _KEY,
    "part_size": 8388608,
    "part_count": 3,
    "expires_at": "2026-11-22T08:10:08.188Z",
}
_SIGNED_EXAMPLE = {
    "parts": [
        {
            "part_number": 1,
            "method": "PUT",
            "url": f"https://advanced-notes-audio.s3.amazonaws.com/{_KEY}?partNumber=1&uploadId={_UPLOAD_ID}"
            "&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA...%2F20261121%2Fus-east-1%2Fs3%2Faws4_request"
            "&X-Amz-Date=20261121T081008Z&X-Amz-Expires=900&X-Amz-SignedHeaders=content-length%3Bhost"
            "&X-Amz-Signature=...",
            "headers": {"Content-Length": "8388608"},
            "expires_at": "2026-11-21T08:25:08.000Z",
        }
    ]
}
_STORED_EXAMPLE = {
    "multipart": _SESSION_EXAMPLE,
    "parts": [
        {"part_number": 1, "size": 8388608, "etag": '"5f363e0e58a95f06cbe9bbc662c5dfb6"'},
        {"part_number": 3, "size": 4194304, "etag": '"b1946ac92492d2347c6235b4d2611184"'},
    ],
    "missing_parts": [2],
}
_NOT_MULTIPART = "conflict: the clip is not pending, not uploaded in parts, or its upload was aborted."


@blp.route("/audio-clips/<uuid:clip_id>/multipart/parts", methods=["POST"])
@blp.doc(responses={200: {"links": links.PARTS_SIGNED}})
@blp.arguments(SignPartsSchema())
@blp.response(200, SignedPartsSchema, example=_SIGNED_EXAMPLE)
@error_responses(
    blp,
    {404: NO_CLIP, 409: _NOT_MULTIPART, 422: "validation_error: a part number outside 1..part_count, or expires_in."},
)
def sign_parts(body: dict[str, Any], clip_id: uuid.UUID) -> dict[str, Any]:
    """Presign PUT URLs for a batch of parts.

    Each URL binds the part's exact `Content-Length` (derived by the server from the
    declared size and the part size: every part is `part_size` bytes but the last), its
    `partNumber` and the `uploadId`. PUT each part's bytes with exactly `headers`; the
    store's `ETag` answer need not be kept (complete lists the parts on the server).
    """
    clip, signed = _service().sign_parts(current_owner(), clip_id, body["part_numbers"], body["expires_in"])
    return {
        "parts": [{"part_number": s.part_number, **(upload_body(s.request, clip.storage_key) or {})} for s in signed]
    }


@blp.route("/audio-clips/<uuid:clip_id>/multipart/parts", methods=["GET"])
@blp.doc(responses={200: {"links": links.PARTS_LISTED}})
@blp.response(200, StoredPartsSchema, example=_STORED_EXAMPLE)
@error_responses(blp, {404: NO_CLIP, 409: _NOT_MULTIPART})
def list_parts(clip_id: uuid.UUID) -> dict[str, Any]:
    """The parts the store already holds (ListParts), and those still missing: resume
    after a crash, a reload or on another device by uploading only `missing_parts`."""
    service = _service()
    clip, parts = service.list_parts(current_owner(), clip_id)
    have = {p.part_number for p in parts}
    return {
        "multipart": service.session(clip),
        "parts": [{"part_number": p.part_number, "size": p.size, "etag": p.etag} for p in parts],
        "missing_parts": [n for n in range(1, (clip.part_count or 0) + 1) if n not in have],
    }


@blp.route("/audio-clips/<uuid:clip_id>/multipart", methods=["DELETE"])
@blp.doc(responses={200: {"links": links.ABORTED}})
@blp.response(200, AbortedSchema, example={"clip_id": _CLIP_ID, "aborted": True})
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
    clip = _service().abort(current_owner(), clip_id)
    return {"clip_id": clip.id, "aborted": clip.multipart_upload_id is None}

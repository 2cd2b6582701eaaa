"""Schemas of ``/api/audio-clips/<id>/multipart``: the session, part URLs, stored parts, abort."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from advanced_notes.api.schemas.base import StrictSchema, UTCDateTime
from advanced_notes.domain.multipart import MAX_PARTS
from advanced_notes.services.multipart import MAX_PARTS_PER_BATCH
from advanced_notes.settings import SIGV4_MAX_EXPIRES_SECONDS


class MultipartSessionSchema(Schema):
    """A multipart upload: sign parts at ``POST /api/audio-clips/<id>/multipart/parts``."""

    upload_id = fields.String()
    storage_key = fields.String()
    part_size = fields.Integer(metadata={"description": "Bytes of every part but the last (>= 5 MiB)."})
    part_count = fields.Integer(metadata={"description": "Number of parts (<= 10,000)."})
    expires_at = UTCDateTime(metadata={"description": "End of the reservation; complete before it."})


class SignPartsSchema(StrictSchema):
    """Body of ``POST .../multipart/parts``.

    Part numbers are bounded by S3's 10,000 parts per upload (the service checks the
    clip's own ``part_count``); ``expires_in`` by SigV4's longest presigned URL (the
    service checks the deployment's ``S3_PRESIGN_MAX_EXPIRES_SECONDS`` and the clip's
    reservation).
    """

    part_numbers = fields.List(
        fields.Integer(strict=True, validate=validate.Range(1, MAX_PARTS)),
        required=True,
        validate=validate.Length(1, MAX_PARTS_PER_BATCH),
        metadata={"description": f"Parts to sign (1..part_count), at most {MAX_PARTS_PER_BATCH} per request."},
    )
    expires_in = fields.Integer(
        strict=True,
        load_default=None,
        allow_none=True,
        validate=validate.Range(1, SIGV4_MAX_EXPIRES_SECONDS),
        metadata={
            "description": "URL lifetime in seconds (default S3_PRESIGN_PUT_EXPIRES_SECONDS; at most "
            f"S3_PRESIGN_MAX_EXPIRES_SECONDS, SigV4's {SIGV4_MAX_EXPIRES_SECONDS} and the clip's reservation)."
        },
    )


class SignedPartSchema(Schema):
    """One part's presigned PUT."""

    part_number = fields.Integer()
    method = fields.String(metadata={"example": "PUT"})
    url = fields.String()
    headers = fields.Dict(
        keys=fields.String(), values=fields.String(), metadata={"description": "Signed headers: Content-Length."}
    )
    expires_at = UTCDateTime()


class SignedPartsSchema(Schema):
    """Answer of ``POST .../multipart/parts``."""

    parts = fields.List(fields.Nested(SignedPartSchema))


class StoredPartSchema(Schema):
    """A part the store holds (ListParts)."""

    part_number = fields.Integer()
    size = fields.Integer(metadata={"description": "bytes"})
    etag = fields.String()


class StoredPartsSchema(Schema):
    """Answer of ``GET .../multipart/parts``."""

    multipart = fields.Nested(MultipartSessionSchema)
    parts = fields.List(fields.Nested(StoredPartSchema), metadata={"description": "What the store holds."})
    missing_parts = fields.List(fields.Integer(), metadata={"description": "Part numbers still to upload."})


class AbortedSchema(Schema):
    """Answer of ``DELETE .../multipart``."""

    clip_id = fields.UUID()
    aborted = fields.Boolean()

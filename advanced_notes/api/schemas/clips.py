"""Schemas of ``/api/audio-clips`` and ``/api/notes/<note_id>/audio``: clips, uploads, playback.

Limits that are settings (``MAX_UPLOAD_BYTES``, ``MAX_DURATION_MS``, the MIME allow-list)
are built into the create schema once, when an app is created (:func:`build_schemas`):
the same marshmallow validators then check requests and, through apispec, write
``minimum``/``maximum``/``enum`` into that app's OpenAPI document.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from marshmallow import Schema, fields, validate

from advanced_notes.adapters.models import ClipStatus, ProcessingStatus
from advanced_notes.api.schemas.base import (
    BETWEEN,
    NOTE_ID_PATTERN,
    NOTE_ID_VALIDATORS,
    ONE_OF,
    SHA256_BASE64,
    MimeType,
    StrictBoolean,
    StrictSchema,
    UTCDateTime,
)
from advanced_notes.api.schemas.multipart import MultipartSessionSchema
from advanced_notes.domain.processing import ORIGINAL, RENDITIONS, processing_view
from advanced_notes.settings import Settings

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20


def _create_clip_schema(settings: Settings) -> type[StrictSchema]:
    """The body schema of ``POST /api/audio-clips`` with the limits of ``settings``.

    A new class per call (one per app), named ``CreateClipSchema`` so that the OpenAPI
    component is ``CreateClip`` in every app. ``register = False`` keeps these classes out
    of marshmallow's global class registry (nothing refers to them by name, and a registry
    entry per app would pile up in a process that builds many apps, as the tests do).
    """

    class CreateClipSchema(StrictSchema):
        """Body of ``POST /api/audio-clips``."""

        class Meta(StrictSchema.Meta):
            register = False

        note_id = fields.String(
            load_default=None,
            allow_none=True,
            validate=NOTE_ID_VALIDATORS,
            metadata={"description": "Opaque note identifier (1..255 chars).", "pattern": NOTE_ID_PATTERN},
        )
        mime_type = MimeType(
            required=True,
            validate=validate.OneOf(settings.allowed_mime_types, error=ONE_OF),
            metadata={"example": "audio/mp4", "description": "Audio MIME type from the allow-list."},
        )
        bytes = fields.Integer(
            strict=True,
            required=True,
            validate=validate.Range(1, settings.max_upload_bytes, error=BETWEEN),
            metadata={"example": 54692, "description": "Exact size in bytes (1..MAX_UPLOAD_BYTES)."},
        )
        duration_ms = fields.Integer(
            strict=True,
            load_default=None,
            allow_none=True,
            validate=validate.Range(0, settings.max_duration_ms, error=BETWEEN),
            metadata={"example": 6289, "description": "Declared duration (ms)."},
        )
        checksum_sha256 = fields.String(
            load_default=None,
            allow_none=True,
            validate=SHA256_BASE64,
            metadata={"description": "Base64 SHA-256 of the bytes; signed into the PUT."},
        )
        multipart = StrictBoolean(
            load_default=None,
            allow_none=True,
            metadata={
                "description": "Upload in parts (docs/multipart.md); omitted: the server decides from "
                "MULTIPART_THRESHOLD_BYTES. Not combinable with checksum_sha256."
            },
        )
        expires_in = fields.Integer(
            strict=True,
            load_default=None,
            allow_none=True,
            validate=validate.Range(1, settings.presign_max_expires_seconds, error=BETWEEN),
            metadata={
                "description": "PUT URL lifetime in seconds: at most S3_PRESIGN_MAX_EXPIRES_SECONDS; for a "
                "single PUT with S3_CONDITIONAL_WRITES off, at most S3_PRESIGN_PUT_EXPIRES_SECONDS (an upload "
                "URL could replace a verified clip while it lives; a longer one is a 422)."
            },
        )

    return CreateClipSchema


@dataclass(frozen=True)
class ApiSchemas:
    """The schemas of one app whose validators carry that app's settings.

    Attributes:
        create_clip: body of ``POST /api/audio-clips``: ``bytes`` in 1..MAX_UPLOAD_BYTES,
            ``duration_ms`` in 0..MAX_DURATION_MS (or null), ``mime_type`` normalized and
            then one of ALLOWED_MIME_TYPES.
    """

    create_clip: type[StrictSchema]


def build_schemas(settings: Settings) -> ApiSchemas:
    """Build the settings-bound schemas of one app (called once, by ``init_api``).

    Args:
        settings: the app's settings; ``max_upload_bytes``, ``max_duration_ms`` and
            ``allowed_mime_types`` become ``validate.Range``/``validate.OneOf`` validators.
    Returns:
        new schema classes, shared by no other app: the validators enforce the limits and
        apispec turns the same validators into ``minimum``/``maximum``/``enum``.
    """
    return ApiSchemas(create_clip=_create_clip_schema(settings))


class IdempotencyHeaderSchema(Schema):
    """Headers of ``POST /api/audio-clips`` (other headers are ignored)."""

    idempotency_key = fields.String(
        data_key="Idempotency-Key",
        validate=validate.Regexp(r"^[\x21-\x7e]{1,255}$", error="Must be 1 to 255 visible ASCII characters."),
        metadata={"description": "Repeats with the same key by the same owner return the same clip."},
    )


class UpdateClipSchema(StrictSchema):
    """Body of ``PATCH /api/audio-clips/<id>``: attach to a note, or detach with null."""

    note_id = fields.String(
        required=True, allow_none=True, validate=NOTE_ID_VALIDATORS, metadata={"pattern": NOTE_ID_PATTERN}
    )


class ListClipsQuerySchema(StrictSchema):
    """Query of ``GET /api/audio-clips``."""

    note_id = fields.String(validate=NOTE_ID_VALIDATORS, metadata={"pattern": NOTE_ID_PATTERN})
    status = fields.String(validate=validate.OneOf([s.value for s in ClipStatus]))
    limit = fields.Integer(load_default=DEFAULT_PAGE_SIZE, validate=validate.Range(1, MAX_PAGE_SIZE))
    cursor = fields.String(
        validate=validate.Length(1, 512), metadata={"description": "next_cursor of the previous page."}
    )


class ProcessingReasonSchema(Schema):
    """Why processing failed: a code and a sentence."""

    code = fields.String(metadata={"example": "not_audio"})
    message = fields.String()


class ProcessingSchema(Schema):
    """The processing stage of a ready clip (docs/processing.md); null before the clip is ready."""

    status = fields.String(metadata={"enum": [s.value for s in ProcessingStatus]})
    reason = fields.Nested(
        ProcessingReasonSchema, allow_none=True, metadata={"description": "Why processing failed; null otherwise."}
    )
    renditions = fields.List(
        fields.String(metadata={"enum": list(RENDITIONS)}),
        metadata={"description": "Renditions playable now (`?rendition=` of playback): original first."},
    )
    skipped = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        metadata={"description": "Renditions not made for this clip, and why."},
    )
    duration_ms = fields.Integer(allow_none=True, metadata={"description": "Exact duration of the decoded audio."})
    loudness_lufs = fields.Float(allow_none=True, metadata={"description": "EBU R128 integrated loudness, LUFS."})
    true_peak_dbtp = fields.Float(allow_none=True, metadata={"description": "True peak, dBTP."})


class ProcessingField(fields.Nested):
    """A clip's ``processing`` object, built from its ``processing_status`` and ``processing`` columns."""

    def get_value(self, obj: Any, attr: str, accessor: Any = None, default: Any = None) -> Any:
        return processing_view(getattr(obj, "processing_status", None), getattr(obj, "processing", None))


class ClipSchema(Schema):
    """A clip as the API returns it (sizes in bytes, durations in ms)."""

    id = fields.UUID()
    note_id = fields.String(allow_none=True)
    status = fields.String(metadata={"enum": [s.value for s in ClipStatus]})
    mime_type = fields.String()
    bytes = fields.Integer()
    duration_ms = fields.Integer(allow_none=True)
    measured_duration_ms = fields.Integer(allow_none=True)
    checksum_sha256 = fields.String(allow_none=True)
    storage_key = fields.String()
    etag = fields.String(allow_none=True)
    stored_bytes = fields.Integer(allow_none=True)
    created_at = UTCDateTime()
    updated_at = UTCDateTime()
    completed_at = UTCDateTime(allow_none=True)
    processing = ProcessingField(ProcessingSchema, allow_none=True)


class RenditionQuerySchema(StrictSchema):
    """Query of playback and note audio: which rendition to play."""

    rendition = fields.String(
        load_default=ORIGINAL,
        validate=validate.OneOf(RENDITIONS),
        metadata={
            "description": "original (default, as uploaded), seekable (WebM with Duration and Cues), universal "
            "(AAC-LC in MP4) or normalized (loudness-normalized AAC). 409 rendition_not_ready while it is not "
            "available: see the clip's processing.renditions."
        },
    )


class UploadSchema(Schema):
    """How to PUT the bytes: send exactly ``headers`` to ``url`` before ``expires_at``."""

    method = fields.String(metadata={"example": "PUT"})
    url = fields.String()
    storage_key = fields.String()
    headers = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        metadata={"description": "Every header signed into the URL, with its exact value."},
    )
    expires_at = UTCDateTime()


class PlaybackSchema(Schema):
    """A presigned GET URL (supports HTTP Range) and when it stops working."""

    url = fields.String()
    expires_at = UTCDateTime()


class ClipEnvelopeSchema(Schema):
    """``{"clip": ...}``: the answer of get, update and complete."""

    clip = fields.Nested(ClipSchema)


class CreatedClipSchema(Schema):
    """Answer of ``POST /api/audio-clips``: the clip and how to upload its bytes."""

    clip = fields.Nested(ClipSchema)
    upload = fields.Nested(
        UploadSchema,
        allow_none=True,
        metadata={"description": "null on an idempotent repeat once the clip is no longer pending, and for multipart"},
    )
    multipart = fields.Nested(
        MultipartSessionSchema,
        allow_none=True,
        metadata={"description": "the multipart session of a pending clip uploaded in parts, else null"},
    )


class UploadEnvelopeSchema(Schema):
    """Answer of ``POST .../upload-url``: a freshly signed PUT."""

    upload = fields.Nested(UploadSchema)


class ClipPageSchema(Schema):
    """A page of ``GET /api/audio-clips``; ``next_cursor`` is null on the last page."""

    clips = fields.List(fields.Nested(ClipSchema))
    next_cursor = fields.String(allow_none=True)


class NoteAudioSchema(Schema):
    """Answer of ``GET /api/notes/<note_id>/audio``: the note's primary clip and its playback."""

    clip = fields.Nested(ClipSchema)
    playback = fields.Nested(PlaybackSchema)


class DeletedSchema(Schema):
    """Answer of ``DELETE /api/notes/<note_id>/audio``."""

    deleted = fields.Integer(metadata={"description": "How many clips were deleted."})

"""Marshmallow schemas: what the API accepts and returns (DESIGN §4).

Inputs are strict: unknown fields are a 422, ``"bytes": "12"`` is a 422, booleans are
not integers. Limits that are settings (``MAX_UPLOAD_BYTES``, ``MAX_DURATION_MS``, the
MIME allow-list) are built into the schemas once, when an app is created
(:func:`build_schemas`): the same marshmallow validators then check requests and, through
apispec, write ``minimum``/``maximum``/``enum`` into that app's OpenAPI document.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from advanced_notes.adapters.models import ClipStatus, ProcessingStatus
from advanced_notes.domain.mime import normalize_mime_type
from advanced_notes.domain.processing import ORIGINAL, RENDITIONS, processing_view
from advanced_notes.settings import Settings

MAX_NOTE_ID_LENGTH = 255
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20


class UTCDateTime(fields.DateTime):
    """ISO 8601 UTC with a ``Z`` and millisecond precision: ``2026-11-21T08:06:31.123Z``."""

    def _serialize(self, value: dt.datetime | None, attr: str | None, obj: object, **kwargs: object) -> str | None:
        if value is None:
            return None
        utc = value.astimezone(dt.UTC)
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class StrictBoolean(fields.Boolean):
    """JSON ``true``/``false`` only: marshmallow's Boolean also takes "yes", "on", 1 and 0
    (and ``0 in {False}`` is true in Python, so truthy/falsy sets cannot exclude them)."""

    def _deserialize(self, value: object, attr: str | None, data: object, **kwargs: object) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class MimeType(fields.String):
    """A MIME type, case-insensitive, parameters dropped (``"Audio/Webm;codecs=opus"`` -> ``"audio/webm"``).

    The field's validators (the allow-list) see the normalized value.
    """

    def _deserialize(self, value: object, attr: str | None, data: object, **kwargs: object) -> str:
        return normalize_mime_type(super()._deserialize(value, attr, data, **kwargs))


#: The wording of a bound the API has always used: "Must be between 1 and 104857600."
BETWEEN = "Must be between {min} and {max}."
#: "Must be one of: audio/mp4, audio/mpeg." (the choices in allow-list order).
ONE_OF = "Must be one of: {choices}."


#: Base64 of 32 bytes: 43 characters and one "=" of padding.
SHA256_BASE64 = validate.Regexp(
    r"^[A-Za-z0-9+/]{43}=$", error="Must be the base64 encoding of a 32-byte SHA-256 digest."
)


def _is_utf8(value: str) -> bool:
    # JSON can spell a lone surrogate ("\\ud800"); no UTF-8 database column can hold one,
    # and psycopg2 raised UnicodeEncodeError (a 500) on it (issue 13 item 6).
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def is_storable_note_id(value: str) -> bool:
    """True when ``value`` can be a note id: 1..255 characters, not only whitespace (no
    note is called " "), no NUL (PostgreSQL text cannot hold U+0000, and the driver would
    fail on it) and no lone surrogate."""
    return 0 < len(value) <= MAX_NOTE_ID_LENGTH and "\x00" not in value and not value.isspace() and _is_utf8(value)


def _no_nul_or_blank(value: str) -> None:
    if "\x00" in value:
        raise ValidationError("Must not contain NUL characters.")
    if not _is_utf8(value):
        raise ValidationError("Must be valid Unicode (no lone surrogates).")
    if value.isspace():
        raise ValidationError("Must not be blank.")


#: In the OpenAPI document: a note id holds at least one character that is not whitespace
#: (Python's ``str.isspace``, which :func:`_no_nul_or_blank` applies).
NOTE_ID_PATTERN = r"\S"
_NOTE_ID: list[Callable[[Any], Any]] = [validate.Length(1, MAX_NOTE_ID_LENGTH), _no_nul_or_blank]


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
            validate=_NOTE_ID,
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

    note_id = fields.String(required=True, allow_none=True, validate=_NOTE_ID, metadata={"pattern": NOTE_ID_PATTERN})


class ListClipsQuerySchema(StrictSchema):
    """Query of ``GET /api/audio-clips``."""

    note_id = fields.String(validate=_NOTE_ID, metadata={"pattern": NOTE_ID_PATTERN})
    status = fields.String(validate=validate.OneOf([s.value for s in ClipStatus]))
    limit = fields.Integer(load_default=DEFAULT_PAGE_SIZE, validate=validate.Range(1, MAX_PAGE_SIZE))
    cursor = fields.String(
        validate=validate.Length(1, 512), metadata={"description": "next_cursor of the previous page."}
    )


class ProcessingReasonSchema(Schema):
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
    clip = fields.Nested(ClipSchema)


class MultipartSessionSchema(Schema):
    """A multipart upload: sign parts at ``POST /api/audio-clips/<id>/multipart/parts``."""

    upload_id = fields.String()
    storage_key = fields.String()
    part_size = fields.Integer(metadata={"description": "Bytes of every part but the last (>= 5 MiB)."})
    part_count = fields.Integer(metadata={"description": "Number of parts (<= 10,000)."})
    expires_at = UTCDateTime(metadata={"description": "End of the reservation; complete before it."})


class CreatedClipSchema(Schema):
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
    upload = fields.Nested(UploadSchema)


class ClipPageSchema(Schema):
    clips = fields.List(fields.Nested(ClipSchema))
    next_cursor = fields.String(allow_none=True)


class NoteAudioSchema(Schema):
    clip = fields.Nested(ClipSchema)
    playback = fields.Nested(PlaybackSchema)


class DeletedSchema(Schema):
    deleted = fields.Integer(metadata={"description": "How many clips were deleted."})


class HealthSchema(Schema):
    status = fields.String(metadata={"example": "ok"})


class ReadinessSchema(Schema):
    status = fields.String(metadata={"example": "ready"})
    checks = fields.Dict(
        keys=fields.String(), values=fields.String(), metadata={"example": {"database": "ok", "storage": "ok"}}
    )


class ErrorBodySchema(Schema):
    code = fields.String(metadata={"example": "validation_error"})
    message = fields.String()
    details = fields.Raw(metadata={"description": "Field errors or a rejection reason."})


class ErrorSchema(Schema):
    """Every 4xx/5xx answer: ``{"error": {"code", "message", "details"?}}``."""

    error = fields.Nested(ErrorBodySchema)


# Examples for the OpenAPI document (what /api/docs shows).
_CLIP_ID = "3f0c6a2e-8d4b-4a7e-9b1c-2d5e6f708192"
_KEY = f"prod/audio-clips/{_CLIP_ID}.m4a"
CLIP_EXAMPLE = {
    "id": _CLIP_ID,
    "note_id": "note-42",
    "status": "ready",
    "mime_type": "audio/mp4",
    "bytes": 54692,
    "duration_ms": 6300,
    "measured_duration_ms": 6312,
    "checksum_sha256": "u4kJ78aX//hbjMpcy/q+JelE8WdxZdF4I7pWxUC3Nbg=",
    "storage_key": _KEY,
    "etag": '"712b298890187aa7b47bc2fc3f9acdb0"',
    "stored_bytes": 54692,
    "created_at": "2026-11-21T08:10:08.188Z",
    "updated_at": "2026-11-21T08:10:09.214Z",
    "completed_at": "2026-11-21T08:10:09.214Z",
    "processing": {
        "status": "done",
        "reason": None,
        "renditions": ["original"],
        "skipped": {
            "seekable": "not WebM/Matroska: its container indexes itself",
            "universal": "already AAC-LC in MP4",
        },
        "duration_ms": 6308,
        "loudness_lufs": -19.3,
        "true_peak_dbtp": -1.2,
    },
}
PENDING_EXAMPLE = {
    **CLIP_EXAMPLE,
    "processing": None,
    "status": "pending",
    "measured_duration_ms": None,
    "etag": None,
    "stored_bytes": None,
    "completed_at": None,
    "updated_at": CLIP_EXAMPLE["created_at"],
}
UPLOAD_EXAMPLE = {
    "method": "PUT",
    "storage_key": _KEY,
    "expires_at": "2026-11-21T08:25:08.000Z",
    "url": f"https://advanced-notes-audio.s3.amazonaws.com/{_KEY}?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=AKIA...%2F20261121%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261121T081008Z"
    "&X-Amz-Expires=900&X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost%3Bx-amz-checksum-sha256"
    "&X-Amz-Signature=...",
    "headers": {
        "Content-Type": "audio/mp4",
        "Content-Length": "54692",
        "x-amz-checksum-sha256": "u4kJ78aX//hbjMpcy/q+JelE8WdxZdF4I7pWxUC3Nbg=",
    },
}
PLAYBACK_EXAMPLE = {
    "url": f"https://advanced-notes-audio.s3.amazonaws.com/{_KEY}?response-content-type=audio%2Fmp4"
    "&response-cache-control=private%2C%20max-age%3D600%2C%20immutable&X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Date=20261121T081000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=...",
    "expires_at": "2026-11-21T08:25:00.000Z",
}

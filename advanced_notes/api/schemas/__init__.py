"""Marshmallow schemas: what the API accepts and returns (DESIGN §4), one module a resource.

Every blueprint and test imports schemas from this package; each schema is written once,
in the module of its resource:

- :mod:`.base`: fields and validators every schema uses (UTC times, strict input, note ids);
- :mod:`.clips`: clips, uploads and playback, and the settings-bound create body
  (:func:`build_schemas`);
- :mod:`.multipart`: multipart sessions, part URLs, stored parts;
- :mod:`.events`: bucket event notifications;
- :mod:`.common`: the error answer and the probes;
- :mod:`.examples`: the OpenAPI document's examples.
"""

from __future__ import annotations

from advanced_notes.api.schemas.base import (
    BETWEEN,
    MAX_NOTE_ID_LENGTH,
    NOTE_ID_PATTERN,
    NOTE_ID_VALIDATORS,
    ONE_OF,
    SHA256_BASE64,
    MimeType,
    StrictBoolean,
    StrictSchema,
    UTCDateTime,
    is_storable_note_id,
)
from advanced_notes.api.schemas.clips import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    ApiSchemas,
    ClipEnvelopeSchema,
    ClipPageSchema,
    ClipSchema,
    CreatedClipSchema,
    DeletedSchema,
    IdempotencyHeaderSchema,
    ListClipsQuerySchema,
    NoteAudioSchema,
    PlaybackSchema,
    ProcessingField,
    ProcessingReasonSchema,
    ProcessingSchema,
    RenditionQuerySchema,
    UpdateClipSchema,
    UploadEnvelopeSchema,
    UploadSchema,
    build_schemas,
)
from advanced_notes.api.schemas.common import ErrorBodySchema, ErrorSchema, HealthSchema, ReadinessSchema
from advanced_notes.api.schemas.events import EventOutcomesSchema, S3EventSchema
from advanced_notes.api.schemas.examples import (
    ABORTED_EXAMPLE,
    CLIP_EXAMPLE,
    MULTIPART_SESSION_EXAMPLE,
    PENDING_EXAMPLE,
    PLAYBACK_EXAMPLE,
    SIGNED_PARTS_EXAMPLE,
    STORAGE_EVENT_EXAMPLE,
    STORED_PARTS_EXAMPLE,
    UPLOAD_EXAMPLE,
)
from advanced_notes.api.schemas.multipart import (
    AbortedSchema,
    MultipartSessionSchema,
    SignedPartSchema,
    SignedPartsSchema,
    SignPartsSchema,
    StoredPartSchema,
    StoredPartsSchema,
)

__all__ = [
    "ABORTED_EXAMPLE",
    "BETWEEN",
    "CLIP_EXAMPLE",
    "DEFAULT_PAGE_SIZE",
    "MAX_NOTE_ID_LENGTH",
    "MAX_PAGE_SIZE",
    "MULTIPART_SESSION_EXAMPLE",
    "NOTE_ID_PATTERN",
    "NOTE_ID_VALIDATORS",
    "ONE_OF",
    "PENDING_EXAMPLE",
    "PLAYBACK_EXAMPLE",
    "SHA256_BASE64",
    "SIGNED_PARTS_EXAMPLE",
    "STORAGE_EVENT_EXAMPLE",
    "STORED_PARTS_EXAMPLE",
    "UPLOAD_EXAMPLE",
    "AbortedSchema",
    "ApiSchemas",
    "ClipEnvelopeSchema",
    "ClipPageSchema",
    "ClipSchema",
    "CreatedClipSchema",
    "DeletedSchema",
    "ErrorBodySchema",
    "ErrorSchema",
    "EventOutcomesSchema",
    "HealthSchema",
    "IdempotencyHeaderSchema",
    "ListClipsQuerySchema",
    "MimeType",
    "MultipartSessionSchema",
    "NoteAudioSchema",
    "PlaybackSchema",
    "ProcessingField",
    "ProcessingReasonSchema",
    "ProcessingSchema",
    "ReadinessSchema",
    "RenditionQuerySchema",
    "S3EventSchema",
    "SignPartsSchema",
    "SignedPartSchema",
    "SignedPartsSchema",
    "StoredPartSchema",
    "StoredPartsSchema",
    "StrictBoolean",
    "StrictSchema",
    "UTCDateTime",
    "UpdateClipSchema",
    "UploadEnvelopeSchema",
    "UploadSchema",
    "build_schemas",
    "is_storable_note_id",
]

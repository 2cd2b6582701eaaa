"""``/api/audio-clips``: create an upload session, complete, read, list, play back."""

from __future__ import annotations

import uuid
from typing import Any

from marshmallow import RAISE

from advanced_notes.api import links
from advanced_notes.api.auth import current_owner
from advanced_notes.api.common import (
    NO_CLIP,
    PLAYBACK_HEADERS,
    ApiBlueprint,
    authenticated_blueprint,
    error_responses,
    playback_body,
    playback_headers,
    upload_body,
)
from advanced_notes.api.context import current_services
from advanced_notes.api.schemas import (
    CLIP_EXAMPLE,
    PENDING_EXAMPLE,
    PLAYBACK_EXAMPLE,
    UPLOAD_EXAMPLE,
    ApiSchemas,
    ClipEnvelopeSchema,
    ClipPageSchema,
    CreatedClipSchema,
    IdempotencyHeaderSchema,
    ListClipsQuerySchema,
    PlaybackSchema,
    RenditionQuerySchema,
    UpdateClipSchema,
    UploadEnvelopeSchema,
)


def clips_blueprint(schemas: ApiSchemas) -> ApiBlueprint:
    """The ``/api/audio-clips`` blueprint of one app (built per app by ``init_api``).

    Args:
        schemas: that app's settings-bound schemas (:func:`~advanced_notes.api.schemas.build_schemas`);
            ``schemas.create_clip`` validates and documents the create body.
    Returns:
        a new blueprint whose every route requires a bearer token; each view loads with a
        schema, calls the :class:`~advanced_notes.services.clips.ClipService`, and dumps with a schema.
    """
    blp = authenticated_blueprint("audio-clips", __name__, "Audio clips: upload sessions, completion, playback.")

    @blp.route("/audio-clips", methods=["POST"])
    @blp.doc(responses={201: {"links": links.CREATED}})
    @blp.arguments(schemas.create_clip())
    @blp.arguments(IdempotencyHeaderSchema(), location="headers")
    @blp.response(201, CreatedClipSchema, example={"clip": PENDING_EXAMPLE, "upload": UPLOAD_EXAMPLE})
    @error_responses(
        blp,
        {
            409: "conflict: the Idempotency-Key was used with other values.",
            422: "validation_error: the body failed validation.",
        },
    )
    def create_clip(body: dict[str, Any], headers: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
        """Create an upload session.

        Returns the pending clip and a presigned PUT: send the bytes to `upload.url` with
        exactly `upload.headers`, then call complete. With an `Idempotency-Key` header, a
        repeat returns the same clip (a freshly signed upload while it is pending) and the
        header `Idempotent-Replayed: true`.
        """
        session = current_services().uploads.create(
            current_owner(), idempotency_key=headers.get("idempotency_key"), **body
        )
        response_headers = {"Idempotent-Replayed": "true"} if session.replayed else {}
        return (
            {
                "clip": session.clip,
                "upload": upload_body(session.upload, session.clip.storage_key),
                "multipart": session.multipart,
            },
            201,
            response_headers,
        )

    @blp.route("/audio-clips", methods=["GET"])
    # unknown=RAISE: webargs ignores unknown query parameters by default, and a typo such
    # as ?noteId= would silently list every clip.
    @blp.arguments(ListClipsQuerySchema(), location="query", unknown=RAISE)
    @blp.response(200, ClipPageSchema, example={"clips": [CLIP_EXAMPLE], "next_cursor": None})
    @error_responses(blp, {422: "validation_error: bad filter, limit or cursor."})
    def list_clips(query: dict[str, Any]) -> dict[str, Any]:
        """List the caller's clips, newest first (keyset pages via `next_cursor`)."""
        page = current_services().clips.list(current_owner(), **query)
        return {"clips": page.clips, "next_cursor": page.next_cursor}

    @blp.route("/audio-clips/<uuid:clip_id>", methods=["GET"])
    @blp.response(200, ClipEnvelopeSchema)
    @error_responses(blp, {404: NO_CLIP})
    def get_clip(clip_id: uuid.UUID) -> dict[str, Any]:
        """Get one clip."""
        return {"clip": current_services().clips.get(current_owner(), clip_id)}

    @blp.route("/audio-clips/<uuid:clip_id>", methods=["PATCH"])
    @blp.doc(responses={200: {"links": links.UPDATED}})
    @blp.arguments(UpdateClipSchema())
    @blp.response(200, ClipEnvelopeSchema)
    @error_responses(blp, {404: NO_CLIP, 422: "validation_error: the body failed validation."})
    def update_clip(body: dict[str, Any], clip_id: uuid.UUID) -> dict[str, Any]:
        """Attach the clip to a note (`{"note_id": "..."}`) or detach it (`{"note_id": null}`)."""
        return {"clip": current_services().clips.set_note(current_owner(), clip_id, body["note_id"])}

    @blp.route("/audio-clips/<uuid:clip_id>", methods=["DELETE"])
    @blp.response(204)
    @error_responses(blp, {404: NO_CLIP})
    def delete_clip(clip_id: uuid.UUID) -> None:
        """Delete the clip and its object (the object now, or by the sweeper if the store is down)."""
        current_services().clips.delete(current_owner(), clip_id)

    @blp.route("/audio-clips/<uuid:clip_id>/upload-url", methods=["POST"])
    @blp.doc(responses={200: {"links": links.REFRESHED}})
    @blp.response(200, UploadEnvelopeSchema, example={"upload": UPLOAD_EXAMPLE})
    @error_responses(blp, {404: NO_CLIP, 409: "conflict: the clip is no longer pending."})
    def refresh_upload_url(clip_id: uuid.UUID) -> dict[str, Any]:
        """A freshly signed PUT URL for a pending clip whose previous URL expired."""
        session = current_services().uploads.refresh_upload(current_owner(), clip_id)
        return {"upload": upload_body(session.upload, session.clip.storage_key)}

    @blp.route("/audio-clips/<uuid:clip_id>/complete", methods=["POST"])
    @blp.doc(responses={200: {"links": links.COMPLETED}})
    @blp.response(200, ClipEnvelopeSchema, example={"clip": CLIP_EXAMPLE})
    @error_responses(
        blp,
        {
            404: NO_CLIP,
            409: "upload_missing (PUT first; clip stays pending) or conflict (clip rejected or expired).",
            422: "upload_rejected: details.reason is size_mismatch, checksum_mismatch, type_mismatch, not_audio, "
            "unreadable_audio or duration_exceeded; the clip is rejected and the object deleted.",
        },
    )
    def complete_clip(clip_id: uuid.UUID) -> dict[str, Any]:
        """Verify the uploaded object and mark the clip ready (idempotent)."""
        return {"clip": current_services().uploads.complete(current_owner(), clip_id)}

    @blp.route("/audio-clips/<uuid:clip_id>/playback", methods=["GET"])
    @blp.arguments(RenditionQuerySchema(), location="query", unknown=RAISE)
    @blp.response(200, PlaybackSchema, example=PLAYBACK_EXAMPLE, headers=PLAYBACK_HEADERS)
    @error_responses(
        blp,
        {
            404: NO_CLIP,
            409: "clip_not_ready (the clip is not ready) or rendition_not_ready (processing has not made the "
            "rendition yet, failed, or skipped it: the message says what to ask for).",
            422: "validation_error: unknown rendition.",
        },
    )
    def playback(query: dict[str, Any], clip_id: uuid.UUID) -> tuple[dict[str, Any], int, dict[str, str]]:
        """A presigned GET URL for a ready clip (HTTP Range supported by the store).

        `?rendition=` picks what to play: `original` (default, the bytes as uploaded) or a
        rendition the processing stage made (listed in the clip's `processing.renditions`);
        the store answers with that rendition's `Content-Type`.
        The URL is the same for every request in a time window (`S3_PRESIGN_GET_WINDOW_SECONDS`),
        so browsers and CDNs reuse the audio they fetched; `Cache-Control` says how long this
        answer may be reused.
        """
        playback = current_services().clips.playback(current_owner(), clip_id, query["rendition"])
        return playback_body(playback), 200, playback_headers(playback)

    @blp.route("/audio-clips/<uuid:clip_id>/peaks", methods=["GET"])
    @blp.response(200, PlaybackSchema, example=PLAYBACK_EXAMPLE, headers=PLAYBACK_HEADERS)
    @error_responses(
        blp,
        {
            404: NO_CLIP,
            409: "rendition_not_ready (processing is not done, or failed) or clip_not_ready (not ready).",
        },
    )
    def peaks(clip_id: uuid.UUID) -> tuple[dict[str, Any], int, dict[str, str]]:
        """A presigned GET URL of the clip's waveform peaks.

        The JSON is BBC audiowaveform's format version 2 (`Content-Type: application/json`):
        `{"version": 2, "channels": 1, "sample_rate", "samples_per_pixel", "bits": 8, "length",
        "data": [min, max, ...]}`, loaded as is by wavesurfer.js and peaks.js.
        """
        playback = current_services().clips.peaks(current_owner(), clip_id)
        return playback_body(playback), 200, playback_headers(playback)

    return blp

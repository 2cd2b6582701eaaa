"""``/api/notes/<note_id>/audio``: a note's primary clip."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE

from advanced_notes.api.auth import current_owner
from advanced_notes.api.common import (
    PLAYBACK_HEADERS,
    ApiBlueprint,
    authenticated_blueprint,
    error_responses,
    playback_body,
    playback_headers,
)
from advanced_notes.api.context import current_services
from advanced_notes.api.schemas import (
    CLIP_EXAMPLE,
    PLAYBACK_EXAMPLE,
    DeletedSchema,
    NoteAudioSchema,
    RenditionQuerySchema,
    is_storable_note_id,
)
from advanced_notes.domain.errors import NotFound


def _check_note_id(note_id: str) -> None:
    # A note id no clip can carry (too long, or with NUL) has no audio.
    if not is_storable_note_id(note_id):
        raise NotFound("The note has no ready audio clip.")


def notes_blueprint() -> ApiBlueprint:
    """The ``/api/notes/<note_id>/audio`` blueprint of one app (built per app by ``init_api``).

    It needs no settings; it is built per app like every API blueprint (docs/design-choices.md).

    Returns:
        a new blueprint whose every route requires a bearer token.
    """
    blp = authenticated_blueprint("notes", __name__, "Audio of a note.")

    # `path` so opaque note ids may contain "/" (sent URL-encoded).
    @blp.route("/notes/<path:note_id>/audio", methods=["GET"])
    @blp.response(
        200, NoteAudioSchema, example={"clip": CLIP_EXAMPLE, "playback": PLAYBACK_EXAMPLE}, headers=PLAYBACK_HEADERS
    )
    @blp.arguments(RenditionQuerySchema(), location="query", unknown=RAISE)
    @error_responses(
        blp,
        {
            404: "not_found: the note has no ready clip.",
            409: "rendition_not_ready: the rendition is not made yet, failed, or was skipped (the message says "
            "what to ask for).",
            422: "validation_error: unknown rendition.",
        },
    )
    def note_audio(query: dict[str, Any], note_id: str) -> tuple[dict[str, Any], int, dict[str, str]]:
        """The note's primary clip (most recent ready by created_at) with a playback URL.

        `?rendition=` as for playback (default `original`). `Cache-Control` says how long
        this answer may be reused (as for playback).
        """
        _check_note_id(note_id)
        playback = current_services().clips.note_audio(current_owner(), note_id, query["rendition"])
        return {"clip": playback.clip, "playback": playback_body(playback)}, 200, playback_headers(playback)

    @blp.route("/notes/<path:note_id>/audio", methods=["DELETE"])
    @blp.response(200, DeletedSchema, example={"deleted": 2})
    @error_responses(blp)
    def delete_note_audio(note_id: str) -> dict[str, Any]:
        """Delete every clip of the note (any status) and their objects."""
        if not is_storable_note_id(note_id):
            return {"deleted": 0}  # no clip can have such a note id
        return {"deleted": current_services().clips.delete_note_audio(current_owner(), note_id)}

    return blp

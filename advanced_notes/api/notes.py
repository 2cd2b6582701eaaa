"""``/api/notes/<note_id>/audio``: a note's primary clip."""

from __future__ import annotations

from typing import Any

from ..auth import current_owner
from ..schemas import DeletedSchema, NoteAudioSchema
from .common import authenticated_blueprint, clip_service, error_responses, playback_body

blp = authenticated_blueprint("notes", __name__, "Audio of a note.")


# `path` so opaque note ids may contain "/" (sent URL-encoded).
@blp.route("/notes/<path:note_id>/audio", methods=["GET"])
@blp.response(200, NoteAudioSchema)
@error_responses(blp, {404: "not_found: the note has no ready clip."})
def note_audio(note_id: str) -> dict[str, Any]:
    """The note's primary clip (most recent ready by created_at) with a playback URL."""
    playback = clip_service().note_audio(current_owner(), note_id)
    return {"clip": playback.clip, "playback": playback_body(playback)}


@blp.route("/notes/<path:note_id>/audio", methods=["DELETE"])
@blp.response(200, DeletedSchema)
@error_responses(blp)
def delete_note_audio(note_id: str) -> dict[str, Any]:
    """Delete every clip of the note (any status) and their objects."""
    return {"deleted": clip_service().delete_note_audio(current_owner(), note_id)}

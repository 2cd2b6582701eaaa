"""OpenAPI links: what a client can do next with the clip an answer is about.

Each response that names a clip links to the operations that take it, so the document
shows the flows (create -> PUT -> complete -> playback -> delete; multipart: create ->
sign parts -> PUT parts -> list parts -> complete; S3-shaped multipart for Uppy) and a
stateful fuzzer (bench/fuzz.py) follows them. A link takes the clip id from the answer
(``$response.body#/clip/id``) or, for answers that do not repeat it, from the request
(``$request.path.clip_id``); the note links take ``note_id`` from the clip.

Spec: OpenAPI 3.0.3 "Link Object" (``operationRef`` to ``#/paths/...``, ``parameters`` and
``requestBody`` as runtime expressions).
"""

from __future__ import annotations

from typing import Any

#: The clip id of an answer that has a ``clip``, and of a request on ``/audio-clips/{clip_id}/...``.
CLIP_ID_FROM_BODY = "$response.body#/clip/id"
CLIP_ID_FROM_PATH = "$request.path.clip_id"

_CLIP = "/api/audio-clips/{clip_id}"

#: (path, method, description) of each operation on one clip, by link name.
_TARGETS: dict[str, tuple[str, str, str]] = {
    "GetClip": (_CLIP, "get", "Read the clip."),
    "CompleteClip": (f"{_CLIP}/complete", "post", "Complete after the PUT (or the part PUTs)."),
    "Playback": (f"{_CLIP}/playback", "get", "Play the ready clip."),
    "Peaks": (f"{_CLIP}/peaks", "get", "The waveform peaks, once processed."),
    "RefreshUpload": (f"{_CLIP}/upload-url", "post", "Re-sign the PUT."),
    "UpdateClip": (_CLIP, "patch", "Attach to or detach from a note."),
    "DeleteClip": (_CLIP, "delete", "Delete the clip."),
    "SignParts": (f"{_CLIP}/multipart/parts", "post", "Sign part URLs (multipart)."),
    "ListParts": (f"{_CLIP}/multipart/parts", "get", "The stored parts and those missing (multipart)."),
    "AbortMultipart": (f"{_CLIP}/multipart", "delete", "Abort the multipart upload."),
    "InitiateS3Multipart": (f"{_CLIP}/multipart/s3", "post", "S3's CreateMultipartUpload answer (Uppy)."),
    "ListS3Parts": (f"{_CLIP}/multipart/s3", "get", "S3's ListParts answer (Uppy)."),
    "CompleteS3Multipart": (f"{_CLIP}/multipart/s3/complete", "post", "S3's CompleteMultipartUpload (Uppy)."),
}


def operation_ref(path: str, method: str) -> str:
    """``#/paths/<path, JSON-pointer escaped>/<method>``: an OpenAPI ``operationRef``."""
    return f"#/paths/{path.replace('~', '~0').replace('/', '~1')}/{method}"


def clip_links(*names: str, clip_id: str = CLIP_ID_FROM_BODY) -> dict[str, dict[str, Any]]:
    """Link Objects to the named operations on one clip (names: keys of ``_TARGETS``).

    Args:
        names: link names, e.g. ``"GetClip"``, ``"CompleteClip"``.
        clip_id: the runtime expression giving the clip id.
    Returns:
        ``{name: {"operationRef", "parameters": {"clip_id": ...}, "description"}}``.
    Raises:
        KeyError: an unknown name.
    """
    links = {}
    for name in names:
        path, method, description = _TARGETS[name]
        links[name] = {
            "operationRef": operation_ref(path, method),
            "parameters": {"clip_id": clip_id},
            "description": description,
        }
    return links


def note_audio_link(note_id: str = "$response.body#/clip/note_id") -> dict[str, dict[str, Any]]:
    """The link to the audio of the clip's note (``GET /api/notes/{note_id}/audio``)."""
    return {
        "NoteAudio": {
            "operationRef": operation_ref("/api/notes/{note_id}/audio", "get"),
            "parameters": {"note_id": note_id},
            "description": "The audio of the note the clip is attached to.",
        }
    }


#: After create (201): every step of either upload, and the note's audio.
CREATED = {**clip_links(*_TARGETS), **note_audio_link()}
#: After complete (200): the ready clip.
COMPLETED = {
    **clip_links("GetClip", "Playback", "UpdateClip", "DeleteClip"),
    **note_audio_link(),
}
#: After a PATCH (200): the clip and its (new) note.
UPDATED = {**clip_links("GetClip", "CompleteClip", "Playback", "DeleteClip"), **note_audio_link()}
#: After re-signing the PUT (200): PUT again, then complete.
REFRESHED = clip_links("CompleteClip", "GetClip", "DeleteClip", clip_id=CLIP_ID_FROM_PATH)
#: After signing parts (200): PUT them, then see what is stored, complete or abort.
PARTS_SIGNED = clip_links("ListParts", "CompleteClip", "AbortMultipart", clip_id=CLIP_ID_FROM_PATH)
#: After listing the stored parts (200): sign the missing ones, complete or abort.
PARTS_LISTED = {
    "SignMissingParts": {
        **clip_links("SignParts", clip_id=CLIP_ID_FROM_PATH)["SignParts"],
        "requestBody": {"part_numbers": "$response.body#/missing_parts"},
        "description": "Sign the parts still missing.",
    },
    **clip_links("CompleteClip", "AbortMultipart", clip_id=CLIP_ID_FROM_PATH),
}
#: After aborting (200): the clip is pending without an upload: read or delete it.
ABORTED = clip_links("GetClip", "DeleteClip", clip_id=CLIP_ID_FROM_PATH)
#: The S3-shaped steps (XML answers): Uppy's order, then the clip.
S3_INITIATED = clip_links("ListS3Parts", "CompleteS3Multipart", "AbortMultipart", clip_id=CLIP_ID_FROM_PATH)
S3_LISTED = clip_links("CompleteS3Multipart", "AbortMultipart", clip_id=CLIP_ID_FROM_PATH)
S3_COMPLETED = clip_links("GetClip", "Playback", "DeleteClip", clip_id=CLIP_ID_FROM_PATH)

"""A small Python client for the API: the three-step upload, playback, note audio.

Backs the ``advanced-notes upload`` command and can be imported by apps and scripts::

    client = AudioClipsClient("http://127.0.0.1:8000", token)
    result = client.upload_file("note.m4a", note_id="n1")
    print(result["playback"]["url"])
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable
from typing import Any, BinaryIO

import requests
from tqdm.utils import CallbackIOWrapper

from .mime import mime_type_for_filename

#: Read size for hashing and streaming, bytes.
CHUNK_BYTES = 256 * 1024


class ApiClientError(RuntimeError):
    """An error answer of the API (or the store) with its status, code and details."""

    def __init__(self, status: int, code: str, message: str, details: Any = None):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.details = status, code, message, details


def sha256_base64(path: str) -> str:
    """Base64 SHA-256 of the file at ``path`` (the ``checksum_sha256`` the API takes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return base64.b64encode(digest.digest()).decode()


class AudioClipsClient:
    """HTTP client of the audio-clips API.

    Args:
        base_url: e.g. ``http://127.0.0.1:8000``.
        token: a bearer JWT.
        timeout: seconds per API call (connect and read).
        session: a ``requests.Session`` to reuse connections.
    """

    def __init__(self, base_url: str, token: str, timeout: float = 30.0,
                 session: requests.Session | None = None):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.http = session or requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, self.base_url + path, timeout=self.timeout, **kwargs)
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
            except (ValueError, KeyError, TypeError):
                error = {"code": "http_error", "message": response.text[:200]}
            raise ApiClientError(response.status_code, error.get("code", "?"), error.get("message", ""),
                                 error.get("details"))
        return response.json() if response.content else None

    def create(self, *, mime_type: str, bytes: int, note_id: str | None = None,
               duration_ms: int | None = None, checksum_sha256: str | None = None) -> dict[str, Any]:
        """``POST /api/audio-clips`` -> ``{clip, upload}``."""
        body = {"mime_type": mime_type, "bytes": bytes, "note_id": note_id}
        if duration_ms is not None:
            body["duration_ms"] = duration_ms
        if checksum_sha256 is not None:
            body["checksum_sha256"] = checksum_sha256
        return self._call("POST", "/api/audio-clips", json=body)

    def put(self, upload: dict[str, Any], body: BinaryIO, timeout: float = 300.0) -> None:
        """PUT ``body`` to the presigned ``upload.url`` with exactly ``upload.headers``.

        Raises:
            ApiClientError: the store refused the PUT (code ``store_error``, S3's XML in message).
        """
        response = requests.put(upload["url"], data=body, headers=upload["headers"], timeout=timeout)
        if response.status_code >= 300:
            raise ApiClientError(response.status_code, "store_error", response.text[:500])

    def complete(self, clip_id: str) -> dict[str, Any]:
        """``POST /api/audio-clips/<id>/complete`` -> ``{clip}``."""
        return self._call("POST", f"/api/audio-clips/{clip_id}/complete")

    def get(self, clip_id: str) -> dict[str, Any]:
        """``GET /api/audio-clips/<id>`` -> ``{clip}``."""
        return self._call("GET", f"/api/audio-clips/{clip_id}")

    def playback(self, clip_id: str) -> dict[str, Any]:
        """``GET /api/audio-clips/<id>/playback`` -> ``{url, expires_at}``."""
        return self._call("GET", f"/api/audio-clips/{clip_id}/playback")

    def note_audio(self, note_id: str) -> dict[str, Any]:
        """``GET /api/notes/<note_id>/audio`` -> ``{clip, playback}``."""
        return self._call("GET", f"/api/notes/{requests.utils.quote(note_id, safe='')}/audio")

    def upload_file(self, path: str, *, note_id: str | None = None, mime_type: str | None = None,
                    on_progress: Callable[[int], object] | None = None) -> dict[str, Any]:
        """Upload the file at ``path`` through the three steps and return ``{clip, playback}``.

        Args:
            path: an audio file.
            note_id: attach the clip to this note.
            mime_type: override the type guessed from the file extension.
            on_progress: called with the number of bytes just sent, during the PUT.
        Raises:
            ValueError: the type cannot be guessed from the extension.
            ApiClientError: any step failed.
        """
        mime_type = mime_type or mime_type_for_filename(path)
        if mime_type is None:
            raise ValueError(f"cannot tell the audio type of {path!r}; pass mime_type")
        size = os.path.getsize(path)
        created = self.create(mime_type=mime_type, bytes=size, note_id=note_id,
                              checksum_sha256=sha256_base64(path))
        with open(path, "rb") as f:
            # requests takes the size from the real file (fileno) through the wrapper.
            body = CallbackIOWrapper(on_progress, f, "read") if on_progress else f
            self.put(created["upload"], body)
        clip = self.complete(created["clip"]["id"])["clip"]
        return {"clip": clip, "playback": self.playback(clip["id"])}

"""A small Python client for the API: the three-step upload, playback, note audio.

Backs the ``advanced-notes upload/play/note-audio`` commands and can be imported by
apps and scripts::

    client = AudioClipsClient("http://127.0.0.1:8000", token)
    result = client.upload_file("note.m4a", note_id="n1")
    print(result["playback"]["url"])

Transient failures are retried with exponential backoff: API calls on connection
errors, 429, 502, 503 and 504 (honouring ``Retry-After``); creating is safe to retry
because every create carries an Idempotency-Key. The PUT to the bucket is retried on
connection errors and 5xx, and an expired PUT URL is re-signed through
``POST /api/audio-clips/<id>/upload-url``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from types import ModuleType
from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from tqdm.utils import CallbackIOWrapper
from urllib3.util.retry import Retry

from advanced_notes.domain.mime import mime_type_for_filename

#: Read size for hashing, bytes.
CHUNK_BYTES = 256 * 1024
#: The type to declare for a sniffed container when the file name says nothing.
MIME_BY_CONTAINER = {
    "mp4": "audio/mp4",
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "ogg": "audio/ogg",
    "webm": "audio/webm",
    "flac": "audio/flac",
    "aac": "audio/aac",
}
#: Attempts for the PUT to the bucket, and for complete when the store is briefly behind.
PUT_ATTEMPTS = 5
COMPLETE_ATTEMPTS = 4


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


def _audio_parsing() -> ModuleType | None:
    """The audio sniffing and parsing module, or None where its libraries are not installed.

    The SDK needs only ``requests`` (and ``tqdm``): a client installed without mutagen,
    enzyme and puremagic takes the type from the file name and leaves the duration to
    the server, which measures it at complete anyway.
    """
    try:
        from advanced_notes.domain import audio
    except ImportError:
        return None
    return audio


def describe_file(path: str) -> dict[str, Any]:
    """What to declare for an audio file: ``mime_type``, ``bytes``, ``duration_ms``, ``checksum_sha256``.

    The type comes from the extension, else from the file's first bytes; the duration
    is parsed from the file (None when the container does not say).

    Raises:
        ValueError: the file is not audio of a known container.
    """
    audio = _audio_parsing()
    with open(path, "rb") as f:
        container = audio.sniff_container(f.read(audio.SNIFF_BYTES)) if audio else None
        mime_type = mime_type_for_filename(path) or (MIME_BY_CONTAINER.get(container) if container else None)
        if mime_type is None:
            raise ValueError(f"{path!r} is not audio of a known type")
        duration_ms = None  # the server measures and decides; the declaration is optional
        if audio and container:
            with suppress(audio.UnreadableAudio):
                duration_ms = audio.measure_duration_ms(f, container)
    return {
        "mime_type": mime_type,
        "bytes": os.path.getsize(path),
        "duration_ms": duration_ms,
        "checksum_sha256": sha256_base64(path),
    }


def _expired(response: requests.Response) -> bool:
    # S3 (and R2, Spaces, MinIO) answer an expired presigned URL with 403 "Request has expired".
    return response.status_code == 403 and "expired" in response.text.lower()


class AudioClipsClient:
    """HTTP client of the audio-clips API.

    Args:
        base_url: e.g. ``http://127.0.0.1:8000``.
        token: a bearer JWT.
        timeout: seconds per API call (connect and read).
        retries: attempts after the first for transient API failures.
        backoff_seconds: first backoff delay; doubles per retry.
    """

    def __init__(
        self, base_url: str, token: str, timeout: float = 30.0, retries: int = 5, backoff_seconds: float = 0.5
    ):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.backoff_seconds = backoff_seconds
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"
        retry = Retry(
            total=retries,
            backoff_factor=backoff_seconds,
            status_forcelist=(429, 502, 503, 504),
            allowed_methods=None,
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        self.http.mount("http://", HTTPAdapter(max_retries=retry))
        self.http.mount("https://", HTTPAdapter(max_retries=retry))

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self.http.request(method, self.base_url + path, timeout=self.timeout, **kwargs)
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
            except (ValueError, KeyError, TypeError):
                error = {"code": "http_error", "message": response.text[:200]}
            raise ApiClientError(
                response.status_code, error.get("code", "?"), error.get("message", ""), error.get("details")
            )
        body: dict[str, Any] = response.json() if response.content else {}
        return body

    def create(
        self,
        *,
        mime_type: str,
        bytes: int,
        note_id: str | None = None,
        duration_ms: int | None = None,
        checksum_sha256: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """``POST /api/audio-clips`` -> ``{clip, upload}`` (with an Idempotency-Key, new unless given)."""
        body = {"mime_type": mime_type, "bytes": bytes, "note_id": note_id}
        if duration_ms is not None:
            body["duration_ms"] = duration_ms
        if checksum_sha256 is not None:
            body["checksum_sha256"] = checksum_sha256
        headers = {"Idempotency-Key": idempotency_key or str(uuid.uuid4())}
        return self._call("POST", "/api/audio-clips", json=body, headers=headers)

    def refresh_upload(self, clip_id: str) -> dict[str, Any]:
        """``POST /api/audio-clips/<id>/upload-url`` -> a freshly signed ``upload``."""
        upload: dict[str, Any] = self._call("POST", f"/api/audio-clips/{clip_id}/upload-url")["upload"]
        return upload

    def put(
        self,
        clip_id: str,
        upload: dict[str, Any],
        path: str,
        on_progress: Callable[[int], object] | None = None,
        timeout: float = 300.0,
    ) -> None:
        """PUT the file to ``upload.url`` with exactly ``upload.headers``; retry, re-sign when expired.

        Args:
            clip_id: the clip (to re-sign an expired URL).
            upload: the ``upload`` object from create.
            path: the file to send; on_progress: called with bytes sent.
        Raises:
            ApiClientError: the store refused the PUT (code ``store_error``; S3's XML in message).
        """
        for attempt in range(PUT_ATTEMPTS):
            try:
                with open(path, "rb") as f:
                    # requests takes the size from the real file (fileno) through the wrapper.
                    body = CallbackIOWrapper(on_progress, f, "read") if on_progress else f
                    response = requests.put(upload["url"], data=body, headers=upload["headers"], timeout=timeout)
            except (requests.ConnectionError, requests.Timeout):
                response = None
            if response is not None and response.status_code < 300:
                return
            if response is not None and _expired(response):
                upload = self.refresh_upload(clip_id)
                continue
            if response is not None and response.status_code < 500:
                raise ApiClientError(response.status_code, "store_error", response.text[:500])
            time.sleep(self.backoff_seconds * 2**attempt)
        raise ApiClientError(503, "store_error", f"the PUT failed {PUT_ATTEMPTS} times")

    def complete(self, clip_id: str) -> dict[str, Any]:
        """``POST /api/audio-clips/<id>/complete`` -> ``{clip}``; a brief ``upload_missing`` is retried."""
        for attempt in range(COMPLETE_ATTEMPTS):
            try:
                return self._call("POST", f"/api/audio-clips/{clip_id}/complete")
            except ApiClientError as exc:
                # Some stores list a fresh object a moment after the PUT returns.
                if exc.code != "upload_missing" or attempt == COMPLETE_ATTEMPTS - 1:
                    raise
                time.sleep(self.backoff_seconds * 2**attempt)
        raise AssertionError("unreachable")

    def get(self, clip_id: str) -> dict[str, Any]:
        """``GET /api/audio-clips/<id>`` -> ``{clip}``."""
        return self._call("GET", f"/api/audio-clips/{clip_id}")

    def playback(self, clip_id: str) -> dict[str, Any]:
        """``GET /api/audio-clips/<id>/playback`` -> ``{url, expires_at}``."""
        return self._call("GET", f"/api/audio-clips/{clip_id}/playback")

    def note_audio(self, note_id: str) -> dict[str, Any]:
        """``GET /api/notes/<note_id>/audio`` -> ``{clip, playback}``."""
        return self._call("GET", f"/api/notes/{quote(note_id, safe='')}/audio")

    def upload_file(
        self,
        path: str,
        *,
        note_id: str | None = None,
        mime_type: str | None = None,
        on_progress: Callable[[int], object] | None = None,
    ) -> dict[str, Any]:
        """Upload the file at ``path`` through the three steps and return ``{clip, playback}``.

        Declares type, size, duration and SHA-256 from the file (see :func:`describe_file`).

        Args:
            path: an audio file.
            note_id: attach the clip to this note.
            mime_type: override the detected type.
            on_progress: called with the number of bytes just sent during the PUT (it may
                report a file more than once when the PUT is retried).
        Raises:
            ValueError: not audio of a known type.
            ApiClientError: a step failed for good.
        """
        declared = describe_file(path)
        if mime_type:
            declared["mime_type"] = mime_type
        created = self.create(note_id=note_id, **declared)
        clip_id = created["clip"]["id"]

        if created["upload"] is not None:  # None: a replay found the clip already verified
            self.put(clip_id, created["upload"], path, on_progress)
        clip = self.complete(clip_id)["clip"]
        return {"clip": clip, "playback": self.playback(clip_id)}


__all__ = ["ApiClientError", "AudioClipsClient", "describe_file", "sha256_base64"]

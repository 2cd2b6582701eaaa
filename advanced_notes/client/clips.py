"""The client: the three steps of an upload (create, send, complete), playback, note
audio, and the resume of an interrupted upload."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from advanced_notes.client.files import describe_file
from advanced_notes.client.parts import MULTIPART_THRESHOLD_BYTES, PARALLEL_PARTS, MultipartUploads
from advanced_notes.client.session import ApiClientError
from advanced_notes.client.single import SinglePutUploads

#: Attempts for complete when the store is briefly behind.
COMPLETE_ATTEMPTS = 4


class AudioClipsClient(SinglePutUploads, MultipartUploads):
    """HTTP client of the audio-clips API.

    Args:
        base_url: e.g. ``http://127.0.0.1:8000``.
        token: a bearer JWT.
        timeout: seconds per API call to read the answer.
        retries: attempts after the first for transient API failures (not for a
            connection refused or not accepted within ``connect_timeout``: those fail at once).
        backoff_seconds: first backoff delay; doubles per retry.
        connect_timeout: seconds to wait for the API to accept a connection.
    """

    def create(
        self,
        *,
        mime_type: str,
        bytes: int,
        note_id: str | None = None,
        duration_ms: int | None = None,
        checksum_sha256: str | None = None,
        idempotency_key: str | None = None,
        multipart: bool | None = None,
    ) -> dict[str, Any]:
        """``POST /api/audio-clips`` -> ``{clip, upload, multipart}`` (with an Idempotency-Key, new unless given).

        ``multipart``: True asks for a multipart upload; None lets the server decide.
        """
        body: dict[str, Any] = {"mime_type": mime_type, "bytes": bytes, "note_id": note_id}
        if multipart is not None:
            body["multipart"] = multipart
        if duration_ms is not None:
            body["duration_ms"] = duration_ms
        if checksum_sha256 is not None:
            body["checksum_sha256"] = checksum_sha256
        headers = {"Idempotency-Key": idempotency_key or str(uuid.uuid4())}
        return self._call("POST", "/api/audio-clips", json=body, headers=headers)

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
        multipart_threshold: int = MULTIPART_THRESHOLD_BYTES,
        parallel: int = PARALLEL_PARTS,
        on_created: Callable[[dict[str, Any]], object] | None = None,
        before_complete: Callable[[str], object] | None = None,
    ) -> dict[str, Any]:
        """Upload the file at ``path`` through the three steps and return ``{clip, playback}``.

        Declares type, size, duration and SHA-256 from the file (see :func:`describe_file`).
        From ``multipart_threshold`` bytes on, asks for a multipart upload (without the
        SHA-256, which a multipart upload cannot bind) and sends ``parallel`` parts at once.

        Args:
            path: an audio file.
            note_id: attach the clip to this note.
            mime_type: override the detected type.
            on_progress: called with the number of bytes just sent during the PUT (it may
                report a file more than once when the PUT is retried).
            multipart_threshold: bytes from which the file goes up in parts.
            parallel: parts in flight at once.
            on_created: called with the create answer (e.g. to print the clip id to resume with).
            before_complete: called with the clip id once every byte is sent, before complete.
        Raises:
            ValueError: not audio of a known type.
            ApiClientError: a step failed for good.
        """
        declared = describe_file(path)
        if mime_type:
            declared["mime_type"] = mime_type
        multipart = True if declared["bytes"] >= multipart_threshold else None
        if multipart:
            declared["checksum_sha256"] = None
        created = self.create(note_id=note_id, multipart=multipart, **declared)
        clip_id = created["clip"]["id"]
        if on_created:
            on_created(created)
        if created.get("multipart"):
            session = created["multipart"]
            numbers = list(range(1, session["part_count"] + 1))
            self.put_parts(clip_id, session, path, numbers, parallel=parallel, on_progress=on_progress)
        elif created["upload"] is not None:  # None: a replay found the clip already verified
            self.put(clip_id, created["upload"], path, on_progress)
        if before_complete:
            before_complete(clip_id)
        clip = self.complete(clip_id)["clip"]
        return {"clip": clip, "playback": self.playback(clip_id)}

    def resume_file(
        self,
        clip_id: str,
        path: str,
        *,
        parallel: int = PARALLEL_PARTS,
        on_progress: Callable[[int], object] | None = None,
        on_resume: Callable[[dict[str, Any]], object] | None = None,
        before_complete: Callable[[str], object] | None = None,
    ) -> dict[str, Any]:
        """Finish an interrupted upload of ``path`` to clip ``clip_id``; ``{clip, playback}``.

        For a multipart clip, asks the server which parts the store holds and sends only
        the missing ones, then completes. A clip uploaded in one PUT is completed, and
        PUT again first when the store lacks it. A clip already ready is only played back.

        Args:
            on_progress: called with the bytes of the parts already stored, then of each part sent.
            on_resume: called with the stored-parts answer before sending (multipart only).
            before_complete: called with the clip id before complete.
        Raises:
            ValueError: the file's size differs from the clip's declared size.
            ApiClientError: the clip is not a pending multipart clip, or a step failed.
        """
        clip = self.get(clip_id)["clip"]
        if clip["status"] != "ready":
            if os.path.getsize(path) != clip["bytes"]:
                raise ValueError(f"{path!r} has {os.path.getsize(path)} bytes; clip {clip_id} declared {clip['bytes']}")
            try:
                stored = self.list_parts(clip_id)
            except ApiClientError as exc:
                if exc.status != 409 or (exc.details or {}).get("multipart") is not False:
                    raise
                return self._resume_single(clip_id, path, on_progress, before_complete)
            if on_resume:
                on_resume(stored)
            session = stored["multipart"]
            last = clip["bytes"] - session["part_size"] * (session["part_count"] - 1)

            def expected(n: int) -> int:
                return int(session["part_size"]) if n < session["part_count"] else int(last)

            # Parts of the wrong size (a store that does not enforce signed lengths) go again.
            good = [p for p in stored["parts"] if p["size"] == expected(p["part_number"])]
            todo = sorted(
                set(stored["missing_parts"])
                | {p["part_number"] for p in stored["parts"]} - {p["part_number"] for p in good}
            )
            if on_progress:
                on_progress(sum(p["size"] for p in good))
            self.put_parts(clip_id, session, path, todo, parallel=parallel, on_progress=on_progress)
            if before_complete:
                before_complete(clip_id)
            clip = self.complete(clip_id)["clip"]
        return {"clip": clip, "playback": self.playback(clip_id)}

    def _resume_single(
        self,
        clip_id: str,
        path: str,
        on_progress: Callable[[int], object] | None,
        before_complete: Callable[[str], object] | None,
    ) -> dict[str, Any]:
        """Complete a pending one-PUT clip, PUTting the file first when the store lacks it."""
        if before_complete:
            before_complete(clip_id)
        try:
            clip = self._call("POST", f"/api/audio-clips/{clip_id}/complete")["clip"]
        except ApiClientError as exc:
            if exc.code != "upload_missing":
                raise
            self.put(clip_id, self.refresh_upload(clip_id), path, on_progress)
            clip = self.complete(clip_id)["clip"]
        return {"clip": clip, "playback": self.playback(clip_id)}

"""A small Python client for the API: the three-step upload, playback, note audio.

Backs the ``advanced-notes upload/play/note-audio`` commands and can be imported by
apps and scripts::

    client = AudioClipsClient("http://127.0.0.1:8000", token)
    result = client.upload_file("note.m4a", note_id="n1")
    print(result["playback"]["url"])

Transient failures are retried with exponential backoff: API calls on read errors,
429, 502, 503 and 504 (honouring ``Retry-After``); creating is safe to retry because
every create carries an Idempotency-Key. A server that refuses the connection, or does
not accept it within ``CONNECT_TIMEOUT_SECONDS``, is an error at once: nothing answers
there, and waiting would only delay saying so. The PUT to the bucket is retried on
connection errors and 5xx, and an expired PUT URL is re-signed through
``POST /api/audio-clips/<id>/upload-url``.

Files of at least ``MULTIPART_THRESHOLD_BYTES`` go up in parts (docs/multipart.md):
several parts in parallel, each retried on its own (an expired part URL is re-signed),
and an interrupted upload resumes with :meth:`AudioClipsClient.resume_file`, which asks
the server which parts the store already holds and sends only the others. A
``KeyboardInterrupt`` stops the upload at once: parts in flight are abandoned (the store
keeps only whole parts, and the resume sends them again).
"""

from __future__ import annotations

import base64
import hashlib
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from contextlib import suppress
from types import ModuleType
from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from tqdm.utils import CallbackIOWrapper
from urllib3.util.retry import Retry

from advanced_notes.domain.mime import CONTAINERS, mime_type_for_filename

#: Read size for hashing, bytes.
CHUNK_BYTES = 256 * 1024
#: Attempts for the PUT to the bucket, and for complete when the store is briefly behind.
PUT_ATTEMPTS = 5
COMPLETE_ATTEMPTS = 4
#: Files of at least this many bytes are uploaded in parts (the AWS CLI uses 8 MiB; a
#: part of a phone recording is worth resuming from 16 MiB on).
MULTIPART_THRESHOLD_BYTES = 16 * 1024 * 1024
#: Parts sent at once; parts signed per request.
PARALLEL_PARTS = 4
SIGN_BATCH = 100
#: Seconds to wait for the API to accept a connection (loopback and LAN take milliseconds).
CONNECT_TIMEOUT_SECONDS = 2.0


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
        mime_type = mime_type_for_filename(path) or (CONTAINERS[container].mime_type if container else None)
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
        timeout: seconds per API call to read the answer.
        retries: attempts after the first for transient API failures (not for a
            connection refused or not accepted within ``connect_timeout``: those fail at once).
        backoff_seconds: first backoff delay; doubles per retry.
        connect_timeout: seconds to wait for the API to accept a connection.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        timeout: float = 30.0,
        retries: int = 5,
        backoff_seconds: float = 0.5,
        connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
    ):
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout, timeout)
        self.backoff_seconds = backoff_seconds
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"
        retry = Retry(
            total=retries,
            connect=0,
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

    # -- multipart ------------------------------------------------------------------

    def sign_parts(self, clip_id: str, part_numbers: Iterable[int]) -> list[dict[str, Any]]:
        """``POST /api/audio-clips/<id>/multipart/parts`` -> the signed parts (``url``, ``headers``)."""
        parts: list[dict[str, Any]] = self._call(
            "POST", f"/api/audio-clips/{clip_id}/multipart/parts", json={"part_numbers": list(part_numbers)}
        )["parts"]
        return parts

    def list_parts(self, clip_id: str) -> dict[str, Any]:
        """``GET /api/audio-clips/<id>/multipart/parts`` -> ``{multipart, parts, missing_parts}``."""
        return self._call("GET", f"/api/audio-clips/{clip_id}/multipart/parts")

    def abort(self, clip_id: str) -> dict[str, Any]:
        """``DELETE /api/audio-clips/<id>/multipart``: abort the upload (its parts are freed)."""
        return self._call("DELETE", f"/api/audio-clips/{clip_id}/multipart")

    def put_parts(
        self,
        clip_id: str,
        session: dict[str, Any],
        path: str,
        part_numbers: list[int],
        *,
        parallel: int = PARALLEL_PARTS,
        on_progress: Callable[[int], object] | None = None,
        on_part: Callable[[int], object] | None = None,
        timeout: float = 300.0,
    ) -> None:
        """PUT parts ``part_numbers`` of the file, ``parallel`` at a time, each retried on its own.

        Args:
            clip_id: the clip; session: its ``multipart`` object (``part_size``, ``part_count``).
            path: the file; part ``n`` is bytes ``(n-1)*part_size`` .. ``n*part_size``.
            parallel: parts in flight at once.
            on_progress: called with the bytes of each part once it is stored.
            on_part: called with each stored part's number.
        Raises:
            ApiClientError: a part failed PUT_ATTEMPTS times, or the store refused it.
        """
        part_size = session["part_size"]
        lock = threading.Lock()
        stop = threading.Event()

        def send(part: dict[str, Any]) -> None:
            number = part["part_number"]
            with open(path, "rb") as f:
                f.seek((number - 1) * part_size)
                body = f.read(int(part["headers"]["Content-Length"]))
            for attempt in range(PUT_ATTEMPTS):
                if stop.is_set():
                    return
                try:
                    response = requests.put(part["url"], data=body, headers=part["headers"], timeout=timeout)
                except (requests.ConnectionError, requests.Timeout):
                    response = None
                if response is not None and response.status_code < 300:
                    with lock:
                        if on_progress:
                            on_progress(len(body))
                        if on_part:
                            on_part(number)
                    return
                if response is not None and _expired(response):
                    part = self.sign_parts(clip_id, [number])[0]
                    continue
                if response is not None and response.status_code < 500:
                    raise ApiClientError(response.status_code, "store_error", response.text[:500])
                stop.wait(self.backoff_seconds * 2**attempt)
            raise ApiClientError(503, "store_error", f"part {number} failed {PUT_ATTEMPTS} times")

        try:
            for start in range(0, len(part_numbers), SIGN_BATCH):
                batch = self.sign_parts(clip_id, part_numbers[start : start + SIGN_BATCH])
                _run_parallel(send, batch, parallel, stop)
        finally:
            stop.set()  # after an interrupt: no worker starts another part or retry

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


def _run_parallel(
    send: Callable[[dict[str, Any]], None], parts: list[dict[str, Any]], parallel: int, stop: threading.Event
) -> None:
    """Run ``send`` on every part, ``parallel`` at a time; raise the first failure.

    Daemon threads rather than a ``ThreadPoolExecutor``: on Ctrl-C the caller returns at
    once, while an executor's shutdown (and the interpreter's exit) waits for every part
    in flight and every part queued. A failure sets ``stop``: no other part starts.
    """
    todo: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
    for part in parts:
        todo.put(part)
    failures: list[BaseException] = []

    def worker() -> None:
        while not stop.is_set():
            try:
                part = todo.get_nowait()
            except queue.Empty:
                return
            try:
                send(part)
            except BaseException as exc:  # handed to the caller's thread below
                failures.append(exc)
                stop.set()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(max(1, min(parallel, len(parts))))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()  # interruptible: Ctrl-C raises KeyboardInterrupt here
    if failures:
        raise failures[0]


__all__ = ["ApiClientError", "AudioClipsClient", "describe_file", "sha256_base64"]

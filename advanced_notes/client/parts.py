"""The multipart upload: sign parts in batches, PUT them in parallel (each retried on its
own, an expired part URL re-signed), list the stored parts, abort."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable
from typing import Any

import requests

from advanced_notes.client.session import PUT_ATTEMPTS, ApiClientError, ApiSession, expired

#: Files of at least this many bytes are uploaded in parts (the AWS CLI uses 8 MiB; a
#: part of a phone recording is worth resuming from 16 MiB on).
MULTIPART_THRESHOLD_BYTES = 16 * 1024 * 1024
#: Parts sent at once; parts signed per request.
PARALLEL_PARTS = 4
SIGN_BATCH = 100


class MultipartUploads(ApiSession):
    """The steps of an upload in parts (a part of :class:`~advanced_notes.client.AudioClipsClient`)."""

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
                if response is not None and expired(response):
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

"""The one-PUT upload: send the whole file to its presigned URL, re-signing an expired one."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests
from tqdm.utils import CallbackIOWrapper

from advanced_notes.client.session import PUT_ATTEMPTS, ApiClientError, ApiSession, expired


class SinglePutUploads(ApiSession):
    """The steps of an upload in one PUT (a part of :class:`~advanced_notes.client.AudioClipsClient`)."""

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
            if response is not None and expired(response):
                upload = self.refresh_upload(clip_id)
                continue
            if response is not None and response.status_code < 500:
                raise ApiClientError(response.status_code, "store_error", response.text[:500])
            time.sleep(self.backoff_seconds * 2**attempt)
        raise ApiClientError(503, "store_error", f"the PUT failed {PUT_ATTEMPTS} times")

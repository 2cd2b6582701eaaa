"""The client's HTTP session: the bearer token, timeouts, retries of transient API
failures, and the error type every step raises."""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

#: Seconds to wait for the API to accept a connection (loopback and LAN take milliseconds).
CONNECT_TIMEOUT_SECONDS = 2.0
#: Attempts for a PUT to the bucket (one file or one part).
PUT_ATTEMPTS = 5


class ApiClientError(RuntimeError):
    """An error answer of the API (or the store) with its status, code and details."""

    def __init__(self, status: int, code: str, message: str, details: Any = None):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.details = status, code, message, details


def expired(response: requests.Response) -> bool:
    """Whether the store refused a presigned URL because it expired (then it is re-signed)."""
    # S3 (and R2, Spaces, MinIO) answer an expired presigned URL with 403 "Request has expired".
    return response.status_code == 403 and "expired" in response.text.lower()


class ApiSession:
    """The API's base URL and an authenticated ``requests`` session with retries.

    Its arguments are :class:`~advanced_notes.client.AudioClipsClient`'s, documented there.
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

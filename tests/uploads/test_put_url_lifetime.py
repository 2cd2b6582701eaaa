"""With write-once off, an upload URL lives no longer than docs/security.md promises.

docs/security.md: where S3_CONDITIONAL_WRITES is off, what protects a ready clip is the
upload URL's lifetime, S3_PRESIGN_PUT_EXPIRES_SECONDS. A create asking ``expires_in:
86400`` used to sign a PUT for 24 hours that still replaced the bytes after ``ready``.
The signed ``X-Amz-Expires`` is read from the URL the API hands out.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from advanced_notes.api.context import services_of
from advanced_notes.app import create_app
from tests.helpers import assert_error


def signed_expires(url: str) -> int:
    return int(parse_qs(urlsplit(url).query)["X-Amz-Expires"][0])


@pytest.fixture
def app_with(base_config: dict[str, Any]):
    def make(**settings: str):
        application = create_app({**base_config, **settings})
        services_of(application).storage.ensure_bucket()
        return application.test_client()

    return make


def create(client: Any, auth: dict[str, str], **body: Any) -> Any:
    return client.post("/api/audio-clips", json={"mime_type": "audio/ogg", "bytes": 100, **body}, headers=auth)


def test_without_write_once_a_put_url_lives_at_most_the_put_lifetime(app_with, auth):
    client = app_with(S3_CONDITIONAL_WRITES="off", S3_PRESIGN_PUT_EXPIRES_SECONDS="900")
    error = assert_error(create(client, auth, expires_in=86_400), 422, "validation_error")
    assert "at most 900 seconds" in error["message"] and "S3_PRESIGN_PUT_EXPIRES_SECONDS" in error["message"]
    assert error["details"] == {"expires_in": ["Must be between 1 and 900."]}
    assert create(client, auth, expires_in=901).status_code == 422
    for asked, signed in ((None, 900), (900, 900), (300, 300)):
        body = {} if asked is None else {"expires_in": asked}
        created = create(client, auth, **body)
        assert created.status_code == 201, created.get_json()
        assert signed_expires(created.get_json()["upload"]["url"]) == signed
    clip_id = created.get_json()["clip"]["id"]
    refreshed = client.post(f"/api/audio-clips/{clip_id}/upload-url", headers=auth)
    assert refreshed.status_code == 200, refreshed.get_json()
    assert signed_expires(refreshed.get_json()["upload"]["url"]) == 900


def test_write_once_keeps_the_longer_lifetimes(app_with, auth):
    client = app_with(S3_CONDITIONAL_WRITES="on")
    created = create(client, auth, expires_in=86_400)
    assert created.status_code == 201, created.get_json()
    assert signed_expires(created.get_json()["upload"]["url"]) == 86_400
    assert created.get_json()["upload"]["headers"]["If-None-Match"] == "*"


def test_multipart_creates_are_not_bounded_by_the_put_lifetime(app_with, auth):
    # Part URLs cannot write onto an assembled object: the single-PUT bound does not apply.
    client = app_with(S3_CONDITIONAL_WRITES="off")
    created = create(client, auth, expires_in=86_400, multipart=True)
    assert created.status_code == 201, created.get_json()

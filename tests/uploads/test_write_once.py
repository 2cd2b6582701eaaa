"""Write-once upload URLs (If-None-Match: *) by default where the store supports them."""

from __future__ import annotations

import pytest
import requests

from advanced_notes.api.auth import mint_token
from advanced_notes.api.context import services_of
from advanced_notes.app import create_app
from advanced_notes.settings import load_settings
from testkit.live import put_upload


@pytest.mark.parametrize(
    "env, write_once",
    [
        ({"S3_PROVIDER": "aws"}, True),
        ({}, True),  # no endpoint: AWS
        ({"S3_PROVIDER": "r2", "S3_ENDPOINT_URL": "https://acc.r2.cloudflarestorage.com"}, True),
        ({"S3_PROVIDER": "minio", "S3_ENDPOINT_URL": "http://minio:9000"}, True),
        ({"S3_PROVIDER": "spaces", "S3_ENDPOINT_URL": "https://fra1.digitaloceanspaces.com"}, False),
        ({"S3_ENDPOINT_URL": "https://s3.some-store.example"}, False),  # custom: the doctor decides
        ({"S3_PROVIDER": "aws", "S3_CONDITIONAL_WRITES": "off"}, False),  # explicit wins
    ],
)
def test_write_once_is_the_preset_default_where_supported(env, write_once):
    assert load_settings({"AUTH_JWT_SECRET": "s" * 40, **env}).s3_conditional_writes is write_once


def test_a_ready_clip_cannot_be_replaced_with_its_upload_url_under_a_write_once_preset(app, base_config, audio):
    """The audit's repro: re-PUT with the original URL after ready; moto honours If-None-Match."""
    # (``app``: the session's app, which made the bucket.)
    minio = create_app({**base_config, "S3_PROVIDER": "minio"})  # preset: path style + write-once
    client = minio.test_client()
    headers = {"Authorization": f"Bearer {mint_token(services_of(minio).settings, 'write-once')}"}
    f = audio["note.ogg"]
    created = client.post("/api/audio-clips", json={"mime_type": f.mime_type, "bytes": f.size}, headers=headers)
    upload = created.get_json()["upload"]
    assert upload["headers"]["If-None-Match"] == "*"
    assert put_upload(upload, f.data).status_code == 200
    clip_id = created.get_json()["clip"]["id"]
    assert client.post(f"/api/audio-clips/{clip_id}/complete", headers=headers).status_code == 200
    forged = b"\x00" * f.size
    assert put_upload(upload, forged).status_code == 412
    url = client.get(f"/api/audio-clips/{clip_id}/playback", headers=headers).get_json()["url"]
    assert requests.get(url, timeout=30).content == f.data

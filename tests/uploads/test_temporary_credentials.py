"""Honest expiries with temporary credentials, through boto3's real credential chain.

The credentials come from a ``credential_process`` (a profile in a config file, the way
SSO helpers and vault agents hand out STS credentials): boto3 keeps their expiry, and a
presigned URL dies with them. So ``expires_at`` must be the earlier of the signature's
and the credentials' expiry, and ``storage check`` must warn.
"""

from __future__ import annotations

import datetime as dt
import json
import sys

import pytest

from advanced_notes.api.context import services_of
from advanced_notes.app import create_app
from advanced_notes.domain.clock import utcnow
from testkit.sigv4 import signature_matches, signed_params
from tests.helpers import run_cli

pytestmark = pytest.mark.e2e


@pytest.fixture
def temporary_app(base_config, tmp_path, monkeypatch):
    """An app whose boto3 credentials come from a credential_process expiring in 20 minutes."""
    expires = (utcnow() + dt.timedelta(minutes=20)).replace(microsecond=0)
    answer = {
        "Version": 1,
        "AccessKeyId": "ASIATEMPORARYKEY",
        "SecretAccessKey": "temporary-secret",
        "SessionToken": "temporary-session-token",
        "Expiration": expires.isoformat().replace("+00:00", "Z"),
    }
    script = tmp_path / "credentials.py"
    script.write_text(f"print({json.dumps(json.dumps(answer))})\n")
    config = tmp_path / "aws-config"
    config.write_text(f"[profile temporary]\ncredential_process = {sys.executable} {script}\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_PROFILE", "temporary")
    app = create_app({**base_config, "AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None})
    return app, expires


def test_expires_at_is_the_earlier_of_the_url_and_the_credentials(temporary_app, make_token):
    app, expires = temporary_app
    storage = services_of(app).storage
    assert storage.temporary_credentials
    assert storage.credentials_expire_at() == expires
    upload = storage.presign_put("test/probe.ogg", "audio/ogg", 10, expires_seconds=3600)
    assert signed_params(upload.url)["X-Amz-Expires"] == "3600"
    assert signed_params(upload.url)["X-Amz-Security-Token"] == "temporary-session-token"
    assert upload.expires_at == expires  # not signed_at + 3600 s

    # Through the API: a part URL asked for a day reports the credentials' expiry.
    client = app.test_client()
    headers = {"Authorization": f"Bearer {make_token('temp-creds')}"}
    created = client.post(
        "/api/audio-clips", json={"mime_type": "audio/wav", "bytes": 6_000_000, "multipart": True}, headers=headers
    )
    assert created.status_code == 201, created.json
    clip_id = created.json["clip"]["id"]
    signed = client.post(
        f"/api/audio-clips/{clip_id}/multipart/parts", json={"part_numbers": [1], "expires_in": 86_400}, headers=headers
    )
    assert signed.status_code == 200, signed.json
    part = signed.json["parts"][0]
    assert signed_params(part["url"])["X-Amz-Expires"] == "86400"
    assert part["expires_at"] == expires.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_playback_urls_are_signed_with_the_session_token(temporary_app):
    # Playback URLs are signed by the adapter's own signer at the window's start
    # (tests/playback/test_playback_cache.py): with the refreshed, frozen credentials and their token.
    app, expires = temporary_app
    get = services_of(app).storage.presign_get("test/probe.ogg", "audio/ogg", "probe.ogg")
    params = signed_params(get.url)
    assert params["X-Amz-Security-Token"] == "temporary-session-token"
    assert params["X-Amz-Credential"].startswith("ASIATEMPORARYKEY/")
    assert signature_matches(get.url, "GET", {}, "temporary-secret")
    assert get.expires_at <= expires


def test_storage_check_warns_about_temporary_credentials(temporary_app):
    app, expires = temporary_app
    result = run_cli(app, ["storage", "check"])
    assert "temporary credentials" in result.output, result.output
    assert expires.isoformat() in result.output


def test_long_term_keys_are_reported_ok(app):
    assert not services_of(app).storage.temporary_credentials
    result = run_cli(app, ["storage", "check"])
    assert "long-term keys" in result.output, result.output

"""The storage doctor against moto's server (which enforces nothing) and against a dead store."""

from __future__ import annotations

import uuid

import pytest

from advanced_notes.api.context import services_of
from advanced_notes.app import create_app
from tests.helpers import run_cli

pytestmark = pytest.mark.e2e


@pytest.fixture
def doctor_app(app, base_config):  # app: the session bucket exists
    doctor = create_app(
        {
            **base_config,
            "S3_KEY_PREFIX": f"doctor-{uuid.uuid4().hex[:6]}",
            "CORS_ORIGINS": "http://127.0.0.1:8000 https://notes.example.com",
        }
    )
    return doctor


def run(app, *args):
    return run_cli(app, ["storage", *args])


def test_report_against_moto_is_honest(doctor_app):
    storage = services_of(doctor_app).storage
    storage.put_cors_rules([{"AllowedOrigins": ["https://other.example.com"], "AllowedMethods": ["GET"]}])
    result = run(doctor_app, "check")
    out = result.output
    assert result.exit_code == 1  # the CORS rules are wrong for our origins
    for line in (
        "OK    bucket reachable",
        "OK    signature: AWS4-HMAC-SHA256, credential scope region us-east-1",
        "OK    presigned PUT",
        "OK    HEAD: size",
        "OK    presigned GET with Range: 206",
        "WARN  signed Content-Type enforced: NOT enforced",
        "WARN  signed Content-Length enforced: NOT",
        "WARN  signed checksum enforced: NOT",
        "WARN  URL expiry enforced: NOT",
        "OK    conditional writes (If-None-Match: *): supported",
        "FAIL  bucket CORS: No CORS rule allows the origin http://127.0.0.1:8000.",
    ):
        assert line in out, (line, out)
    assert "fix: Run `advanced-notes storage cors --apply`" in out
    # The probe object is gone, and nothing was left under the clips folder.
    prefix = services_of(doctor_app).settings.key_prefix
    assert [o for page in storage.list_objects(f"{prefix}/") for o in page] == []


def test_cors_apply_fixes_the_rules(doctor_app):
    storage = services_of(doctor_app).storage
    before = storage.get_cors_rules()  # the bucket is shared by the session's tests
    printed = run(doctor_app, "cors")
    assert printed.exit_code == 0 and '"AllowedOrigins"' in printed.output and "applied" not in printed.output
    assert storage.get_cors_rules() == before  # without --apply nothing is written
    applied = run(doctor_app, "cors", "--apply")
    assert applied.exit_code == 0 and "applied to bucket" in applied.output
    result = run(doctor_app, "check")
    assert result.exit_code == 0, result.output
    assert (
        "OK    bucket CORS: browsers at http://127.0.0.1:8000, https://notes.example.com may PUT and GET"
        in result.output
    )


def test_a_dead_store_fails_first_and_plainly(base_config):
    dead = create_app({**base_config, "S3_ENDPOINT_URL": "http://127.0.0.1:9", "S3_CONNECT_TIMEOUT_SECONDS": "1"})
    result = run(dead, "check")
    assert result.exit_code == 1
    assert "FAIL  bucket reachable" in result.output and "fix: Check S3_BUCKET, S3_ENDPOINT_URL" in result.output
    assert "presigned PUT" not in result.output

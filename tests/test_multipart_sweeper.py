"""The sweeper aborts abandoned multipart uploads (moto's server over HTTP, real audio).

Each test gets its own key prefix, so ListMultipartUploads holds only its uploads.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import requests
from sqlalchemy import delete, update

from advanced_notes.adapters.models import AudioClip
from advanced_notes.api.context import services_of
from advanced_notes.app import create_app
from advanced_notes.domain.clock import utcnow
from advanced_notes.domain.keys import build_object_key

from .conftest import FIXTURES, Api, LiveServer, run_cli
from .longaudio import build_long_wav
from .test_multipart import IS_STRICT, STRICT

pytestmark = pytest.mark.e2e
PART = 5 * 1024 * 1024


@pytest.fixture
def env(base_config, make_token):
    app = create_app(
        {
            **base_config,
            "S3_KEY_PREFIX": f"mpsweep-{uuid.uuid4().hex[:8]}",
            "MULTIPART_PART_SIZE_BYTES": str(PART),
            **(STRICT if IS_STRICT else {}),
        }
    )
    services_of(app).storage.ensure_bucket()
    server = LiveServer(app)
    yield Api(server.url, make_token("mpsweep-user")), app
    server.stop()


def start_with_one_part(api: Api, data: bytes) -> dict:
    created = api("POST", "/api/audio-clips", json={"mime_type": "audio/wav", "bytes": len(data), "multipart": True})
    assert created.status_code == 201, created.text
    clip_id = created.json()["clip"]["id"]
    part = api("POST", f"/api/audio-clips/{clip_id}/multipart/parts", json={"part_numbers": [1]}).json()["parts"][0]
    assert requests.put(part["url"], data=data[:PART], headers=part["headers"], timeout=60).status_code == 200
    return created.json()


def in_flight(app) -> set[str]:
    services = services_of(app)
    prefix = services.settings.key_prefix + "/"
    return {u.upload_id for page in services.storage.list_multipart_uploads(prefix) for u in page}


def test_sweeper_aborts_abandoned_uploads_and_keeps_live_ones(env):
    api, app = env
    data = build_long_wav(FIXTURES / "note.wav", 2 * PART + 1)
    live = start_with_one_part(api, data)
    rejected = start_with_one_part(api, data)
    vanished = start_with_one_part(api, data)
    services = services_of(app)
    with services.db.transaction() as session:
        # A clip rejected, and a row removed, without their outbox aborting the upload
        # (an older release, or a crash between the two).
        session.execute(
            update(AudioClip).where(AudioClip.id == uuid.UUID(rejected["clip"]["id"])).values(status="rejected")
        )
        session.execute(delete(AudioClip).where(AudioClip.id == uuid.UUID(vanished["clip"]["id"])))
    # An upload no clip ever knew (a create that died between the store and the INSERT).
    orphan_key = build_object_key(services.settings.key_prefix, uuid.uuid4(), "audio/wav")
    orphan = services.storage.create_multipart_upload(orphan_key, "audio/wav")
    assert {live["multipart"]["upload_id"], rejected["multipart"]["upload_id"], orphan} <= in_flight(app)

    # moto reports every upload as initiated on 2010-11-10, so the minimum age (which
    # spares uploads whose create is still running) cannot be shown here; the strict
    # store run (tests/test_multipart_strict.py) has real Initiated times.
    dry = run_cli(app, ["sweep", "--min-orphan-age", "0"])
    assert "abandoned (expired 0, rejected 1, deleted 0, no_clip 2, superseded 0) would be aborted: 3" in dry.output
    assert len(in_flight(app)) == 4  # a dry run aborts nothing

    applied = run_cli(app, ["sweep", "--apply", "--min-orphan-age", "0"])
    assert applied.exit_code == 0, applied.output
    assert "abandoned (expired 0, rejected 1, deleted 0, no_clip 2, superseded 0) aborted: 3" in applied.output
    assert in_flight(app) == {live["multipart"]["upload_id"]}
    # The live upload still completes after the sweep.
    clip_id = live["clip"]["id"]
    rest = api("POST", f"/api/audio-clips/{clip_id}/multipart/parts", json={"part_numbers": [2, 3]}).json()["parts"]
    for part in rest:
        n = part["part_number"]
        body = data[(n - 1) * PART : n * PART]
        assert requests.put(part["url"], data=body, headers=part["headers"], timeout=60).status_code == 200
    assert api("POST", f"/api/audio-clips/{clip_id}/complete").status_code == 200


def test_expiry_aborts_the_upload_through_the_outbox(env):
    api, app = env
    data = build_long_wav(FIXTURES / "note.wav", PART + 1)
    stale = start_with_one_part(api, data)
    services = services_of(app)
    with services.db.transaction() as session:
        session.execute(
            update(AudioClip)
            .where(AudioClip.id == uuid.UUID(stale["clip"]["id"]))
            .values(created_at=utcnow() - dt.timedelta(seconds=2 * services.settings.upload_reservation_seconds))
        )
    assert stale["multipart"]["upload_id"] in in_flight(app)
    result = run_cli(app, ["sweep", "--apply"])
    assert result.exit_code == 0, result.output
    assert "stale pending clips expired: 1" in result.output
    assert stale["multipart"]["upload_id"] not in in_flight(app)


@pytest.mark.skipif(not IS_STRICT, reason="moto reports every upload as initiated in 2010 (STRICT_S3_ENDPOINT_URL)")
def test_a_young_upload_of_no_clip_is_left_alone(env):
    _, app = env
    services = services_of(app)
    key = build_object_key(services.settings.key_prefix, uuid.uuid4(), "audio/wav")
    young = services.storage.create_multipart_upload(key, "audio/wav")
    result = run_cli(app, ["sweep", "--apply"])  # default minimum age: one hour
    assert "younger than the minimum age: 1" in result.output, result.output
    assert young in in_flight(app)
    assert run_cli(app, ["sweep", "--apply", "--min-orphan-age", "0"]).exit_code == 0
    assert young not in in_flight(app)

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
from advanced_notes.services.sweeper import Sweeper
from testkit.live import Api
from testkit.longaudio import build_long_wav
from testkit.paths import FIXTURES
from testkit.servers import LiveServer
from tests.helpers import IS_STRICT, STRICT, run_cli

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


# -- a recording whose every part is stored is never lost for a missing complete ----------


def upload_all_parts(api: Api, data: bytes, skip: tuple[int, ...] = ()) -> dict:
    """Create a multipart clip of ``data`` and PUT its parts (but ``skip``) through signed URLs; no complete."""
    created = api("POST", "/api/audio-clips", json={"mime_type": "audio/wav", "bytes": len(data), "multipart": True})
    assert created.status_code == 201, created.text
    clip_id, count = created.json()["clip"]["id"], created.json()["multipart"]["part_count"]
    numbers = [n for n in range(1, count + 1) if n not in skip]
    parts = api("POST", f"/api/audio-clips/{clip_id}/multipart/parts", json={"part_numbers": numbers}).json()["parts"]
    for part in parts:
        n = part["part_number"]
        response = requests.put(part["url"], data=data[(n - 1) * PART : n * PART], headers=part["headers"], timeout=60)
        assert response.status_code == 200, response.text
    return created.json()


def make_stale(app, *clip_ids: str) -> None:
    """Move the clips' creation back past the reservation (time passing)."""
    services = services_of(app)
    with services.db.transaction() as session:
        session.execute(
            update(AudioClip)
            .where(AudioClip.id.in_([uuid.UUID(i) for i in clip_ids]))
            .values(created_at=utcnow() - dt.timedelta(seconds=2 * services.settings.upload_reservation_seconds))
        )


def clip_of(api: Api, clip_id: str) -> dict:
    return api("GET", f"/api/audio-clips/{clip_id}").json()["clip"]


def played(api: Api, clip_id: str) -> bytes:
    playback = api("GET", f"/api/audio-clips/{clip_id}/playback")
    assert playback.status_code == 200, playback.text
    got = requests.get(playback.json()["url"], timeout=60)
    assert got.status_code == 200
    return got.content


def test_every_part_stored_and_no_complete_becomes_ready_not_expired(env):
    """The app was killed after its background transfer stored every part, before complete."""
    api, app = env
    data = build_long_wav(FIXTURES / "note.wav", 2 * PART + 1)  # three parts, the last of 1 byte
    forgotten = upload_all_parts(api, data)
    clip_id, upload_id = forgotten["clip"]["id"], forgotten["multipart"]["upload_id"]
    make_stale(app, clip_id)

    dry = run_cli(app, ["sweep"])
    assert dry.exit_code == 0, dry.output
    assert "of which multipart uploads with every part stored: would be assembled 1, in grace 0" in dry.output
    assert "stale pending clips would be expired: 0" in dry.output
    assert clip_of(api, clip_id)["status"] == "pending" and upload_id in in_flight(app)  # a dry run changes nothing

    applied = run_cli(app, ["sweep", "--apply"])
    assert applied.exit_code == 0, applied.output
    assert "of which multipart uploads with every part stored: assembled 1, in grace 0" in applied.output
    assert "uploaded pending clips finished: 1 (ready 1, rejected 0)" in applied.output
    assert "stale pending clips expired: 0" in applied.output
    clip = clip_of(api, clip_id)
    assert clip["status"] == "ready" and clip["stored_bytes"] == len(data)
    assert played(api, clip_id) == data  # byte-equal to the parts concatenated
    assert upload_id not in in_flight(app)
    again = run_cli(app, ["sweep", "--apply"])  # nothing left to do
    assert "assembled 0, in grace 0" in again.output and "stale pending clips expired: 0" in again.output


def test_a_missing_or_short_part_is_expired_and_its_upload_aborted(env):
    api, app = env
    data = build_long_wav(FIXTURES / "note.wav", 2 * PART + 1)
    missing = upload_all_parts(api, data, skip=(2,))
    short = upload_all_parts(api, data, skip=(3,))
    services = services_of(app)
    # Part 3 one byte short of its length (a strict store refuses such a PUT at the signed
    # Content-Length, so it is stored around the API; the sizes then miss the declared bytes).
    services.storage._client.upload_part(
        Bucket=services.storage.bucket,
        Key=short["clip"]["storage_key"],
        UploadId=short["multipart"]["upload_id"],
        PartNumber=3,
        Body=data[2 * PART :] + b"\0",
    )
    make_stale(app, missing["clip"]["id"], short["clip"]["id"])
    uploads = {missing["multipart"]["upload_id"], short["multipart"]["upload_id"]}

    dry = run_cli(app, ["sweep"])
    assert "would be assembled 0" in dry.output and "stale pending clips would be expired: 2" in dry.output
    assert uploads <= in_flight(app)

    applied = run_cli(app, ["sweep", "--apply"])
    assert applied.exit_code == 0, applied.output
    assert "assembled 0, in grace 0" in applied.output and "stale pending clips expired: 2" in applied.output
    assert {clip_of(api, c["clip"]["id"])["status"] for c in (missing, short)} == {"expired"}
    assert not uploads & in_flight(app)  # aborted through the deletion outbox: the parts are freed
    for c in (missing, short):
        assert services.storage.list_parts(c["clip"]["storage_key"], c["multipart"]["upload_id"]) is None
        assert services.storage.head(c["clip"]["storage_key"]) is None


def test_a_live_upload_waits_for_the_grace_period_then_is_finished(env, base_config):
    api, app = env
    data = build_long_wav(FIXTURES / "note.wav", PART + 1)
    stored = upload_all_parts(api, data)
    incomplete = upload_all_parts(api, data, skip=(2,))
    clip_id = stored["clip"]["id"]

    # The newest part is seconds old: the client's own complete usually comes now.
    waiting = run_cli(app, ["sweep", "--apply"])
    assert "assembled 0, in grace 1" in waiting.output, waiting.output
    assert "uploaded pending clips left for the client (grace period): 1" in waiting.output
    assert clip_of(api, clip_id)["status"] == "pending" and stored["multipart"]["upload_id"] in in_flight(app)

    # The same deployment once the grace period has passed (SWEEP_COMPLETE_GRACE_SECONDS=0).
    later = create_app({**base_config, **_settings_of(app), "SWEEP_COMPLETE_GRACE_SECONDS": "0"})
    done = run_cli(later, ["sweep", "--apply"])
    assert "assembled 1, in grace 0" in done.output, done.output
    assert clip_of(api, clip_id)["status"] == "ready" and played(api, clip_id) == data
    # A live clip with a part missing is still uploading: left pending, its upload kept.
    assert clip_of(api, incomplete["clip"]["id"])["status"] == "pending"
    assert incomplete["multipart"]["upload_id"] in in_flight(app)


def _settings_of(app) -> dict[str, str]:
    settings = services_of(app).settings
    config = {"S3_KEY_PREFIX": settings.key_prefix, "MULTIPART_PART_SIZE_BYTES": str(PART)}
    return {**config, **(STRICT if IS_STRICT else {})}


class _ClientFirst:
    """The real storage adapter, but the client's own call (``method`` on the clip's
    ``path``, over HTTP) runs just before the sweeper's CompleteMultipartUpload: the race of
    a client that comes back while the sweeper assembles. A wrapper, not a mock: every call
    reaches the real store; only the interleaving, which no real client can time, is forced."""

    def __init__(self, storage, api: Api, method: str, path: str):
        self._storage, self._api, self._call = storage, api, (method, path)
        self.client_answers: list[int] = []
        self.store_answers: list[object] = []  # True, False (NoSuchUpload) or the exception

    def complete_multipart_upload(self, key, upload_id, parts):
        self.client_answers.append(self._api(*self._call).status_code)
        try:
            self.store_answers.append(self._storage.complete_multipart_upload(key, upload_id, parts))
        except Exception as exc:
            self.store_answers.append(exc)
            raise
        return self.store_answers[-1]

    def __getattr__(self, name):
        return getattr(self._storage, name)


def test_a_client_complete_racing_the_sweeper_finishes_once(env):
    api, app = env
    data = build_long_wav(FIXTURES / "note.wav", PART + 1)
    clip_id = upload_all_parts(api, data)["clip"]["id"]
    make_stale(app, clip_id)
    services = services_of(app)
    storage = _ClientFirst(services.storage, api, "POST", f"/api/audio-clips/{clip_id}/complete")

    report = Sweeper(services.db, storage, services.settings).run(apply=True)  # type: ignore[arg-type]

    assert storage.client_answers == [200]  # the client won the race
    # The sweeper's CompleteMultipartUpload met a finished upload (moto and radosgw answer a
    # repeat 200, a store may answer NoSuchUpload); either way the clip is verified through
    # the compare-and-set, found ready, and nothing is expired or rejected.
    assert report.expired == 0 and report.finish_failed == 0 and report.finished_rejected == 0
    clip = clip_of(api, clip_id)
    assert clip["status"] == "ready" and clip["stored_bytes"] == len(data)
    assert played(api, clip_id) == data


def test_a_client_abort_racing_the_sweeper_leaves_the_clip_to_expiry(env):
    api, app = env
    data = build_long_wav(FIXTURES / "note.wav", PART + 1)
    created = upload_all_parts(api, data)
    clip_id = created["clip"]["id"]
    make_stale(app, clip_id)
    services = services_of(app)
    storage = _ClientFirst(services.storage, api, "DELETE", f"/api/audio-clips/{clip_id}/multipart")

    report = Sweeper(services.db, storage, services.settings).run(apply=True)  # type: ignore[arg-type]

    assert storage.client_answers == [200]  # the client aborted its upload first
    # The store's answer to the sweeper's CompleteMultipartUpload: AWS documents
    # NoSuchUpload (False); moto and radosgw (Pacific) answer 500 InternalError. Either way
    # the sweeper re-reads the clip, sees the upload gone, and lets the object decide.
    assert len(storage.store_answers) == 1 and storage.store_answers[0] is not True
    # Aborted with no object: nothing to finish, so the stale clip expires as before.
    assert report.multipart_assembled == 0 and report.finish_failed == 0 and report.expired == 1
    assert clip_of(api, clip_id)["status"] == "expired"
    assert services.storage.head(created["clip"]["storage_key"]) is None

"""Nothing unverified becomes ready; nothing stored is forgotten. Over real HTTP: the app on
loopback, moto's threaded server as the store, the real fixtures in ../shared/fixtures/audio."""

from __future__ import annotations

import base64
import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import text, update

from advanced_notes.adapters.models import PendingDeletion
from advanced_notes.api.context import services_of
from advanced_notes.app import create_app
from advanced_notes.domain.keys import derived_keys
from advanced_notes.services import completion as completion_module
from testkit.live import Api, put_upload
from testkit.longaudio import silent_wav
from testkit.paths import AUDIO_FILES
from testkit.servers import LiveServer
from testkit.sigv4 import signature_matches, signed_params
from tests.helpers import SECRET_KEY, pending_deletions, run_cli

pytestmark = pytest.mark.e2e


def complete(api: Api, clip_id: str) -> requests.Response:
    return api("POST", f"/api/audio-clips/{clip_id}/complete")


def assert_rejected(api: Api, app, clip: dict, response: requests.Response, reason: str) -> dict:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "upload_rejected" and error["details"]["reason"] == reason, error
    assert api("GET", f"/api/audio-clips/{clip['id']}").json()["clip"]["status"] == "rejected"
    assert services_of(app).storage.head(clip["storage_key"]) is None
    return error


@pytest.fixture
def server_with(base_config, make_token):
    """Start an extra live server with settings overrides; returns an Api for it."""
    servers = []

    def start(**overrides: str) -> tuple[Api, object]:
        app = create_app({**base_config, **overrides})
        server = LiveServer(app)
        servers.append(server)
        return Api(server.url, make_token("e2e-user")), app

    yield start
    for server in servers:
        server.stop()


# -- audio-aware complete ------------------------------------------------------------------


@pytest.mark.parametrize("name", AUDIO_FILES)
def test_measured_duration_of_each_format(api, audio, name):
    f = audio[name]
    clip = api.upload(f, duration_ms=1)  # the declared duration is the client's word, not the measure
    assert clip["duration_ms"] == 1
    assert abs(clip["measured_duration_ms"] - f.duration_ms) <= 100, clip


@pytest.mark.parametrize(
    "name, declared_type",
    [
        ("impostor-html.m4a", "audio/mp4"),
        ("not-audio.html", "audio/mpeg"),
    ],
)
def test_html_impostors_are_not_audio(api, app, audio, name, declared_type):
    f = audio[name]
    created = api("POST", "/api/audio-clips", json={"mime_type": declared_type, "bytes": f.size}).json()
    assert put_upload(created["upload"], f.data).status_code == 200
    assert_rejected(api, app, created["clip"], complete(api, created["clip"]["id"]), "not_audio")


def test_truncated_m4a_is_unreadable(api, app, audio):
    f = audio["truncated.m4a"]
    created = api("POST", "/api/audio-clips", json={"mime_type": "audio/mp4", "bytes": f.size}).json()
    put_upload(created["upload"], f.data)
    error = assert_rejected(api, app, created["clip"], complete(api, created["clip"]["id"]), "unreadable_audio")
    assert "not a readable MP4/M4A audio file" in error["message"]  # in the uploader's terms


def test_container_must_fit_the_declared_type(api, app, audio):
    f = audio["note.ogg"]  # real Ogg audio declared and signed as MP3
    created = api("POST", "/api/audio-clips", json={"mime_type": "audio/mpeg", "bytes": f.size}).json()
    put_upload(created["upload"], f.data)
    error = assert_rejected(api, app, created["clip"], complete(api, created["clip"]["id"]), "type_mismatch")
    assert error["details"]["detected_container"] == "ogg"


def test_stored_content_type_must_match(api, app, audio):
    f = audio["note.mp3"]
    created = api.create(f)
    put_upload({**created["upload"], "headers": {"Content-Type": "text/html"}}, f.data)  # moto ignores signatures
    error = assert_rejected(api, app, created["clip"], complete(api, created["clip"]["id"]), "type_mismatch")
    assert error["details"]["stored_type"] == "text/html"


def test_checksum_is_signed_and_compared(api, app, audio):
    f, other = audio["note.webm"], audio["note.ogg"]
    created = api.create(f, checksum_sha256=f.sha256_base64)
    upload = created["upload"]
    assert upload["headers"]["x-amz-checksum-sha256"] == f.sha256_base64
    assert "x-amz-checksum-sha256" in signed_params(upload["url"])["X-Amz-SignedHeaders"].split(";")
    assert signature_matches(upload["url"], "PUT", upload["headers"], SECRET_KEY)
    # Real S3 refuses a body whose SHA-256 differs from the signed one; moto does not, and
    # only records a checksum sent with x-amz-sdk-checksum-algorithm. Plant what a store
    # that kept another body would report: same size, another digest.
    body = (other.data * 2)[: f.size]
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    put = requests.put(
        upload["url"],
        data=body,
        timeout=30,
        headers={**upload["headers"], "x-amz-checksum-sha256": digest, "x-amz-sdk-checksum-algorithm": "SHA256"},
    )
    assert put.status_code == 200
    error = assert_rejected(api, app, created["clip"], complete(api, created["clip"]["id"]), "checksum_mismatch")
    assert error["details"] == {
        "reason": "checksum_mismatch",
        "expected_sha256": f.sha256_base64,
        "stored_sha256": digest,
    }


def test_matching_checksum_is_accepted(api, audio):
    f = audio["note.flac"]
    created = api.create(f, checksum_sha256=f.sha256_base64)
    requests.put(
        created["upload"]["url"],
        data=f.data,
        timeout=30,
        headers={**created["upload"]["headers"], "x-amz-sdk-checksum-algorithm": "SHA256"},
    )
    assert complete(api, created["clip"]["id"]).json()["clip"]["status"] == "ready"


def test_duration_limit_applies_to_the_measured_duration(server_with, audio):
    api, app = server_with(MAX_DURATION_MS="5000")
    f = audio["note.wav"]  # 6288 ms, declared shorter
    created = api.create(f, duration_ms=4000)
    put_upload(created["upload"], f.data)
    error = assert_rejected(api, app, created["clip"], complete(api, created["clip"]["id"]), "duration_exceeded")
    assert error["details"]["max_duration_ms"] == 5000


def test_complete_reads_only_the_start_of_a_large_object(api, audio, monkeypatch):
    # A 40 MiB WAV: verification must read its header, not download it.
    rate, seconds = 44100, 476
    data = silent_wav(44 + seconds * rate * 2, rate)
    fetched: list[tuple[int, int]] = []
    original = completion_module.S3Storage.get_range

    def spy(self, key, start, end):  # the real ranged GET, recorded
        fetched.append((start, end))
        return original(self, key, start, end)

    monkeypatch.setattr(completion_module.S3Storage, "get_range", spy)
    created = api("POST", "/api/audio-clips", json={"mime_type": "audio/wav", "bytes": len(data)}).json()
    assert put_upload(created["upload"], data).status_code == 200
    clip = complete(api, created["clip"]["id"]).json()["clip"]
    assert clip["status"] == "ready" and clip["measured_duration_ms"] == seconds * 1000
    assert sum(end - start + 1 for start, end in fetched) <= 128 * 1024 < len(data) // 100


# -- safe playback, write-once ------------------------------------------------------------------


def test_playback_forces_audio_type_even_if_the_object_is_swapped(api, app, audio):
    f = audio["note.ogg"]
    clip = api.upload(f)
    # A reused PUT URL (or a bucket write) replaces the verified bytes with HTML.
    services_of(app).storage.put_object(clip["storage_key"], b"<script>alert(1)</script>", "text/html")
    got = requests.get(api("GET", f"/api/audio-clips/{clip['id']}/playback").json()["url"], timeout=30)
    assert got.headers["Content-Type"] == "audio/ogg"
    assert got.headers["Content-Disposition"] == f'inline; filename="{clip["id"]}.ogg"'


def test_conditional_writes_make_upload_urls_write_once(server_with, audio):
    api, _ = server_with(S3_CONDITIONAL_WRITES="on")
    f = audio["note.mp3"]
    upload = api.create(f)["upload"]
    assert upload["headers"]["If-None-Match"] == "*"
    assert "if-none-match" in signed_params(upload["url"])["X-Amz-SignedHeaders"].split(";")
    assert signature_matches(upload["url"], "PUT", upload["headers"], SECRET_KEY)
    assert put_upload(upload, f.data).status_code == 200
    assert put_upload(upload, f.data).status_code == 412  # the URL cannot overwrite the object


# -- idempotency and concurrency ----------------------------------------------------------------


def test_idempotent_create_under_20_concurrent_repeats(api, app, audio):
    f = audio["note.m4a"]
    body = {"mime_type": f.mime_type, "bytes": f.size, "note_id": "idem"}
    headers = {"Idempotency-Key": "create-once-7f3a"}
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: api("POST", "/api/audio-clips", json=body, headers=headers), range(20)))
    assert {a.status_code for a in answers} == {201}, [a.text for a in answers if a.status_code != 201]
    assert len({a.json()["clip"]["id"] for a in answers}) == 1
    assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 19
    assert all(a.json()["upload"]["url"] for a in answers)
    with services_of(app).db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audio_clips WHERE note_id = 'idem'")).scalar() == 1


def test_idempotency_key_rules(api, live_server, make_token, audio):
    f = audio["note.m4a"]
    key = {"Idempotency-Key": "k-1"}
    first = api("POST", "/api/audio-clips", json={"mime_type": f.mime_type, "bytes": f.size}, headers=key).json()
    other = api("POST", "/api/audio-clips", json={"mime_type": f.mime_type, "bytes": f.size + 1}, headers=key)
    assert other.status_code == 409 and other.json()["error"]["code"] == "conflict"
    assert "bytes" in other.json()["error"]["details"]["idempotency_key"][0]
    bob = Api(live_server.url, make_token("bob"))
    theirs = bob("POST", "/api/audio-clips", json={"mime_type": f.mime_type, "bytes": f.size}, headers=key).json()
    assert theirs["clip"]["id"] != first["clip"]["id"]
    assert put_upload(first["upload"], f.data).status_code == 200
    assert complete(api, first["clip"]["id"]).status_code == 200
    replay = api("POST", "/api/audio-clips", json={"mime_type": f.mime_type, "bytes": f.size}, headers=key)
    assert replay.status_code == 201 and replay.json()["upload"] is None  # no new URL onto a verified object
    assert replay.json()["clip"]["status"] == "ready"
    bad = api(
        "POST",
        "/api/audio-clips",
        json={"mime_type": f.mime_type, "bytes": f.size},
        headers={"Idempotency-Key": "x" * 256},
    )
    assert bad.status_code == 422 and "Idempotency-Key" in bad.json()["error"]["details"]


def test_50_concurrent_completes_make_one_transition(api, audio, monkeypatch):
    f = audio["note.ogg"]
    created = api.create(f)
    put_upload(created["upload"], f.data)
    wins, lock = [], threading.Lock()
    original = completion_module.ClipCompleter._mark_ready

    def counting(self, *args, **kwargs):  # the real compare-and-set, with its outcomes recorded
        won = original(self, *args, **kwargs)
        with lock:
            wins.append(won is not None)
        return won

    monkeypatch.setattr(completion_module.ClipCompleter, "_mark_ready", counting)
    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(lambda _: complete(api, created["clip"]["id"]), range(50)))
    assert {a.status_code for a in answers} == {200}
    assert len({(a.json()["clip"]["completed_at"], a.json()["clip"]["updated_at"]) for a in answers}) == 1
    assert wins.count(True) == 1


# -- refresh, attach, delete --------------------------------------------------------------------


def test_upload_url_refresh(api, live_server, make_token, audio):
    f = audio["note.webm"]
    created = api.create(f)
    path = f"/api/audio-clips/{created['clip']['id']}/upload-url"
    fresh = api("POST", path)
    assert fresh.status_code == 200
    upload = fresh.json()["upload"]
    assert upload["storage_key"] == created["clip"]["storage_key"] and upload["headers"] == created["upload"]["headers"]
    assert signature_matches(upload["url"], "PUT", upload["headers"], SECRET_KEY)
    assert Api(live_server.url, make_token("bob"))("POST", path).status_code == 404
    assert put_upload(upload, f.data).status_code == 200
    assert complete(api, created["clip"]["id"]).status_code == 200
    late = api("POST", path)
    assert late.status_code == 409 and late.json()["error"]["details"] == {"status": "ready"}


def test_attach_and_detach(api, live_server, make_token, audio):
    clip = api.upload(audio["note.ogg"])
    path = f"/api/audio-clips/{clip['id']}"
    assert api("GET", "/api/notes/attach-me/audio").status_code == 404
    attached = api("PATCH", path, json={"note_id": "attach-me"})
    assert attached.status_code == 200 and attached.json()["clip"]["note_id"] == "attach-me"
    assert api("GET", "/api/notes/attach-me/audio").json()["clip"]["id"] == clip["id"]
    assert api("PATCH", path, json={"note_id": None}).json()["clip"]["note_id"] is None
    assert api("GET", "/api/notes/attach-me/audio").status_code == 404
    for body in ({}, {"note_id": ""}, {"note_id": "x", "status": "ready"}):
        assert api("PATCH", path, json=body).status_code == 422
    assert Api(live_server.url, make_token("bob"))("PATCH", path, json={"note_id": "x"}).status_code == 404


def test_delete_with_the_store_up(api, app, audio):
    clip = api.upload(audio["note.mp3"])
    assert api("DELETE", f"/api/audio-clips/{clip['id']}").status_code == 204
    assert api("GET", f"/api/audio-clips/{clip['id']}").status_code == 404
    assert services_of(app).storage.head(clip["storage_key"]) is None
    # Its PUT URL is still valid: the record stays to delete once more after the URL expires.
    (record,) = pending_deletions(app, clip["id"])
    assert record.attempts == 1 and record.next_attempt_at == record.recheck_until
    assert api("DELETE", f"/api/audio-clips/{clip['id']}").status_code == 404


def test_delete_with_the_store_down_is_finished_by_the_sweeper(api, app, server_with, audio):
    clip = api.upload(audio["note.flac"])
    storage = services_of(app).storage
    dead_api, _ = server_with(S3_ENDPOINT_URL="http://127.0.0.1:9", S3_CONNECT_TIMEOUT_SECONDS="1")
    assert dead_api("DELETE", f"/api/audio-clips/{clip['id']}").status_code == 204
    assert api("GET", f"/api/audio-clips/{clip['id']}").status_code == 404
    assert storage.head(clip["storage_key"]) is not None  # the store was down: the object is still there...
    records = pending_deletions(app, clip["id"])  # ...and recorded, never forgotten
    (record,) = [r for r in records if r.storage_key == clip["storage_key"]]
    assert record.attempts == 1 and "could not be reached" in record.last_error
    # with the clip's derived objects (the processing stage's), one record each
    assert sorted(r.storage_key for r in records if r is not record) == sorted(derived_keys(clip["storage_key"]))
    # Time passes: the retry is due and the URL has expired.
    past = record.created_at.replace(year=2000)
    with services_of(app).db.transaction() as session:
        session.execute(update(PendingDeletion).values(next_attempt_at=past, recheck_until=past))
    result = run_cli(app, ["sweep", "--apply", "--min-orphan-age", "0"])
    assert result.exit_code == 0, result.output
    assert f"recorded deletions due: {len(records)} (done {len(records)}" in result.output
    assert storage.head(clip["storage_key"]) is None and pending_deletions(app, clip["id"]) == []


def test_delete_note_audio(api, app, audio):
    clips = [api.upload(audio["note.ogg"], note_id="doomed"), api.create(audio["note.mp3"], note_id="doomed")["clip"]]
    keep = api.upload(audio["note.ogg"], note_id="kept")
    answer = api("DELETE", "/api/notes/doomed/audio")
    assert answer.status_code == 200 and answer.json() == {"deleted": 2}
    assert api("DELETE", "/api/notes/doomed/audio").json() == {"deleted": 0}
    storage = services_of(app).storage
    assert storage.head(clips[0]["storage_key"]) is None
    assert all(pending_deletions(app, c["id"]) for c in clips)
    assert api("GET", "/api/notes/kept/audio").json()["clip"]["id"] == keep["id"]

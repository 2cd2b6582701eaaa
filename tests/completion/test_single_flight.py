"""One verification per clip at a time (the lease on the clip row), across requests and paths.

Real HTTP on loopback (werkzeug's threaded server), moto's S3 server and the session's
database (SQLite or PostgreSQL). Verifications are counted at the storage adapter: every
verification fetches the object's first block by ranged GET (``S3Storage.get_range``); the
counting wrapper passes every call through to the real adapter. Before the lease, each of
the concurrent completes ran its own verification (six concurrent completes of one crafted
clip took 74.5 s).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections import Counter
from typing import Any

import pytest
import requests
from sqlalchemy import select

from advanced_notes.adapters.clip_sql import CLIPS
from advanced_notes.api.context import services_of
from advanced_notes.domain.clock import utcnow
from advanced_notes.domain.errors import StorageUnavailable
from testkit.crafted_audio import crafted_flac
from testkit.live import put_upload

CONCURRENT = 8


@pytest.fixture
def first_block_gets(app, monkeypatch) -> Counter:
    """Ranged GETs of each key's first byte (one per verification), through the real adapter."""
    storage = services_of(app).storage
    real = storage.get_range
    counts: Counter = Counter()
    lock = threading.Lock()

    def counting(key: str, start: int, end: int) -> bytes:
        if start == 0:
            with lock:
                counts[key] += 1
        return real(key, start, end)

    monkeypatch.setattr(storage, "get_range", counting)
    return counts


def _create_and_put(live_server, headers: dict[str, str], data: bytes, mime_type: str) -> dict[str, Any]:
    created = requests.post(
        f"{live_server.url}/api/audio-clips",
        json={"mime_type": mime_type, "bytes": len(data)},
        headers=headers,
        timeout=30,
    ).json()
    assert put_upload(created["upload"], data).status_code == 200
    return created


def _complete_concurrently(live_server, headers: dict[str, str], clip_id: str) -> list[tuple[int, dict]]:
    barrier = threading.Barrier(CONCURRENT)
    answers: list[tuple[int, dict]] = []
    lock = threading.Lock()

    def complete() -> None:
        barrier.wait()
        response = requests.post(f"{live_server.url}/api/audio-clips/{clip_id}/complete", headers=headers, timeout=120)
        with lock:
            answers.append((response.status_code, response.json()))

    threads = [threading.Thread(target=complete) for _ in range(CONCURRENT)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    return answers


def _lease(app, clip_id: str) -> Any:
    with services_of(app).db.engine.connect() as conn:
        query = select(CLIPS.c.verification_lease_until).where(CLIPS.c.id == uuid.UUID(clip_id))
        return conn.execute(query).scalar_one()


def test_concurrent_completes_of_a_crafted_clip_verify_once_and_answer_alike(app, live_server, auth, first_block_gets):
    data = crafted_flac()
    created = _create_and_put(live_server, auth, data, "audio/flac")
    clip_id = created["clip"]["id"]
    answers = _complete_concurrently(live_server, auth, clip_id)
    assert len(answers) == CONCURRENT
    assert first_block_gets[created["clip"]["storage_key"]] == 1
    assert {status for status, _ in answers} == {422}
    errors = [body["error"] for _, body in answers]
    assert {e["code"] for e in errors} == {"upload_rejected"}
    assert {e["details"]["reason"] for e in errors} == {"audio_too_complex"}
    assert len({e["message"] for e in errors}) == 1
    # A later complete is a conflict that still says why.
    later = requests.post(f"{live_server.url}/api/audio-clips/{clip_id}/complete", headers=auth, timeout=30)
    assert later.status_code == 409
    assert later.json()["error"]["details"]["rejection"]["reason"] == "audio_too_complex"


def test_concurrent_completes_of_a_real_clip_verify_once_and_are_all_ready(
    app, live_server, auth, audio, first_block_gets
):
    f = audio["note.m4a"]
    created = _create_and_put(live_server, auth, f.data, f.mime_type)
    answers = _complete_concurrently(live_server, auth, created["clip"]["id"])
    assert [status for status, _ in answers] == [200] * CONCURRENT
    assert {body["clip"]["status"] for _, body in answers} == {"ready"}
    assert first_block_gets[created["clip"]["storage_key"]] == 1
    assert _lease(app, created["clip"]["id"]) is None


@pytest.mark.parametrize("left_for", [-1.0, 1.0], ids=["expired", "expiring"])
def test_a_lease_left_by_a_dead_holder_is_taken_over(app, client, auth, audio, first_block_gets, left_for):
    f = audio["note.ogg"]
    created = client.post("/api/audio-clips", json={"mime_type": f.mime_type, "bytes": f.size}, headers=auth).get_json()
    assert put_upload(created["upload"], f.data).status_code == 200
    clip_id = created["clip"]["id"]
    # A worker took the lease and died (no release): its lease ends ``left_for`` s from now.
    until = utcnow() + dt.timedelta(seconds=left_for)
    with services_of(app).db.engine.begin() as conn:
        conn.execute(CLIPS.update().where(CLIPS.c.id == uuid.UUID(clip_id)).values(verification_lease_until=until))
    started = time.monotonic()
    response = client.post(f"/api/audio-clips/{clip_id}/complete", headers=auth)
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["clip"]["status"] == "ready"
    assert first_block_gets[created["clip"]["storage_key"]] == 1
    if left_for > 0:  # it waited for the lease to run out, no longer than a few polls more
        assert left_for - 0.05 <= elapsed < left_for + 3


def test_no_verdict_gives_the_lease_back_at_once(app, client, auth, audio, first_block_gets):
    f = audio["note.mp3"]
    created = client.post("/api/audio-clips", json={"mime_type": f.mime_type, "bytes": f.size}, headers=auth).get_json()
    clip_id = created["clip"]["id"]
    # Nothing uploaded yet: upload_missing, and the clip is not held.
    missing = client.post(f"/api/audio-clips/{clip_id}/complete", headers=auth)
    assert missing.status_code == 409 and missing.get_json()["error"]["code"] == "upload_missing"
    assert _lease(app, clip_id) is None
    assert put_upload(created["upload"], f.data).status_code == 200
    started = time.monotonic()
    done = client.post(f"/api/audio-clips/{clip_id}/complete", headers=auth)
    assert done.status_code == 200 and time.monotonic() - started < 5  # did not wait for a lease


def test_a_store_failure_gives_the_lease_back_at_once(app, client, auth, audio, monkeypatch):
    f = audio["note.wav"]
    created = client.post("/api/audio-clips", json={"mime_type": f.mime_type, "bytes": f.size}, headers=auth).get_json()
    clip_id = created["clip"]["id"]
    assert put_upload(created["upload"], f.data).status_code == 200
    storage = services_of(app).storage

    # A store outage in the middle of verification (a stand-in: the ranged GET raises what
    # the adapter raises for a store that cannot be reached; tests/operations/test_faults.py covers
    # the adapter's side with a real faulty proxy).
    def outage(key: str, start: int, end: int) -> bytes:
        raise StorageUnavailable("The object store could not be reached; retry later.")

    monkeypatch.setattr(storage, "get_range", outage)
    failed = client.post(f"/api/audio-clips/{clip_id}/complete", headers=auth)
    assert failed.status_code == 503 and failed.get_json()["error"]["code"] == "storage_unavailable"
    assert _lease(app, clip_id) is None
    monkeypatch.undo()
    started = time.monotonic()
    done = client.post(f"/api/audio-clips/{clip_id}/complete", headers=auth)
    assert done.status_code == 200 and time.monotonic() - started < 5

"""Dependency faults: the store refusing, resetting, hanging or answering 500, and the
database going down. Every endpoint answers within a bounded time with 503 and
Retry-After (or works, when it does not need the failed dependency), nothing changes,
/readyz says which dependency is down, and the service recovers by itself.

The faults come from a TCP proxy (testkit/faultproxy.py) between the app and the real
dependency: moto's server, or PostgreSQL.
"""

from __future__ import annotations

import os
import time
from urllib.parse import urlsplit

import pytest
from sqlalchemy.engine import make_url

from advanced_notes.api.context import services_of
from advanced_notes.app import create_app
from testkit.faultproxy import FaultProxy
from testkit.live import put_upload
from tests.helpers import REAL_AUDIO, assert_error, create, pending_deletions

pytestmark = pytest.mark.e2e

# With these settings a store call gives up after attempts x (connect + read) timeouts.
STORE_FAULT_SETTINGS = {"S3_CONNECT_TIMEOUT_SECONDS": "1", "S3_READ_TIMEOUT_SECONDS": "1", "S3_MAX_ATTEMPTS": "2"}
#: 2 x (1 + 1) s, plus botocore's retry backoff (< 1 s) and slack for a loaded 2-core machine.
STORE_BOUND_SECONDS = 6.0
#: psycopg2's connect_timeout (3 s) plus SQLAlchemy's pool checks; refusals answer at once.
DB_BOUND_SECONDS = 5.0


@pytest.fixture
def store_proxy(s3_endpoint):
    parts = urlsplit(s3_endpoint)
    proxy = FaultProxy(parts.hostname, parts.port)
    yield proxy
    proxy.close()


@pytest.fixture
def faulty_store_app(base_config, store_proxy):
    return create_app({**base_config, **STORE_FAULT_SETTINGS, "S3_ENDPOINT_URL": store_proxy.url})


def timed(fn):
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def uploaded_clip(client, auth) -> dict:
    created = create(client, auth, mime_type="audio/ogg", bytes=len(REAL_AUDIO), note_id="faults")
    assert put_upload(created["upload"], REAL_AUDIO).status_code == 200
    return created["clip"]


@pytest.mark.parametrize("mode", ["refuse", "reset", "hang", "http500"])
def test_store_faults(faulty_store_app, store_proxy, auth, mode):
    client = faulty_store_app.test_client()
    ready = uploaded_clip(client, auth)
    assert client.post(f"/api/audio-clips/{ready['id']}/complete", headers=auth).status_code == 200
    pending = uploaded_clip(client, auth)

    store_proxy.set_mode(mode)
    response, elapsed = timed(lambda: client.post(f"/api/audio-clips/{pending['id']}/complete", headers=auth))
    assert_error(response, 503, "storage_unavailable")
    assert int(response.headers["Retry-After"]) > 0 and elapsed < STORE_BOUND_SECONDS, elapsed
    assert client.get(f"/api/audio-clips/{pending['id']}", headers=auth).get_json()["clip"]["status"] == "pending"

    ready_check, elapsed = timed(lambda: client.get("/readyz"))
    error = assert_error(ready_check, 503, "storage_unavailable")
    assert error["details"]["checks"] == {"database": "ok", "storage": "unavailable"}
    assert elapsed < STORE_BOUND_SECONDS

    # What needs no store call keeps working: presigning is local.
    assert client.get(f"/api/audio-clips/{ready['id']}/playback", headers=auth).status_code == 200
    assert client.post("/api/audio-clips", json={"mime_type": "audio/ogg", "bytes": 5}, headers=auth).status_code == 201
    # Deleting records the object's deletion and answers within the bound.
    deleted, elapsed = timed(lambda: client.delete(f"/api/audio-clips/{ready['id']}", headers=auth))
    assert deleted.status_code == 204 and elapsed < STORE_BOUND_SECONDS
    records = pending_deletions(faulty_store_app, ready["id"])
    # the original's record (first: the attempt stops at its failure) and its derived objects'
    (record,) = [r for r in records if r.storage_key == ready["storage_key"]]
    assert record.attempts == 1 and record.last_error and len(records) == 5

    store_proxy.set_mode("pass")  # the store comes back: no restart needed
    assert client.get("/readyz").status_code == 200
    done = client.post(f"/api/audio-clips/{pending['id']}/complete", headers=auth)
    assert done.status_code == 200 and done.get_json()["clip"]["status"] == "ready"


def test_deleting_a_note_during_an_outage_costs_one_timeout(faulty_store_app, store_proxy, auth):
    client = faulty_store_app.test_client()
    for _ in range(5):
        clip = uploaded_clip(client, auth)
        assert client.post(f"/api/audio-clips/{clip['id']}/complete", headers=auth).status_code == 200
    store_proxy.set_mode("hang")
    response, elapsed = timed(lambda: client.delete("/api/notes/faults/audio", headers=auth))
    assert response.get_json() == {"deleted": 5} and elapsed < STORE_BOUND_SECONDS


@pytest.fixture
def db_proxy():
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        pytest.skip("needs PostgreSQL (TEST_DATABASE_URL): a SQLite file cannot go down; .ci/run runs this")
    url = make_url(base)
    proxy = FaultProxy(url.host or "127.0.0.1", url.port or 5432)
    yield proxy
    proxy.close()


def test_database_down_and_back(base_config, database_url, db_proxy, make_token):
    url = make_url(database_url).set(host="127.0.0.1", port=db_proxy.port)
    app = create_app({**base_config, "DATABASE_URL": url.render_as_string(hide_password=False)})
    client = app.test_client()
    auth = {"Authorization": f"Bearer {make_token('db-fault-user')}"}
    clip = create(client, auth)["clip"]
    calls = [
        ("POST", "/api/audio-clips", {"mime_type": "audio/ogg", "bytes": 5}),
        ("GET", "/api/audio-clips", None),
        ("GET", f"/api/audio-clips/{clip['id']}", None),
        ("PATCH", f"/api/audio-clips/{clip['id']}", {"note_id": "n"}),
        ("POST", f"/api/audio-clips/{clip['id']}/complete", None),
        ("GET", f"/api/audio-clips/{clip['id']}/playback", None),
        ("POST", f"/api/audio-clips/{clip['id']}/upload-url", None),
        ("DELETE", f"/api/audio-clips/{clip['id']}", None),
        ("GET", "/api/notes/n/audio", None),
        ("DELETE", "/api/notes/n/audio", None),
    ]
    for mode in ("refuse", "reset"):
        db_proxy.set_mode(mode)
        for method, path, body in calls:
            response, elapsed = timed(lambda p=path, m=method, b=body: client.open(p, method=m, json=b, headers=auth))
            assert_error(response, 503, "database_unavailable")
            assert response.headers["Retry-After"] and elapsed < DB_BOUND_SECONDS, (method, path, elapsed)
        error = assert_error(client.get("/readyz"), 503, "database_unavailable")
        assert error["details"]["checks"] == {"database": "unavailable", "storage": "ok"}
        db_proxy.set_mode("pass")  # back: the pool reconnects by itself
        assert client.get("/readyz").status_code == 200
        again = client.get(f"/api/audio-clips/{clip['id']}", headers=auth)
        assert again.status_code == 200 and again.get_json()["clip"] == clip  # nothing changed
    services_of(app).db.dispose()

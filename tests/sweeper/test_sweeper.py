"""The sweeper over real parts: moto's server over HTTP, the real fixtures, PostgreSQL or SQLite.

Each test gets its own key prefix, so the listing it reconciles holds only its objects.
"Time passing" is simulated by moving rows' timestamps back through the ORM.
"""

from __future__ import annotations

import datetime as dt
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select, update

from advanced_notes.adapters.models import AudioClip, PendingDeletion
from advanced_notes.api.context import services_of
from advanced_notes.app import create_app
from advanced_notes.domain.clock import utcnow
from advanced_notes.services.sweeper import Sweeper
from testkit.live import Api, put_upload
from testkit.servers import LiveServer
from tests.helpers import pending_deletions, run_cli

pytestmark = pytest.mark.e2e


@pytest.fixture
def env(base_config, make_token):
    """An app on its own key prefix, served on loopback; yields (api, app)."""
    app = create_app(
        {**base_config, "S3_KEY_PREFIX": f"sweep-{uuid.uuid4().hex[:8]}", "UPLOAD_RESERVATION_SECONDS": "3600"}
    )
    server = LiveServer(app)
    yield Api(server.url, make_token("sweep-user")), app
    server.stop()


def sweep(app, *args: str) -> str:
    result = run_cli(app, ["sweep", *args])
    assert result.exit_code == 0, result.output
    return result.output


def age_clips(app, hours: float, **where) -> None:
    ago = utcnow() - dt.timedelta(hours=hours)
    with services_of(app).db.transaction() as session:
        session.execute(update(AudioClip).filter_by(**where).values(created_at=ago))


def status(api: Api, clip_id: str) -> str:
    return api("GET", f"/api/audio-clips/{clip_id}").json()["clip"]["status"]


def test_expiry_dry_run_then_apply_then_a_late_upload(env, audio):
    api, app = env
    storage = services_of(app).storage
    f = audio["note.ogg"]
    stale = api.create(f)
    fresh = api.create(f)
    age_clips(app, 2, id=uuid.UUID(stale["clip"]["id"]))

    assert "stale pending clips would be expired: 1" in sweep(app)
    assert status(api, stale["clip"]["id"]) == "pending"  # a dry run changes nothing

    assert "stale pending clips expired: 1" in sweep(app, "--apply")
    assert status(api, stale["clip"]["id"]) == "expired" and status(api, fresh["clip"]["id"]) == "pending"
    done = api("POST", f"/api/audio-clips/{stale['clip']['id']}/complete")
    assert done.status_code == 409 and done.json()["error"]["code"] == "conflict"

    # The presigned URL cannot be revoked: the client uploads after the expiry.
    assert put_upload(stale["upload"], f.data).status_code == 200
    assert storage.head(stale["clip"]["storage_key"]) is not None
    output = sweep(app, "--apply", "--reconcile")
    assert "late objects of rejected/expired clips: 1, deleted: 1" in output
    assert storage.head(stale["clip"]["storage_key"]) is None
    assert "stale pending clips expired: 0" in output


def test_expired_clip_deletion_waits_for_the_url_to_expire(env, audio):
    api, app = env
    created = api.create(audio["note.ogg"])
    age_clips(app, 2)
    sweep(app, "--apply")
    (record,) = pending_deletions(app, created["clip"]["id"])
    assert record.reason == "expired"
    assert record.recheck_until >= utcnow() + dt.timedelta(minutes=14)  # URL expiry + clock skew
    assert record.next_attempt_at == record.recheck_until


def test_reconcile_finds_orphans_and_missing_objects(env, audio):
    api, app = env
    services = services_of(app)
    storage, folder = services.storage, f"{services.settings.key_prefix}/audio-clips/"
    kept = api.upload(audio["note.ogg"])
    missing = api.upload(audio["note.mp3"])
    pending = api.create(audio["note.webm"])
    put_upload(pending["upload"], audio["note.webm"].data)  # uploaded, not yet completed: not an orphan
    storage.delete(missing["storage_key"])  # planted: a ready clip whose object is gone
    orphan_keys = [f"{folder}{uuid.uuid4()}.m4a", f"{folder}not-a-clip.txt", f"{folder}{kept['id']}.mp3"]
    for key in orphan_keys:  # planted: objects no row knows
        storage.put_object(key, b"junk", "audio/mp4")

    report = sweep(app, "--reconcile", "--min-orphan-age", "0")
    assert "orphan objects (no row, no recorded deletion): 3, deleted: 0" in report
    assert all(f"  orphan: {key}" in report for key in orphan_keys)
    assert "ready clips whose object is missing: 1\n" in report and f"  missing: {missing['storage_key']}" in report
    assert "objects scanned: 5" in report

    assert "orphan objects (no row, no recorded deletion): 0" in sweep(app, "--reconcile")  # too young (1 h)
    assert "younger than the minimum age (left alone): 3" in sweep(app, "--reconcile")

    sweep(app, "--apply", "--reconcile", "--delete", "--min-orphan-age", "0")
    assert all(storage.head(key) is None for key in orphan_keys)
    assert storage.head(kept["storage_key"]) is not None and storage.head(pending["clip"]["storage_key"]) is not None
    after = sweep(app, "--reconcile", "--min-orphan-age", "0")
    assert "orphan objects (no row, no recorded deletion): 0" in after and "objects scanned: 2" in after


def test_derived_objects_of_known_clips_are_not_orphans(env, audio):
    """The processing stage's objects (``<id>/seekable.webm`` ...) belong to their clip; those of
    an unknown clip are orphans, and a missing original is still reported missing."""
    from advanced_notes.domain.keys import DERIVED_NAMES, derived_key, derived_keys

    api, app = env
    services = services_of(app)
    storage, folder = services.storage, f"{services.settings.key_prefix}/audio-clips/"
    kept = api.upload(audio["note.ogg"])
    missing = api.upload(audio["note.mp3"])
    for clip in (kept, missing):
        for key in derived_keys(clip["storage_key"]):
            storage.put_object(key, b"{}", "application/json")
    storage.delete(missing["storage_key"])  # its renditions are no stand-in for the original
    stray = derived_key(f"{folder}{uuid.uuid4()}.webm", DERIVED_NAMES[0])
    storage.put_object(stray, b"junk", "audio/webm")

    report = sweep(app, "--reconcile", "--min-orphan-age", "0")
    assert "orphan objects (no row, no recorded deletion): 1, deleted: 0" in report, report
    assert f"  orphan: {stray}" in report
    assert "ready clips whose object is missing: 1\n" in report and f"  missing: {missing['storage_key']}" in report
    assert f"objects scanned: {1 + 2 * len(DERIVED_NAMES) + 1}" in report


def test_objects_with_a_recorded_deletion_are_not_orphans(env, audio, base_config):
    api, app = env
    clip = api.upload(audio["note.ogg"])
    dead = create_app(
        {
            **base_config,
            "S3_KEY_PREFIX": services_of(app).settings.key_prefix,
            "S3_ENDPOINT_URL": "http://127.0.0.1:9",
            "S3_CONNECT_TIMEOUT_SECONDS": "1",
        }
    )
    services_of(dead).clips.delete("sweep-user", uuid.UUID(clip["id"]))
    report = sweep(app, "--reconcile", "--min-orphan-age", "0")
    assert "objects with a recorded deletion: 1" in report
    assert "orphan objects (no row, no recorded deletion): 0" in report


def test_small_batches_and_several_sweepers_at_once(env, audio):
    api, app = env
    services = services_of(app)
    stale = [api.create(audio["note.ogg"])["clip"]["id"] for _ in range(7)]
    age_clips(app, 3)
    dry = Sweeper(services.db, services.storage, services.settings, batch_size=2).run(apply=False)
    assert dry.expired == 7 and dry.rows_scanned == 7
    sweepers = [Sweeper(services.db, services.storage, services.settings, batch_size=2) for _ in range(3)]
    with ThreadPoolExecutor(3) as pool:
        reports = list(pool.map(lambda s: s.run(apply=True), sweepers))
    assert sum(r.expired for r in reports) == 7  # each clip expired exactly once
    assert {status(api, i) for i in stale} == {"expired"}
    with services.db.read() as session:
        assert session.scalar(select(func.count()).select_from(PendingDeletion)) == 7


def test_delete_needs_apply(env):
    _, app = env
    result = run_cli(app, ["sweep", "--delete"])
    assert result.exit_code != 0 and "--delete needs --apply" in result.output


def test_sweep_reports_an_unreachable_store(base_config):
    dead = create_app({**base_config, "S3_ENDPOINT_URL": "http://127.0.0.1:9", "S3_CONNECT_TIMEOUT_SECONDS": "1"})
    result = run_cli(dead, ["sweep"])
    assert result.exit_code == 1 and "could not be reached" in result.output

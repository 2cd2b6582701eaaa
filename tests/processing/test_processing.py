"""The processing stage over real parts: the runner with the real engine (PyAV), moto's
server over HTTP, the app on loopback, PostgreSQL or SQLite; killed runs in a real child
process; and the web app's imports (no Celery, PyAV or numpy).

The Celery worker itself is tested in tests/processing/test_worker.py.
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from advanced_notes.adapters import processing_sql as sql
from advanced_notes.adapters.storage import S3Storage
from advanced_notes.adapters.taskqueue import BrokerUnavailable, CeleryPublisher
from advanced_notes.api.context import services_of
from advanced_notes.app import create_app
from advanced_notes.domain.clock import utcnow
from advanced_notes.domain.keys import DERIVED_NAMES, derived_keys
from advanced_notes.services.processing_relay import ProcessingRelay
from advanced_notes.services.processing_runner import ProcessingRunner, time_limits
from advanced_notes.settings import load_settings
from advanced_notes.worker.engine import media_engine
from testkit.live import Api
from testkit.servers import LiveServer
from tests.helpers import pending_deletions, run_cli

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(base_config, make_token):
    """An app on its own key prefix, served on loopback; yields (api, app)."""
    app = create_app({**base_config, "S3_KEY_PREFIX": f"proc-{uuid.uuid4().hex[:8]}"})
    server = LiveServer(app)
    yield Api(server.url, make_token("proc-user")), app
    server.stop()


def runner_for(app, engine=None, clock=utcnow, **overrides: str) -> ProcessingRunner:
    services = services_of(app)
    settings = services.settings
    if overrides:
        settings = load_settings({**_env_of(settings), **overrides})
    return ProcessingRunner(
        services.db,
        services.storage,
        services.deletions,
        engine or media_engine(settings),
        settings,
        services.webhooks,
        clock=clock,
    )


def _env_of(settings) -> dict[str, str]:
    env: dict[str, str] = {}
    for field, names in type(settings).variable_names().items():
        value = getattr(settings, field)
        if value is None:
            continue
        env[names[0]] = " ".join(value) if isinstance(value, tuple) else str(value)
    return env


class Recorder:
    """A publisher that records what it was asked to publish (the broker is tested in test_worker.py)."""

    def __init__(self) -> None:
        self.published: list[uuid.UUID] = []

    def __call__(self, clip_id: uuid.UUID) -> None:
        self.published.append(clip_id)


def job_of(app, clip_id: str):
    with services_of(app).db.read() as session:
        return sql.job(session, clip_id=uuid.UUID(clip_id))


def clip_of(api: Api, clip_id: str) -> dict[str, Any]:
    response = api("GET", f"/api/audio-clips/{clip_id}")
    assert response.status_code == 200, response.text
    return response.json()["clip"]


def keys_of_clip(app, clip_id: str) -> list[str]:
    services = services_of(app)
    folder = f"{services.settings.key_prefix}/audio-clips/"
    return [o.key for page in services.storage.list_objects(folder) for o in page if clip_id in o.key]


# -- the web side never loads the worker's libraries ---------------------------------------


def test_the_web_app_never_imports_celery_pyav_or_numpy(base_config):
    code = (
        "import sys, wsgi\n"
        "from advanced_notes.app import create_app\n"
        "create_app()\n"
        "loaded = sorted(m for m in ('av', 'numpy', 'celery', 'kombu') if m in sys.modules)\n"
        "print(loaded)\n"
    )
    env = {**os.environ, **base_config}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout


# -- the runner with the real engine ---------------------------------------------------------


def test_a_ready_clip_is_queued_then_processed(env, audio):
    api, app = env
    clip = api.upload(audio["note.webm"])
    assert clip["processing"]["status"] == "queued" and clip["processing"]["renditions"] == ["original"]
    job = job_of(app, clip["id"])
    assert job is not None and job.attempts == 0 and job.next_attempt_at is not None

    assert runner_for(app).run(uuid.UUID(clip["id"])) == "done"
    processing = clip_of(api, clip["id"])["processing"]
    assert processing["status"] == "done" and processing["reason"] is None
    # ffmpeg's WebM already has Duration and Cues: its seekable rendition is skipped
    assert processing["renditions"] == ["original", "universal"]
    assert "Duration and Cues" in processing["skipped"]["seekable"]
    assert abs(processing["duration_ms"] - audio["note.webm"].duration_ms) < 50
    assert -40 < processing["loudness_lufs"] < 0 and processing["true_peak_dbtp"] <= 0.5
    job = job_of(app, clip["id"])
    assert (job.attempts, job.next_attempt_at, job.lease_until) == (1, None, None)
    # a duplicate message finds the job finished
    assert runner_for(app).run(uuid.UUID(clip["id"])) == "busy"


def test_renditions_are_409_until_made_and_when_skipped(env, audio):
    api, app = env
    m4a = api.upload(audio["note.m4a"])
    before = api("GET", f"/api/audio-clips/{m4a['id']}/playback?rendition=universal")
    assert before.status_code == 409 and before.json()["error"]["code"] == "rendition_not_ready"
    assert before.json()["error"]["details"]["rendition"] == "universal"
    assert (
        "not ready yet" in before.json()["error"]["message"]
        and "rendition=original" in before.json()["error"]["message"]
    )
    assert api("GET", f"/api/audio-clips/{m4a['id']}/peaks").status_code == 409
    assert api("GET", f"/api/audio-clips/{m4a['id']}/playback?rendition=bogus").status_code == 422

    assert runner_for(app).run(uuid.UUID(m4a["id"])) == "done"
    processing = clip_of(api, m4a["id"])["processing"]
    assert processing["renditions"] == ["original"] and set(processing["skipped"]) == {"seekable", "universal"}
    for name in ("seekable", "universal"):
        answer = api("GET", f"/api/audio-clips/{m4a['id']}/playback?rendition={name}")
        assert answer.status_code == 409, answer.text
        message = answer.json()["error"]["message"]
        assert "skipped" in message and "Ask for another rendition: original" in message, message
        assert answer.json()["error"]["details"]["rendition"] == name
    assert api("GET", f"/api/audio-clips/{m4a['id']}/playback").status_code == 200
    peaks = api("GET", f"/api/audio-clips/{m4a['id']}/peaks")
    assert peaks.status_code == 200
    got = requests.get(peaks.json()["url"], timeout=10)
    assert got.headers["Content-Type"] == "application/json" and got.json()["version"] == 2


def test_note_audio_plays_a_rendition(env, audio):
    api, app = env
    clip = api.upload(audio["note.ogg"], note_id="note-r")
    assert api("GET", "/api/notes/note-r/audio?rendition=universal").status_code == 409
    runner_for(app).run(uuid.UUID(clip["id"]))
    answer = api("GET", "/api/notes/note-r/audio?rendition=universal")
    assert answer.status_code == 200, answer.text
    got = requests.get(answer.json()["playback"]["url"], timeout=10)
    assert got.status_code == 200 and got.headers["Content-Type"] == "audio/mp4"
    assert answer.json()["clip"]["processing"]["status"] == "done"


def test_an_undecodable_original_fails_processing_but_stays_ready_and_playable(env, audio):
    """The verified object swapped for bytes FFmpeg cannot read (a PUT URL reused with
    S3_CONDITIONAL_WRITES off): failed with a reason, the clip ready, its original served."""
    api, app = env
    clip = api.upload(audio["note.wav"])
    storage = services_of(app).storage
    storage.put_object(clip["storage_key"], audio["not-audio.html"].data, "audio/wav")
    assert runner_for(app).run(uuid.UUID(clip["id"])) == "failed"
    after = clip_of(api, clip["id"])
    assert after["status"] == "ready" and after["processing"]["status"] == "failed"
    assert after["processing"]["reason"]["code"] == "not_audio" and after["processing"]["reason"]["message"]
    assert api("GET", f"/api/audio-clips/{clip['id']}/playback").status_code == 200
    failed = api("GET", f"/api/audio-clips/{clip['id']}/playback?rendition=universal")
    assert failed.status_code == 409 and "processing failed (not_audio)" in failed.json()["error"]["message"]
    assert job_of(app, clip["id"]).next_attempt_at is None  # not retried


def test_store_faults_back_off_then_fail(env, audio, base_config):
    api, app = env
    clip = api.upload(audio["note.mp3"])
    dead = {**_env_of(services_of(app).settings), "S3_ENDPOINT_URL": "http://127.0.0.1:9"}
    dead.update(S3_CONNECT_TIMEOUT_SECONDS="1", S3_MAX_ATTEMPTS="1", PROCESSING_MAX_ATTEMPTS="2")
    settings = load_settings(dead)
    services = services_of(app)
    now = utcnow()

    def runner(at: dt.datetime) -> ProcessingRunner:
        return ProcessingRunner(
            services.db,
            S3Storage(settings),
            services.deletions,
            media_engine(settings),
            settings,
            services.webhooks,
            clock=lambda: at,
        )

    assert runner(now).run(uuid.UUID(clip["id"])) == "retry"
    assert clip_of(api, clip["id"])["processing"]["status"] == "queued"
    job = job_of(app, clip["id"])
    assert job.next_attempt_at == now + dt.timedelta(seconds=10) and "could not be reached" in job.last_error
    assert runner(now + dt.timedelta(seconds=11)).run(uuid.UUID(clip["id"])) == "failed"
    processing = clip_of(api, clip["id"])["processing"]
    assert processing["status"] == "failed" and processing["reason"]["code"] == "store_unavailable"


# -- the outbox and its relay ----------------------------------------------------------------------


def test_broker_down_keeps_the_job_queued_until_a_relay_succeeds(env, audio):
    api, app = env
    services = services_of(app)
    clip = api.upload(audio["note.flac"])
    down = CeleryPublisher("redis://127.0.0.1:9/0", services.settings)  # nothing listens there
    with pytest.raises(BrokerUnavailable):
        down(uuid.UUID(clip["id"]))
    started = time.monotonic()
    result = ProcessingRelay(services.db, down, services.settings).publish_due(limit=1000)
    assert result.failed and result.published == 0
    assert time.monotonic() - started < 30
    job = job_of(app, clip["id"])
    assert job.next_attempt_at <= utcnow() and clip_of(api, clip["id"])["processing"]["status"] == "queued"

    recorder = Recorder()
    assert ProcessingRelay(services.db, recorder, services.settings).publish_due(limit=1000).published >= 1
    assert uuid.UUID(clip["id"]) in recorder.published
    # published: not due again until the republish time
    again = Recorder()
    ProcessingRelay(services.db, again, services.settings).publish_due(limit=1000)
    assert uuid.UUID(clip["id"]) not in again.published
    assert runner_for(app).run(uuid.UUID(clip["id"])) == "done"


def _slow_run(config: dict[str, str], clip_id: str, started: str) -> None:
    """In a child process: claim the job and hang inside the engine (until killed)."""
    app = create_app(config)

    def engine(source: Path, workdir: Path) -> Any:
        Path(started).write_text("running")
        time.sleep(600)

    runner_for(app, engine=engine).run(uuid.UUID(clip_id))


def test_a_killed_run_is_run_again_once_its_lease_ends(env, audio, tmp_path):
    api, app = env
    services = services_of(app)
    clip = api.upload(audio["note.webm"])
    config = {**_env_of(services.settings)}
    started = tmp_path / "started"
    child = multiprocessing.get_context("spawn").Process(target=_slow_run, args=(config, clip["id"], str(started)))
    child.start()
    deadline = time.monotonic() + 120
    while not started.exists():
        assert child.is_alive() and time.monotonic() < deadline
        time.sleep(0.1)
    os.kill(child.pid, signal.SIGKILL)
    child.join(10)
    assert child.exitcode == -signal.SIGKILL

    job = job_of(app, clip["id"])
    assert job.attempts == 1 and job.lease_until is not None
    assert clip_of(api, clip["id"])["processing"]["status"] == "running"
    # While the lease runs, a redelivered message and the relay leave the job alone.
    assert runner_for(app).run(uuid.UUID(clip["id"])) == "busy"
    recorder = Recorder()
    ProcessingRelay(services.db, recorder, services.settings).publish_due(limit=1000)
    assert uuid.UUID(clip["id"]) not in recorder.published

    lease = time_limits(services.settings)[2]
    later = utcnow() + lease + dt.timedelta(seconds=1)
    ProcessingRelay(services.db, recorder, services.settings, clock=lambda: later).publish_due(limit=1000)
    assert recorder.published.count(uuid.UUID(clip["id"])) == 1
    assert runner_for(app, clock=lambda: later).run(uuid.UUID(clip["id"])) == "done"
    assert runner_for(app, clock=lambda: later).run(uuid.UUID(clip["id"])) == "busy"
    job = job_of(app, clip["id"])
    assert job.attempts == 2 and job.next_attempt_at is None
    assert clip_of(api, clip["id"])["processing"]["status"] == "done"


def test_runs_that_keep_dying_end_failed(env, audio):
    api, app = env
    services = services_of(app)
    clip = api.upload(audio["note.ogg"])
    clip_id = uuid.UUID(clip["id"])
    at = utcnow()
    lease = time_limits(services.settings)[2]
    for _ in range(services.settings.processing_max_attempts):  # claims whose runs never finished
        with services.db.transaction() as session:
            assert sql.claim_job(session, clip_id=clip_id, now=at, lease_until=at + lease) is not None
        at += lease + dt.timedelta(seconds=1)
    assert runner_for(app, clock=lambda: at).run(clip_id) == "failed"
    assert clip_of(api, clip["id"])["processing"]["reason"]["code"] == "worker_lost"


# -- deletion -----------------------------------------------------------------------------


def test_delete_removes_every_derived_object(env, audio):
    api, app = env
    clip = api.upload(audio["note.webm"], note_id="note-d")
    other = api.upload(audio["note.ogg"], note_id="note-d")
    for one in (clip, other):
        assert runner_for(app).run(uuid.UUID(one["id"])) == "done"
    assert len(keys_of_clip(app, clip["id"])) == 3  # original, universal, peaks
    assert api("DELETE", f"/api/audio-clips/{clip['id']}").status_code == 204
    assert keys_of_clip(app, clip["id"]) == []
    assert len(keys_of_clip(app, other["id"])) == 3
    assert api("DELETE", "/api/notes/note-d/audio").json() == {"deleted": 1}
    assert keys_of_clip(app, other["id"]) == []
    # derived objects are finished by their first delete; the original waits for its PUT URL to expire
    waiting = pending_deletions(app, clip["id"])
    assert [record.storage_key for record in waiting] == [clip["storage_key"]]


def test_a_clip_deleted_while_processing_leaves_no_derived_object(env, audio):
    api, app = env
    clip = api.upload(audio["note.webm"])
    engine = media_engine(services_of(app).settings)

    def deleting_engine(source: Path, workdir: Path) -> Any:
        result = engine(source, workdir)
        assert api("DELETE", f"/api/audio-clips/{clip['id']}").status_code == 204
        return result

    assert runner_for(app, engine=deleting_engine).run(uuid.UUID(clip["id"])) == "dropped"
    assert keys_of_clip(app, clip["id"]) == []
    assert all(key.rsplit("/", 1)[-1] in DERIVED_NAMES for key in derived_keys(clip["storage_key"]))


def test_processing_webhooks_are_recorded(base_config, make_token, audio):
    secret = "whsec_" + "A" * 32
    app = create_app(
        {
            **base_config,
            "S3_KEY_PREFIX": f"proc-{uuid.uuid4().hex[:8]}",
            "WEBHOOK_URLS": "http://127.0.0.1:9/hook",
            "WEBHOOK_SECRET": secret,
        }
    )
    server = LiveServer(app)
    try:
        api = Api(server.url, make_token("proc-user"))
        good = api.upload(audio["note.mp3"])
        bad = api.upload(audio["note.wav"])
        services_of(app).storage.put_object(bad["storage_key"], b"garbage" * 10, "audio/wav")
        assert runner_for(app).run(uuid.UUID(good["id"])) == "done"
        assert runner_for(app).run(uuid.UUID(bad["id"])) == "failed"
        from advanced_notes.services.webhooks import WebhookDispatcher

        rows = WebhookDispatcher(services_of(app).db, services_of(app).settings).listing(failed_only=False)
        events = {(row.event_type, str(row.clip_id)): json.loads(row.payload) for row in rows}
        processed = events[("clip.processed", good["id"])]["data"]
        assert processed["processing"]["renditions"]["universal"]["codec"] == "aac"
        failed = events[("clip.processing_failed", bad["id"])]["data"]
        assert failed["processing"]["reason"]["code"] == "not_audio"
    finally:
        server.stop()


def test_cli_status_relay_and_worker_check(env, audio, base_config):
    api, app = env
    clip = api.upload(audio["note.mp3"])
    status = run_cli(app, ["processing", "status"])
    assert status.exit_code == 0 and "queued: " in status.output and "jobs due now: " in status.output
    assert not status.output.count("queued: 0")
    outside_dev = run_cli(app, ["processing", "relay", "--once"])  # APP_ENV=test, no broker set
    assert outside_dev.exit_code != 0 and "PROCESSING_BROKER_URL" in outside_dev.output
    down = create_app({**_env_of(services_of(app).settings), "PROCESSING_BROKER_URL": "redis://127.0.0.1:9/0"})
    relay = run_cli(down, ["processing", "relay", "--once"])
    assert relay.exit_code == 1 and "broker unavailable" in relay.output, relay.output
    assert job_of(app, clip["id"]).next_attempt_at <= utcnow()
    check = run_cli(down, ["worker", "check", "--timeout", "1"])
    assert check.exit_code == 1 and "FAIL  broker: not reachable" in check.output, check.output

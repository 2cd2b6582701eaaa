"""A real Celery worker process (prefork, one child) processing uploads end to end.

``celery -A advanced_notes.worker.celery_app worker --pool prefork -c 1`` is started by a
fixture with the test's settings, on Redis (127.0.0.1:6379/5, a queue of its own) with the
relay run by the test, and once on kombu's SQLite transport with the relay run by the
worker's own beat (``-B``). moto's threaded server is the store, the app runs on loopback;
every fixture goes through create, PUT, complete; the renditions the worker made are then
fetched through playback URLs and checked with ffprobe (skipped when absent).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from advanced_notes.adapters.taskqueue import CeleryPublisher
from advanced_notes.api.context import services_of
from advanced_notes.app import create_app
from advanced_notes.services.processing_relay import ProcessingRelay
from testkit.live import Api
from testkit.servers import LiveServer
from tests.helpers import run_cli

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
CELERY = Path(sys.executable).with_name("celery")
REDIS_BROKER = "redis://127.0.0.1:6379/5"
GOOD = ("note.flac", "note.m4a", "note.mp3", "note.ogg", "note.wav", "note.webm")
CODECS = {"seekable": {"opus", "vorbis"}, "universal": {"aac"}}


def _redis_up() -> bool:
    import socket

    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", 6379), timeout=1):
        return True
    return False


@contextlib.contextmanager
def celery_worker(settings: dict[str, str], log: Path, *, beat: bool) -> Iterator[subprocess.Popen]:
    """``celery ... worker --pool prefork -c 1`` with ``settings`` as its environment."""
    args = [str(CELERY), "-A", "advanced_notes.worker.celery_app", "worker", "--pool", "prefork", "-c", "1"]
    args += ["-Q", settings["PROCESSING_QUEUE"], "--loglevel", "INFO", "--without-gossip", "--without-mingle"]
    if beat:
        args += ["-B", "--schedule", str(log.with_suffix(".beat"))]
    env = {**os.environ, **settings}
    with log.open("w") as out:
        worker = subprocess.Popen(args, cwd=log.parent, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield worker
    finally:
        worker.terminate()
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(10)


def wait_processed(api: Api, clip_ids: list[str], worker: subprocess.Popen, log: Path, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    clips: dict[str, Any] = {}
    while time.monotonic() < deadline:
        for clip_id in clip_ids:
            clip = api("GET", f"/api/audio-clips/{clip_id}").json()["clip"]
            if clip["processing"]["status"] in ("done", "failed"):
                clips[clip_id] = clip
        if len(clips) == len(clip_ids):
            return clips
        assert worker.poll() is None, log.read_text()[-3000:]
        time.sleep(0.5)
    raise AssertionError(f"not processed in {timeout} s: {set(clip_ids) - set(clips)}\n{log.read_text()[-3000:]}")


def ffprobe(path: Path) -> tuple[str, float]:
    """(codec of the first audio stream, duration in ms) as ffprobe reads the file."""
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "a:0",
            "-show_entries",
            "stream=codec_name:format=duration",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    data = json.loads(out.stdout)
    return data["streams"][0]["codec_name"], float(data["format"]["duration"]) * 1000


def check_outputs(api: Api, clip: dict[str, Any], tmp: Path) -> None:
    processing = clip["processing"]
    assert processing["status"] == "done", processing
    for name in processing["renditions"]:
        answer = api("GET", f"/api/audio-clips/{clip['id']}/playback?rendition={name}")
        assert answer.status_code == 200, answer.text
        got = requests.get(answer.json()["url"], timeout=30)
        assert got.status_code == 200
        if name != "original":
            assert got.headers["Content-Type"] in ("audio/webm", "audio/mp4")
        path = tmp / f"{clip['id']}-{name}"
        path.write_bytes(got.content)
        if shutil.which("ffprobe"):
            codec, duration_ms = ffprobe(path)
            if name in CODECS:
                assert codec in CODECS[name], (name, codec)
            assert abs(duration_ms - processing["duration_ms"]) <= 50, (clip["mime_type"], name, duration_ms)
    peaks_url = api("GET", f"/api/audio-clips/{clip['id']}/peaks").json()["url"]
    peaks = requests.get(peaks_url, timeout=30)
    assert peaks.headers["Content-Type"] == "application/json"
    body = peaks.json()
    assert body["version"] == 2 and len(body["data"]) == 2 * body["length"] and body["length"] > 0


def _worker_settings(base_config: dict[str, Any], prefix: str, broker: str, queue: str) -> dict[str, str]:
    return {
        **{k: str(v) for k, v in base_config.items()},
        "S3_KEY_PREFIX": prefix,
        "PROCESSING_BROKER_URL": broker,
        "PROCESSING_QUEUE": queue,
        "LOG_FORMAT": "text",
    }


def test_a_celery_worker_on_redis_processes_every_fixture(base_config, make_token, audio, tmp_path):
    if not _redis_up():
        pytest.skip("no Redis on 127.0.0.1:6379")
    prefix, queue = f"worker-{uuid.uuid4().hex[:8]}", f"test-{uuid.uuid4().hex[:8]}"
    settings = _worker_settings(base_config, prefix, REDIS_BROKER, queue)
    app = create_app(settings)
    server = LiveServer(app)
    services = services_of(app)
    publisher = CeleryPublisher(REDIS_BROKER, services.settings)
    relay = ProcessingRelay(services.db, publisher, services.settings)
    log = tmp_path / "worker.log"
    try:
        api = Api(server.url, make_token("worker-user"))
        with celery_worker(settings, log, beat=False) as worker:
            # a hostile original first: the one child must survive it for the rest
            hostile = api.upload(audio["note.wav"])
            services.storage.put_object(hostile["storage_key"], b"\x00garbage" * 64, "audio/wav")
            assert relay.publish_due(limit=1000).published >= 1
            clips = {name: api.upload(audio[name]) for name in GOOD}
            ids = [hostile["id"], *(clip["id"] for clip in clips.values())]
            while relay.publish_due(limit=1000).published:
                pass
            done = wait_processed(api, ids, worker, log)
            pid_alive = worker.poll() is None
            check = run_cli(app, ["worker", "check", "--timeout", "5"])
            assert check.exit_code == 0 and "OK    workers: celery@" in check.output, check.output
        assert pid_alive
        failed = done[hostile["id"]]
        assert failed["status"] == "ready" and failed["processing"]["reason"]["code"] in ("not_audio", "corrupt")
        assert api("GET", f"/api/audio-clips/{hostile['id']}/playback").status_code == 200
        for clip in clips.values():
            check_outputs(api, done[clip["id"]], tmp_path)
        m4a = done[clips["note.m4a"]["id"]]["processing"]
        assert "universal" not in m4a["renditions"] and "AAC-LC" in m4a["skipped"]["universal"]
    finally:
        publisher.close()
        server.stop()


def test_a_celery_worker_on_the_sqlite_transport_with_its_beat_relay(base_config, make_token, audio, tmp_path):
    prefix, queue = f"worker-{uuid.uuid4().hex[:8]}", f"test-{uuid.uuid4().hex[:8]}"
    broker = f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}"
    settings = _worker_settings(base_config, prefix, broker, queue)
    app = create_app(settings)
    server = LiveServer(app)
    log = tmp_path / "worker.log"
    try:
        api = Api(server.url, make_token("worker-user"))
        with celery_worker(settings, log, beat=True) as worker:
            clip = api.upload(audio["note.ogg"])  # the worker's beat runs the relay
            done = wait_processed(api, [clip["id"]], worker, log)
        check_outputs(api, done[clip["id"]], tmp_path)
    finally:
        server.stop()

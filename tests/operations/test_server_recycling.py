"""The production server config survives worker recycling under load.

Runs the real ``gunicorn -c gunicorn.conf.py wsgi:app`` (the file production uses, with
its hooks) with a tiny ``max_requests`` so every worker recycles many times, several at
once, while 32 clients drive the API (creates, PUTs, completes, reads, lists, playback,
note audio, health, metrics). Then: no connection error, no 5xx, the master alive and
its log free of ``Unhandled exception``, and ``/metrics`` counting exactly the live
workers (a dead worker whose live gauge was not dropped would be counted too).
"""

from __future__ import annotations

import collections
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import jwt
import pytest
import requests

from testkit.live import put_upload
from testkit.servers import gunicorn_serving
from tests.helpers import JWT_SECRET

pytestmark = pytest.mark.e2e

WORKERS = 4
REQUESTS = 3000
CLIENTS = 32


@pytest.fixture
def gunicorn_server(app, base_config, tmp_path):  # app: the bucket exists
    """gunicorn with the repo's gunicorn.conf.py, recycling every ~30 requests."""
    log_path = tmp_path / "gunicorn.log"
    with (
        log_path.open("wb") as log,
        gunicorn_serving(
            base_config,
            log,
            GUNICORN_WORKERS=str(WORKERS),
            GUNICORN_THREADS="2",
            GUNICORN_MAX_REQUESTS="30",
            GUNICORN_MAX_REQUESTS_JITTER="5",
            MAX_PENDING_UPLOADS_PER_OWNER="0",
        ) as (base, proc),
    ):
        yield base, proc, log_path


def _workers_gauge(base: str) -> float:
    text = requests.get(f"{base}/metrics", timeout=10).text
    # The app's own collectors are exported under gunicorn too, not only the request metrics.
    assert 'advanced_notes_clips{status="ready"}' in text
    match = re.search(r"^advanced_notes_workers(?:\{[^}]*\})? (\S+)$", text, re.M)
    assert match, "advanced_notes_workers missing from /metrics"
    return float(match.group(1))


def test_recycling_workers_under_load_keeps_the_master_and_metrics(gunicorn_server, audio):
    base, proc, log_path = gunicorn_server
    note = audio["note.ogg"]
    tokens = [
        jwt.encode({"sub": f"recycle-{i}", "exp": int(time.time()) + 3600}, JWT_SECRET, algorithm="HS256")
        for i in range(8)
    ]
    statuses: collections.Counter[tuple[str, int]] = collections.Counter()
    errors: list[str] = []
    ready: dict[int, tuple[str, str]] = {}  # owner index -> (clip id, note id) of a ready clip

    def call(method: str, path: str, owner: int, **kw) -> requests.Response | None:
        try:
            response = requests.request(
                method, base + path, timeout=30, headers={"Authorization": f"Bearer {tokens[owner]}"}, **kw
            )
        except requests.ConnectionError as exc:
            errors.append(f"{method} {path}: {exc!r}")
            return None
        statuses[(f"{method} {re.sub(r'[0-9a-f-]{36}', '<id>', path)}", response.status_code)] += 1
        return response

    def upload(owner: int) -> None:
        note_id = f"note-{uuid.uuid4().hex[:8]}"
        created = call(
            "POST",
            "/api/audio-clips",
            owner,
            json={"mime_type": note.mime_type, "bytes": note.size, "note_id": note_id},
        )
        if created is None or created.status_code != 201:
            return
        body = created.json()
        assert put_upload(body["upload"], note.data).status_code == 200
        done = call("POST", f"/api/audio-clips/{body['clip']['id']}/complete", owner)
        if done is not None and done.status_code == 200:
            ready[owner] = (body["clip"]["id"], note_id)

    for owner in range(len(tokens)):
        upload(owner)
    assert len(ready) == len(tokens), statuses

    def one(i: int) -> None:
        owner = i % len(tokens)
        clip_id, note_id = ready[owner]
        kind = i % 8
        if kind == 0:
            upload(owner)
        elif kind == 1:
            call("GET", f"/api/audio-clips/{clip_id}/playback", owner)
        elif kind == 2:
            call("GET", f"/api/notes/{note_id}/audio", owner)
        elif kind == 3:
            call("GET", "/api/audio-clips?limit=5", owner)
        elif kind == 4:
            call("GET", f"/api/audio-clips/{clip_id}", owner)
        elif kind == 5:
            call("GET", f"/api/audio-clips/{uuid.uuid4()}", owner)  # a 404 is an answer too
        elif kind == 6:
            call("GET", "/healthz", owner)
        else:
            call("GET", "/metrics", owner)

    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(one, range(REQUESTS)))

    log = log_path.read_text(errors="replace")
    answered = sum(statuses.values())
    server_errors = {k: n for k, n in statuses.items() if k[1] >= 500}
    assert errors == [], f"{len(errors)} connection errors, first: {errors[:3]}"
    assert server_errors == {}, server_errors
    assert answered >= REQUESTS, statuses
    assert proc.poll() is None, f"the gunicorn master exited:\n{log[-3000:]}"
    assert "Unhandled exception" not in log, log[-3000:]
    recycled = log.count("Autorestarting worker")
    assert recycled >= WORKERS * 2, f"only {recycled} worker restarts: the test did not cross recycling"

    # A worker that is being replaced right now may be missing for a moment; one whose
    # gauge file outlived it would be counted for ever.
    deadline = time.monotonic() + 15
    while (count := _workers_gauge(base)) != WORKERS and time.monotonic() < deadline:
        time.sleep(0.3)
    assert count == WORKERS, f"/metrics counts {count} live workers, {WORKERS} are configured"

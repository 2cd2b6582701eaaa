"""One structured line per request with a request id; signatures and tokens never logged."""

from __future__ import annotations

import io
import json
import logging

import pytest

from advanced_notes.api.context import services_of
from advanced_notes.api.logs import configure_logging
from testkit.live import put_upload
from tests.helpers import create


def request_records(caplog):
    return [r for r in caplog.records if r.name == "advanced_notes.request"]


def test_request_id_is_echoed_or_generated(client, auth):
    given = client.get("/api/audio-clips", headers={**auth, "X-Request-ID": "abc-123"})
    assert given.headers["X-Request-ID"] == "abc-123"
    made = client.get("/healthz")
    assert len(made.headers["X-Request-ID"]) == 32
    for bad in ("has space", "x" * 129, "<script>", ""):
        assert client.get("/healthz", headers={"X-Request-ID": bad}).headers["X-Request-ID"] != bad


def test_one_line_per_request_with_its_fields(client, auth, caplog):
    caplog.set_level(logging.INFO, logger="advanced_notes.request")
    clip = create(client, auth)["clip"]
    client.get(f"/api/audio-clips/{clip['id']}", headers={**auth, "X-Request-ID": "rid-1"})
    client.get("/api/audio-clips", headers={"Authorization": "Bearer nope"})
    records = request_records(caplog)
    assert len(records) == 3
    read = records[1]
    assert (read.request_id, read.method, read.path, read.status, read.owner, read.clip_id) == (
        "rid-1",
        "GET",
        f"/api/audio-clips/{clip['id']}",
        200,
        "alice",
        clip["id"],
    )
    assert isinstance(read.duration_ms, float) and read.duration_ms >= 0
    assert (records[2].status, records[2].owner) == (401, None)


def test_json_lines(monkeypatch, app):
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])  # as in a fresh process
    level = root.level
    configure_logging(services_of(app).settings)
    stream = io.StringIO()
    root.handlers[0].setStream(stream)
    try:
        app.test_client().get("/healthz", headers={"X-Request-ID": "json-1"})
    finally:
        root.handlers.clear()
        root.setLevel(level)
    line = next(json.loads(x) for x in stream.getvalue().splitlines() if "json-1" in x)
    assert line["message"] == "request" and line["status"] == 200 and line["path"] == "/healthz"
    assert {"time", "level", "request_id", "duration_ms", "owner", "clip_id"} <= set(line)


def test_signatures_and_tokens_never_reach_the_logs(app, client, auth, caplog, audio):
    configure_logging(services_of(app).settings)  # holds botocore & co at WARNING
    caplog.set_level(logging.DEBUG)
    token = auth["Authorization"].split()[1]
    f = audio["note.ogg"]
    created = create(client, auth, mime_type=f.mime_type, bytes=f.size, note_id="secret-check")
    put_upload(created["upload"], f.data)
    client.post(f"/api/audio-clips/{created['clip']['id']}/complete", headers=auth)
    playback = client.get(f"/api/audio-clips/{created['clip']['id']}/playback", headers=auth).get_json()
    client.get("/api/notes/secret-check/audio", headers=auth)
    client.get("/api/audio-clips", headers={"Authorization": f"Bearer {token}x"})  # a rejected token too
    secrets = [
        token,
        "X-Amz-Signature",
        "Signature=",
        created["upload"]["url"].rsplit("=", 1)[1],
        playback["url"].rsplit("=", 1)[1],
    ]
    assert len(caplog.records) > 5
    for record in caplog.records:
        text = record.getMessage() + " " + " ".join(str(v) for v in vars(record).values())
        for secret in secrets:
            assert secret not in text, (record.name, secret)


@pytest.mark.parametrize("name", ["botocore", "botocore.auth", "urllib3.connectionpool"])
def test_signing_libraries_stay_quiet_even_at_debug(app, name):
    configure_logging(services_of(app).settings)
    assert not logging.getLogger(name).isEnabledFor(logging.DEBUG)

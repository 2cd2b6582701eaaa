"""The Python client: what it declares, and how it rides out an expired URL and store errors."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
import requests

from advanced_notes.client import AudioClipsClient, describe_file

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("name", ["note.m4a", "note.mp3", "note.wav", "note.ogg", "note.webm", "note.flac"])
def test_describe_file_declares_type_size_duration_and_checksum(audio, name):
    f = audio[name]
    declared = describe_file(str(f.path))
    assert declared["bytes"] == f.size and declared["checksum_sha256"] == f.sha256_base64
    assert abs(declared["duration_ms"] - f.duration_ms) <= 100
    assert declared["mime_type"] == f.mime_type


def test_describe_file_sniffs_when_the_name_says_nothing(audio, tmp_path):
    unnamed = tmp_path / "recording"
    unnamed.write_bytes(audio["note.ogg"].data)
    assert describe_file(str(unnamed))["mime_type"] == "audio/ogg"


class StubStore:
    """A stand-in for the store where moto cannot play the part: moto accepts expired
    URLs and never fails on purpose. It answers each PUT with the next scripted
    status (and S3's body for it), and records what it got."""

    BODIES: ClassVar[dict[int, bytes]] = {
        403: b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
        500: b"<Error><Code>InternalError</Code></Error>",
        200: b"",
    }

    def __init__(self, script: list[int]):
        store = self
        self.script, self.received = list(script), []

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self):
                store.received.append(self.rfile.read(int(self.headers["Content-Length"])))
                status = store.script.pop(0)
                self.send_response(status)
                self.send_header("Content-Length", str(len(store.BODIES[status])))
                self.end_headers()
                self.wfile.write(store.BODIES[status])

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/bucket/key"


def test_an_expired_put_url_is_re_signed(live_server, make_token, audio):
    f = audio["note.ogg"]
    client = AudioClipsClient(live_server.url, make_token("client-user"), backoff_seconds=0.01)
    created = client.create(mime_type=f.mime_type, bytes=f.size)
    stub = StubStore([403])
    client.put(created["clip"]["id"], {**created["upload"], "url": stub.url}, str(f.path))
    stub.server.shutdown()
    assert stub.received == [f.data]  # tried the expired URL once, then the re-signed one went to moto
    assert client.complete(created["clip"]["id"])["clip"]["status"] == "ready"


def test_store_errors_are_retried_and_refusals_are_not(live_server, make_token, audio):
    f = audio["note.ogg"]
    client = AudioClipsClient(live_server.url, make_token("client-user"), backoff_seconds=0.01)
    created = client.create(mime_type=f.mime_type, bytes=f.size)
    flaky = StubStore([500, 500, 200])
    client.put(created["clip"]["id"], {**created["upload"], "url": flaky.url}, str(f.path))
    assert len(flaky.received) == 3
    refusing = StubStore([403, 403, 403, 403, 403, 403])
    refusing.BODIES = {**StubStore.BODIES, 403: b"<Error><Code>SignatureDoesNotMatch</Code></Error>"}
    with pytest.raises(Exception, match="SignatureDoesNotMatch"):
        client.put(created["clip"]["id"], {**created["upload"], "url": refusing.url}, str(f.path))
    assert len(refusing.received) == 1
    for stub in (flaky, refusing):
        stub.server.shutdown()


def test_creates_carry_an_idempotency_key(live_server, make_token, monkeypatch):
    client = AudioClipsClient(live_server.url, make_token("client-user"))
    sent = []
    original = requests.Session.request
    monkeypatch.setattr(
        requests.Session,
        "request",
        lambda self, m, u, **kw: sent.append(kw.get("headers", {})) or original(self, m, u, **kw),
    )
    client.create(mime_type="audio/ogg", bytes=10)
    assert len(sent[0]["Idempotency-Key"]) == 36

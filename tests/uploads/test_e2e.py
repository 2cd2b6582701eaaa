"""End to end over real HTTP: the app on loopback, moto's threaded server as the store,
``requests`` doing the PUT with exactly ``upload.headers``, and the six real audio files."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pytest
import requests
from click.testing import CliRunner

from advanced_notes.tools.cli import main as cli_main
from testkit.live import put_upload
from testkit.paths import AUDIO_FILES
from testkit.sigv4 import signature_matches, signed_params
from tests.helpers import SECRET_KEY

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("name", AUDIO_FILES)
def test_three_step_upload_and_playback(api, audio, name):
    f = audio[name]
    created = api(
        "POST",
        "/api/audio-clips",
        json={
            "note_id": "e2e-note",
            "mime_type": f.mime_type,
            "bytes": f.size,
            "duration_ms": f.duration_ms,
            "checksum_sha256": f.sha256_base64,
        },
    )
    assert created.status_code == 201, created.text
    clip, upload = created.json()["clip"], created.json()["upload"]

    params = signed_params(upload["url"])
    assert params["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert params["X-Amz-SignedHeaders"] == "content-length;content-type;host;x-amz-checksum-sha256"
    assert params["X-Amz-Credential"].split("/")[2:] == ["us-east-1", "s3", "aws4_request"]
    assert params["X-Amz-Expires"] == "900"
    assert signature_matches(upload["url"], "PUT", upload["headers"], SECRET_KEY)

    put = put_upload(upload, f.data)
    assert put.status_code == 200, put.text

    done = api("POST", f"/api/audio-clips/{clip['id']}/complete")
    assert done.status_code == 200, done.text
    assert done.json()["clip"]["status"] == "ready" and done.json()["clip"]["stored_bytes"] == f.size

    playback = api("GET", f"/api/audio-clips/{clip['id']}/playback").json()
    assert signature_matches(playback["url"], "GET", {}, SECRET_KEY)
    got = requests.get(playback["url"], timeout=30)
    assert got.status_code == 200 and got.content == f.data
    assert got.headers["Content-Type"] == f.mime_type
    ranged = requests.get(playback["url"], headers={"Range": "bytes=0-99"}, timeout=30)
    assert ranged.status_code == 206 and ranged.content == f.data[:100]
    assert ranged.headers["Content-Range"] == f"bytes 0-99/{f.size}"


def test_note_audio_returns_the_newest_ready_clip(api, audio):
    ids = []
    for name in ("note.ogg", "note.webm"):
        f = audio[name]
        created = api(
            "POST", "/api/audio-clips", json={"note_id": "e2e/primary", "mime_type": f.mime_type, "bytes": f.size}
        ).json()
        assert put_upload(created["upload"], f.data).status_code == 200
        assert api("POST", f"/api/audio-clips/{created['clip']['id']}/complete").status_code == 200
        ids.append(created["clip"]["id"])
    body = api("GET", f"/api/notes/{quote('e2e/primary', safe='')}/audio").json()
    assert body["clip"]["id"] == ids[-1]
    assert requests.get(body["playback"]["url"], timeout=30).content == audio["note.webm"].data


def test_complete_before_put_is_409_and_the_upload_still_completes(api, audio):
    # The size rule itself is tests/uploads/test_api.py's (one test per rule).
    f = audio["note.wav"]
    created = api.create(f)
    clip_id = created["clip"]["id"]
    early = api("POST", f"/api/audio-clips/{clip_id}/complete")
    assert early.status_code == 409 and early.json()["error"]["code"] == "upload_missing"
    assert api("GET", f"/api/audio-clips/{clip_id}").json()["clip"]["status"] == "pending"
    assert put_upload(created["upload"], f.data).status_code == 200
    late = api("POST", f"/api/audio-clips/{clip_id}/complete")
    assert late.status_code == 200 and late.json()["clip"]["status"] == "ready"


def test_concurrent_completes_agree(api, audio):
    f = audio["note.flac"]
    created = api("POST", "/api/audio-clips", json={"mime_type": "audio/flac", "bytes": f.size}).json()
    assert put_upload(created["upload"], f.data).status_code == 200
    path = f"/api/audio-clips/{created['clip']['id']}/complete"
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda _: api("POST", path), range(10)))
    assert {a.status_code for a in answers} == {200}
    assert len({a.json()["clip"]["completed_at"] for a in answers}) == 1


def test_client_command_uploads_a_real_file(live_server, make_token, audio):
    result = CliRunner().invoke(
        cli_main,
        [
            "upload",
            str(audio["note.m4a"].path),
            "--note-id",
            "cli-note",
            "--quiet",
            "--api",
            live_server.url,
            "--token",
            make_token("cli-user"),
        ],
    )
    assert result.exit_code == 0, result.output
    url = result.output.strip().splitlines()[-1]
    assert url.startswith("http://127.0.0.1:") and "X-Amz-Signature=" in url
    assert requests.get(url, timeout=30).content == audio["note.m4a"].data
    assert '"status": "ready"' in result.output


def test_client_command_reports_api_errors(live_server, audio):
    result = CliRunner().invoke(
        cli_main, ["upload", str(audio["note.ogg"].path), "--api", live_server.url, "--token", "bad", "--quiet"]
    )
    assert result.exit_code == 1 and "401 unauthorized" in result.output


def test_client_command_refuses_a_file_that_is_not_audio(live_server, make_token, audio):
    result = CliRunner().invoke(
        cli_main,
        [
            "upload",
            str(audio["not-audio.html"].path),
            "--api",
            live_server.url,
            "--token",
            make_token("cli-user"),
            "--quiet",
        ],
    )
    assert result.exit_code == 1 and "not audio" in result.output


def test_play_and_note_audio_commands(live_server, make_token, audio):
    token = make_token("cli-user")
    upload = CliRunner().invoke(
        cli_main,
        [
            "upload",
            str(audio["note.flac"].path),
            "--note-id",
            "cli-play",
            "--quiet",
            "--api",
            live_server.url,
            "--token",
            token,
        ],
    )
    clip_id = json.loads(upload.output[: upload.output.index("\n}") + 2])["id"]
    for args in (["play", clip_id], ["note-audio", "cli-play"]):
        result = CliRunner().invoke(cli_main, [*args, "--api", live_server.url, "--token", token])
        assert result.exit_code == 0, result.output
        url = result.output.strip().splitlines()[-1]
        assert requests.get(url, timeout=30).content == audio["note.flac"].data
    missing = CliRunner().invoke(cli_main, ["play", str(uuid.uuid4()), "--api", live_server.url, "--token", token])
    assert missing.exit_code == 1 and "404 not_found" in missing.output

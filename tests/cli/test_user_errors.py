"""User mistakes get one message that names the real cause.

The command-line cases run the real commands as subprocesses and read what they print.
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pytest

from testkit.paths import REPO
from tests.helpers import CLI, env_with, run_command

BIN = Path(sys.executable).parent
BAD_PRODUCTION = {"APP_ENV": "production"}  # no bucket, no token secret: two problems


# --- one message, exit 2, no traceback ----------------------------------------


@pytest.mark.parametrize(
    "command",
    [[CLI, "token"], [str(BIN / "flask"), "--app", str(REPO / "wsgi.py"), "token"]],
    ids=["advanced-notes", "flask"],
)
def test_a_configuration_error_is_its_message_and_exit_2(tmp_path, command):
    result = run_command(command, tmp_path, env_with(**BAD_PRODUCTION))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("Error: Invalid configuration (2 problem(s)):\n")
    assert "  - S3_BUCKET: is required outside dev" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 3


def test_gunicorn_shows_the_configuration_message_plainly(tmp_path):
    env = env_with(**BAD_PRODUCTION, GUNICORN_BIND="127.0.0.1:0", GUNICORN_WORKERS="1")
    result = run_command(
        [str(BIN / "gunicorn"), "-c", str(REPO / "gunicorn.conf.py"), "wsgi:app"], REPO, env, timeout=60
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and "Worker failed to boot" not in result.stderr
    assert "advanced-notes: Invalid configuration (2 problem(s)):" in result.stderr
    assert "  - AUTH_JWT_SECRET: is required (at least 32 random bytes)" in result.stderr


def test_the_client_on_a_refused_connection_prints_one_line(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    result = run_command(
        [CLI, "note-audio", "n1", "--api", f"http://127.0.0.1:{port}", "--token", "t"], tmp_path, env_with()
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"Error: cannot connect to http://127.0.0.1:{port}/api/notes/n1/audio: is the server running? "
        "(start `advanced-notes dev`, or pass --api)"
    ]


# --- errors that name the real cause ------------------------------------------


def test_a_json_body_without_its_content_type_is_a_415_that_says_so(client, auth, audio):
    f = audio["note.m4a"]
    body = json.dumps({"mime_type": f.mime_type, "bytes": f.size})
    response = client.post(
        "/api/audio-clips", data=body, headers=auth, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 415
    error = response.get_json()["error"]
    assert error["code"] == "unsupported_media_type"
    assert "Content-Type: application/json" in error["message"]
    # without any Content-Type at all, too
    response = client.post("/api/audio-clips", data=body.encode(), headers=auth)
    assert response.status_code == 415
    # and the same body with the header is created
    assert client.post("/api/audio-clips", json=json.loads(body), headers=auth).status_code == 201


@pytest.mark.parametrize("note_id", [" ", "   ", "\t\n"])
def test_a_whitespace_only_note_id_is_refused(client, auth, audio, note_id):
    f = audio["note.m4a"]
    response = client.post(
        "/api/audio-clips", json={"mime_type": f.mime_type, "bytes": f.size, "note_id": note_id}, headers=auth
    )
    assert response.status_code == 422
    assert response.get_json()["error"]["details"] == {"note_id": ["Must not be blank."]}


def test_an_id_that_is_not_a_uuid_is_no_such_clip(client, auth):
    for path in ("/api/audio-clips/nonexistent", "/api/audio-clips/nonexistent/playback"):
        response = client.get(path, headers=auth)
        assert response.status_code == 404
        assert response.get_json()["error"] == {"code": "not_found", "message": "No such audio clip."}


@pytest.mark.e2e
def test_cli_prints_the_field_messages_and_no_such_clip(live_server, make_token, audio, tmp_path):
    common = ["--api", live_server.url, "--token", make_token("cli-user")]
    upload = run_command(
        [CLI, "upload", str(audio["note.ogg"].path), "--note-id", "", "--quiet", *common], tmp_path, env_with()
    )
    assert upload.returncode == 1
    assert upload.stderr.strip().splitlines() == [
        "Error: 422 validation_error: The request failed validation. (note_id: Length must be between 1 and 255.)"
    ]
    play = run_command([CLI, "play", "nonexistent", *common], tmp_path, env_with())
    assert play.returncode == 1
    assert play.stderr.strip().splitlines() == ["Error: 404 not_found: No such audio clip."]

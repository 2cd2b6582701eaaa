"""The ``advanced-notes`` command: its own options, help anywhere, each command with only the
settings it uses, one line when the dev stack it needs is not there, and the upload's
messages (no bar before the API answers, a closed port within 2 s, Ctrl-C during complete).

Most cases run the real command as a subprocess in an empty folder with no settings (a
fresh shell); the in-process ones use click's CliRunner against the live server.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest
from click.testing import CliRunner

from advanced_notes import __version__
from advanced_notes.api.context import services_of
from advanced_notes.client import AudioClipsClient
from advanced_notes.tools.cli import main
from advanced_notes.tools.context import command_app
from advanced_notes.tools.discovery import NO_DEV_SERVER, DevStack, StackLock, write_stack
from tests.helpers import JWT_SECRET, is_app_setting

BIN = Path(sys.executable).parent
CLI = str(BIN / "advanced-notes")


def fresh_env(**extra: str) -> dict[str, str]:
    """A fresh shell's environment: no app settings, no client URL or token; plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not is_app_setting(k) and not k.startswith("ADVANCED_NOTES_")}
    return env | extra


def run_clean(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], cwd=cwd, env=env or fresh_env(), capture_output=True, text=True, timeout=120)


def without_token_keys(config: dict) -> dict[str, str]:
    """``config`` as a deployment's environment that has no token key (AUTH_*) at all."""
    return {k: str(v) for k, v in config.items() if not k.startswith("AUTH_")}


# --- the project's own options, help with no settings -----------------------------------


def test_help_lists_only_the_projects_options_and_version_is_the_projects(tmp_path):
    result = run_clean(["--help"], tmp_path)
    assert result.returncode == 0 and result.stderr == ""
    options = result.stdout.split("Options:")[1].split("Commands:")[0]
    assert "--app" not in options and "-e," not in options and "--debug" not in options
    assert "--version" in options
    assert {"upload", "storage", "sweep", "token", "webhooks", "dev"} <= set(result.stdout.split())

    version = run_clean(["--version"], tmp_path)
    assert version.returncode == 0 and version.stdout.strip() == f"advanced-notes {__version__}"


@pytest.mark.parametrize(
    "args", [["storage", "check", "--help"], ["sweep", "--help"], ["token", "--help"], ["upload", "--help"]]
)
def test_help_works_anywhere_with_no_settings_and_logs_nothing(tmp_path, args):
    result = run_clean(args, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Usage: advanced-notes {' '.join(args[:-1])} [OPTIONS]")
    assert result.stderr == ""  # no "app created" line, no configuration error


# --- a command that needs the dev stack, and none runs ---------------------------------


@pytest.mark.parametrize(
    "args", [["storage", "check"], ["sweep"], ["db", "current"], ["webhooks", "deliver"], ["token"]]
)
def test_without_a_dev_server_the_command_says_to_start_one(tmp_path, args):
    result = run_clean(args, tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"Error: {NO_DEV_SERVER}"), line
    assert "AUTH_JWT_SECRET" not in line
    assert not (tmp_path / "instance").exists()  # no SQLite file made for nothing


def test_the_client_without_a_dev_server_or_token_says_to_start_one(tmp_path, audio):
    result = run_clean(["upload", str(audio["note.ogg"].path)], tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == f"Error: {NO_DEV_SERVER} (or pass --api and --token, or set ADVANCED_NOTES_TOKEN)"


# --- each command builds only the settings it uses --------------------------------------


def test_storage_check_and_sweep_need_no_token_key(tmp_path, base_config, app):
    env = fresh_env(**without_token_keys(base_config))
    check = run_clean(["storage", "check"], tmp_path, env)
    assert check.returncode in (0, 1), check.stderr  # 1: a finding (moto is not every provider)
    assert f"endpoint {base_config['S3_ENDPOINT_URL']}" in check.stdout
    sweep = run_clean(["sweep"], tmp_path, env)
    assert sweep.returncode == 0, sweep.stderr
    for result in (check, sweep):
        assert "AUTH_JWT_SECRET" not in result.stdout + result.stderr
        assert "app created" not in result.stderr  # servers say it; commands do not

    token = run_clean(["token"], tmp_path, env)  # the one command that uses a token key still asks for it
    assert token.returncode == 2 and "AUTH_JWT_SECRET: is required" in token.stderr


def test_a_bad_setting_a_command_uses_is_still_reported(tmp_path, base_config):
    env = fresh_env(**(without_token_keys(base_config) | {"S3_ADDRESSING_STYLE": "sideways"}))
    result = run_clean(["storage", "check"], tmp_path, env)
    assert result.returncode == 2 and "S3_ADDRESSING_STYLE: must be one of" in result.stderr


def test_commands_pick_up_every_setting_the_dev_server_runs_with(tmp_path, monkeypatch, base_config):
    """The discovery file carries the server's WEBHOOK_URLS and WEBHOOK_SECRET: `webhooks
    deliver` in another shell signs and sends as the server does (a real lock, a real file)."""
    instance = tmp_path / "instance"
    lock = StackLock(instance)
    lock.acquire()
    try:
        server_env = {"WEBHOOK_URLS": "http://127.0.0.1:9/hook", "WEBHOOK_SECRET": "whsec_" + "A" * 32, "PATH": "/bin"}
        stack = {k: str(v) for k, v in base_config.items()}
        write_stack(
            instance, DevStack(api="http://127.0.0.1:1", token="t", pid=os.getpid(), settings=stack), server_env
        )
        published = json.loads((instance / "embedded-client.json").read_text())["settings"]
        assert "PATH" not in published  # app settings only
        monkeypatch.chdir(tmp_path)
        app = command_app(tokens=False, environ={})
    finally:
        lock.release()
    settings = services_of(app).settings
    assert settings.webhook_urls == ("http://127.0.0.1:9/hook",)
    assert settings.webhook_secret == "whsec_" + "A" * 32
    assert settings.database_url == base_config["DATABASE_URL"]


# --- token ------------------------------------------------------------------------------


def test_token_refuses_a_lifetime_the_api_would_refuse(tmp_path):
    env = fresh_env(AUTH_JWT_SECRET=JWT_SECRET)
    refused = run_clean(["token", "--expires-in", "604800"], tmp_path, env)
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.strip() == (
        "Error: --expires-in 604800 is longer than the API accepts: at most 86400 s "
        "(AUTH_MAX_TOKEN_LIFETIME_SECONDS); mint a new token when this one expires"
    )
    longest = run_clean(["token", "--expires-in", "86400"], tmp_path, env)
    assert longest.returncode == 0, longest.stderr
    claims = jwt.decode(longest.stdout.strip(), JWT_SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 86400


# --- the upload's messages --------------------------------------------------------------


def test_upload_to_a_closed_port_fails_within_2_s_without_a_bar(audio):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    started = time.monotonic()
    result = CliRunner().invoke(
        main, ["upload", str(audio["note.ogg"].path), "--api", f"http://127.0.0.1:{port}", "--token", "t"]
    )
    elapsed = time.monotonic() - started
    assert result.exit_code == 2, result.output
    assert elapsed < 2.0, elapsed  # retries and backoff made it 16.8 s
    assert result.stderr.strip() == (
        f"Error: cannot connect to http://127.0.0.1:{port}/api/audio-clips: is the server running? "
        "(start `advanced-notes dev`, or pass --api)"
    )
    assert "PUT" not in result.stderr and "%" not in result.stderr  # no progress bar before an answer


def test_ctrl_c_during_complete_prints_the_outcome(live_server, make_token, audio, monkeypatch):
    """Ctrl-C landing as complete's answer arrives: the server made the clip ready, and the
    command says so instead of a bare "Aborted!". Simulated in process (the real complete
    runs, then KeyboardInterrupt): a real SIGINT cannot be timed into that instant."""
    real_complete = AudioClipsClient.complete

    def complete_then_interrupt(self, clip_id):
        real_complete(self, clip_id)
        raise KeyboardInterrupt

    monkeypatch.setattr(AudioClipsClient, "complete", complete_then_interrupt)
    token = make_token("cli-interrupted")
    result = CliRunner().invoke(
        main, ["upload", str(audio["note.ogg"].path), "--api", live_server.url, "--token", token, "--quiet"]
    )
    assert result.exit_code == 0, result.output
    assert "Aborted!" not in result.output
    clip = json.loads(result.stdout.split("\nplayback URL")[0])
    assert clip["status"] == "ready"
    assert f"interrupted during complete: clip {clip['id']} is ready" in result.stderr


def test_resume_finishes_a_one_put_clip_the_store_lacks(live_server, make_token, audio):
    """`--resume` of a clip uploaded in one PUT (what Ctrl-C during the PUT prints): the file
    goes up with a fresh URL, then complete."""
    f = audio["note.ogg"]
    token = make_token("cli-resume-single")
    created = AudioClipsClient(live_server.url, token).create(mime_type=f.mime_type, bytes=f.size)
    clip_id = created["clip"]["id"]
    result = CliRunner().invoke(
        main, ["upload", str(f.path), "--resume", clip_id, "--api", live_server.url, "--token", token, "--quiet"]
    )
    assert result.exit_code == 0, result.output
    clip = json.loads(result.stdout.split("\nplayback URL")[0])
    assert clip["id"] == clip_id and clip["status"] == "ready" and clip["stored_bytes"] == f.size

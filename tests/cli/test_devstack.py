"""`advanced-notes dev` as a newcomer runs it: a real process, real commands beside it.

The dev server runs as a subprocess in a temporary folder on free loopback ports; the
other commands run as subprocesses in the same folder with no settings at all, and the
tests read what they print and what the server logged.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests

from testkit.paths import REPO
from tests.helpers import DevServer, clean_env, run_clean, start_dev_server

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
CLI = str(BIN / "advanced-notes")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    server = start_dev_server(tmp_path_factory.mktemp("devstack"))
    yield server
    server.stop()


def create_clip(dev: DevServer, size: int, mime: str = "audio/mp4") -> dict:
    response = requests.post(
        dev.api + "/api/audio-clips",
        json={"mime_type": mime, "bytes": size},
        headers={"Authorization": f"Bearer {dev.token()}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return response.json()


# --- a PUT without a Content-Type -------------------------------------------


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_curl_put_without_content_type_is_answered_and_complete_rejects_the_type(dev, audio):
    """`curl -X PUT "$URL" --data-binary @note.m4a` (curl then sends
    application/x-www-form-urlencoded) used to hang moto's server until curl gave up."""
    f = audio["note.m4a"]
    created = create_clip(dev, f.size)
    put = run_clean(
        [
            "curl",
            "-s",
            "-m",
            "1",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "PUT",
            created["upload"]["url"],
            "--data-binary",
            f"@{f.path}",
        ],
        cwd=dev.folder,
    )
    # -m 1: curl gives up (exit 28) unless the answer comes within a second.
    assert put.returncode == 0, f"curl exit {put.returncode}: no answer within 1 s"
    assert put.stdout == "200"
    done = requests.post(
        f"{dev.api}/api/audio-clips/{created['clip']['id']}/complete",
        headers={"Authorization": f"Bearer {dev.token()}"},
        timeout=10,
    )
    assert done.status_code == 422, done.text
    assert done.json()["error"]["details"]["reason"] == "type_mismatch"
    assert done.json()["error"]["details"]["stored_type"] == "application/x-www-form-urlencoded"
    # and the store still answers afterwards
    assert requests.get(f"http://127.0.0.1:{dev.s3_port}/advanced-notes-dev", timeout=2).status_code == 200


# --- every command finds the running dev stack ---------------------------------


def test_storage_check_uses_the_running_dev_stack(dev):
    result = run_clean([CLI, "storage", "check"], cwd=dev.folder)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"endpoint http://127.0.0.1:{dev.s3_port}" in result.stdout
    assert "NoCredentialsError" not in result.stdout + result.stderr


def test_db_sweep_and_token_use_the_running_dev_stack(dev):
    current = run_clean([CLI, "db", "current"], cwd=dev.folder)
    assert current.returncode == 0, current.stderr
    assert str(dev.folder / "instance" / "embedded.sqlite") in current.stdout
    assert not (dev.folder / "instance" / "advanced_notes.sqlite").exists()

    sweep = run_clean([str(BIN / "flask"), "--app", str(REPO / "wsgi.py"), "sweep"], cwd=dev.folder)
    assert sweep.returncode == 0, sweep.stdout + sweep.stderr

    token = run_clean([CLI, "token", "--sub", "newcomer"], cwd=dev.folder)
    assert token.returncode == 0, token.stderr
    listed = requests.get(
        dev.api + "/api/audio-clips", headers={"Authorization": f"Bearer {token.stdout.strip()}"}, timeout=10
    )
    assert listed.status_code == 200, listed.text


def test_settings_in_the_environment_win_over_the_dev_stack(dev, tmp_path):
    env = clean_env() | {"DATABASE_URL": f"sqlite:///{tmp_path / 'mine.sqlite'}", "AUTH_JWT_SECRET": "x" * 40}
    result = subprocess.run([CLI, "db", "current"], cwd=dev.folder, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "mine.sqlite" in result.stdout


# --- two dev servers, taken ports, the discovery file ---------------------------


def test_a_second_dev_server_in_the_same_folder_refuses_and_touches_nothing(dev):
    before = (dev.discovery.read_text(), (dev.folder / "instance" / "embedded.sqlite").stat().st_ino)
    result = run_clean([CLI, "dev", "--port", str(free_port()), "--s3-port", str(free_port())], cwd=dev.folder)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"Error: another `advanced-notes dev` is running from this folder (pid {dev.process.pid}, API {dev.api}): "
        "stop it first, or start this one from another folder"
    ]
    assert (dev.discovery.read_text(), (dev.folder / "instance" / "embedded.sqlite").stat().st_ino) == before


@pytest.mark.parametrize("which", ["api", "s3"])
def test_a_taken_port_exits_at_once_with_one_line(dev, tmp_path, which):
    ports = ["--port", str(dev.port), "--s3-port", str(free_port())]
    if which == "s3":
        ports = ["--port", str(free_port()), "--s3-port", str(dev.s3_port)]
    result = run_clean([CLI, "dev", *ports], cwd=tmp_path, timeout=60)  # used to hang for ever
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "Address already in use" in line and ("--s3-port" if which == "s3" else "--port") in line
    assert not (tmp_path / "instance" / "embedded-client.json").exists()


def test_the_discovery_file_goes_with_the_server_and_a_stale_one_is_named(tmp_path, audio):
    server = start_dev_server(tmp_path / "once")
    saved = server.discovery.read_text()
    server.stop()
    assert server.process.returncode == 0
    assert not server.discovery.exists()

    # A server killed with SIGKILL leaves its file behind: the client says so in one line.
    server.discovery.write_text(saved)
    result = run_clean([CLI, "upload", str(audio["note.ogg"].path), "--quiet"], cwd=server.folder)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: stale ") and "is not running" in line


# --- quiet, safe logs ---------------------------------------------------------


def test_a_dev_session_logs_no_signature_no_colour_and_each_request_once(tmp_path, audio):
    server = start_dev_server(tmp_path / "logs")
    try:
        uploaded = run_clean(
            [CLI, "upload", str(audio["note.ogg"].path), "--note-id", "n1", "--quiet"], cwd=server.folder
        )
        assert uploaded.returncode == 0, uploaded.stderr
        assert "X-Amz-Signature=" in uploaded.stdout  # the playback URL is printed for the user...
        clip_id = json.loads(uploaded.stdout.split("\n\n")[0])["id"]
        playback = run_clean([CLI, "play", clip_id], cwd=server.folder)
        url = playback.stdout.strip().splitlines()[-1]
        assert requests.get(url, headers={"Range": "bytes=0-9"}, timeout=10).status_code == 206
        check = run_clean([CLI, "storage", "check"], cwd=server.folder)
        for out in (uploaded, playback, check):
            assert "alembic.runtime.plugins" not in out.stdout + out.stderr
    finally:
        log = server.stop()
    # ...but never logged, by any logger of the process (API, emulator, werkzeug).
    assert "X-Amz-Signature" not in log and "X-Amz-Credential" not in log
    assert "\x1b[" not in log
    assert "alembic.runtime.plugins" not in log
    completes = [line for line in log.splitlines() if f"/api/audio-clips/{clip_id}/complete" in line]
    assert len(completes) == 1, completes
    # One readable line per request in the dev terminal: time, method, path, status, ms.
    assert re.fullmatch(rf"\d\d:\d\d:\d\d POST /api/audio-clips/{clip_id}/complete 200 \d+ ms", completes[0])
    # No line per S3 call (the emulator's own lines show at LOG_LEVEL=DEBUG only), no JSON.
    assert "/advanced-notes-dev/" not in log
    assert not [line for line in log.splitlines() if line.startswith("{")]


# --- a PUT whose client never calls complete ------------------------------------------


def put_and_wait(dev: DevServer, f, data: bytes | None = None, seconds: float = 10) -> tuple[dict, float]:
    """Create a clip for ``f``, PUT ``data`` (default: the file) and never call complete;
    return the clip once it is not pending (or after ``seconds``) and the seconds it took."""
    created = create_clip(dev, f.size, f.mime_type)
    upload = created["upload"]
    put = requests.put(upload["url"], data=f.data if data is None else data, headers=upload["headers"], timeout=10)
    assert put.status_code == 200, put.text
    put_done = time.monotonic()
    headers = {"Authorization": f"Bearer {dev.token()}"}
    clip = created["clip"]
    while clip["status"] == "pending" and time.monotonic() - put_done < seconds:
        time.sleep(0.1)
        clip = requests.get(f"{dev.api}/api/audio-clips/{clip['id']}", headers=headers, timeout=10).json()["clip"]
    return clip, time.monotonic() - put_done


def test_a_put_without_complete_becomes_ready_by_itself(dev, audio):
    """The emulator bucket's ObjectCreated event reaches the dev server, which finishes the
    upload with the checks of complete: no sweeper, no restart, no client call."""
    f = audio["note.m4a"]
    clip, took = put_and_wait(dev, f)
    assert clip["status"] == "ready", clip
    assert took < 5, f"ready {took:.1f} s after the PUT"
    assert abs(clip["measured_duration_ms"] - f.duration_ms) <= 50  # measured, as complete does
    # An object that is not what the clip promised is judged as complete would: rejected.
    clip, _ = put_and_wait(dev, f, b"\0" * f.size)
    assert clip["status"] == "rejected", clip


def test_bucket_events_reach_a_restarted_dev_server(tmp_path, audio):
    """Each start wires the emulator's events again: nothing to enable, nothing to reset."""
    folder = tmp_path / "restarted"
    start_dev_server(folder).stop()
    server = start_dev_server(folder)
    try:
        assert "Events    the bucket's ObjectCreated events" in server.log_path.read_text()
        clip, took = put_and_wait(server, audio["note.ogg"])
        assert clip["status"] == "ready" and took < 5, (clip, took)
    finally:
        server.stop()


# --- the README's curl section, copied and pasted ------------------------------


def readme_block(heading: str) -> str:
    """The first ```sh block after ``heading`` in README.md."""
    text = (REPO / "README.md").read_text()
    after = text[text.index(heading) :]
    start = after.index("```sh\n") + len("```sh\n")
    return after[start : after.index("```", start)]


def test_the_readme_curl_steps_work_and_leave_no_file_behind(dev, audio, tmp_path):
    script = readme_block("## The three steps (curl)")
    assert "API=http://127.0.0.1:8000" in script and "FILE=../shared/fixtures/audio/note.m4a" in script
    script = script.replace("API=http://127.0.0.1:8000", f"API={dev.api}")
    script = script.replace("FILE=../shared/fixtures/audio/note.m4a", f"FILE={audio['note.m4a'].path}")
    folder = tmp_path / "pasted"
    folder.mkdir()
    env = clean_env() | {"ADVANCED_NOTES_TOKEN": dev.token()}
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=folder, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert '"status":"ready"' in result.stdout.replace(" ", "")
    assert list(folder.iterdir()) == []  # no created.json or any other file left behind


def test_the_documented_storage_check_is_what_the_dev_stack_prints(dev):
    """docs/providers.md shows `storage check` against `make dev` (ports 8000/9000): copy-paste gives that."""
    text = (REPO / "docs" / "providers.md").read_text()
    after = text[text.index(".venv/bin/advanced-notes storage check\n```\n\n```text\n") :]
    start = after.index("```text\n") + len("```text\n")
    documented = after[start : after.index("```", start)].replace("127.0.0.1:9000", f"127.0.0.1:{dev.s3_port}")
    result = run_clean([CLI, "storage", "check"], cwd=dev.folder)
    assert result.returncode == 0, result.stderr
    assert result.stdout == documented


# --- the processing worker beside the API ------------------------------------------------


def worker_processes(folder: Path) -> list[psutil.Process]:
    """Live processes (not zombies) of a worker started for the dev stack in ``folder``."""
    instance = str((folder / "instance").resolve())
    found = []
    for process in psutil.process_iter(["cmdline", "cwd", "status"]):
        cmdline = process.info["cmdline"] or []
        if "advanced_notes.worker.celery_app" not in cmdline or process.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if process.info["cwd"] == instance or any(instance in arg for arg in cmdline):
            found.append(process)
    return found


def test_the_dev_worker_processes_an_upload_and_leaves_no_process_behind(tmp_path, audio):
    """`advanced-notes dev` runs a Celery worker (SQLite broker) that processes what the CLI uploads."""
    server = start_dev_server(tmp_path / "worker")
    try:
        assert "Worker    Celery, 1 process + the relay" in server.log_path.read_text()
        assert worker_processes(server.folder)  # the worker's main process, from the start
        uploaded = run_clean([CLI, "upload", str(audio["note.ogg"].path), "--quiet"], cwd=server.folder)
        assert uploaded.returncode == 0, uploaded.stderr
        clip_id = json.loads(uploaded.stdout.split("\n\n")[0])["id"]
        headers = {"Authorization": f"Bearer {server.token()}"}
        deadline = time.monotonic() + 60  # a loaded machine: the worker boots, then transcodes
        processing = None
        while time.monotonic() < deadline:
            clip = requests.get(f"{server.api}/api/audio-clips/{clip_id}", headers=headers, timeout=10).json()["clip"]
            processing = clip["processing"]
            if processing["status"] in ("done", "failed"):
                break
            time.sleep(0.5)
        assert processing is not None and processing["status"] == "done", processing
        assert abs(processing["duration_ms"] - audio["note.ogg"].duration_ms) <= 50
        assert "universal" in processing["renditions"]
        assert (server.folder / "instance" / "broker.sqlite").exists()
        assert len(worker_processes(server.folder)) >= 2  # the main process, its pool child (and beat)
        # The SQLite broker cannot carry a ping: the check reads the jobs instead.
        check = run_clean([CLI, "worker", "check"], cwd=server.folder)
        assert check.returncode == 0 and "OK    jobs: none due" in check.stdout, check.stdout + check.stderr
    finally:
        log = server.stop()
    assert server.process.returncode == 0, log
    assert worker_processes(server.folder) == []

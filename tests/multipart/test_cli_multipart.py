"""The CLI's multipart upload: killed mid-way (SIGKILL, or Ctrl-C), resumed, played back byte-equal.

The client reaches the store through a fault proxy (testkit/faultproxy.py) in front of
moto's server, signed in as S3_PUBLIC_ENDPOINT_URL: the proxy can hang or reset the
part PUTs at a chosen moment, which moto cannot do by itself.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from advanced_notes.api.context import services_of
from advanced_notes.app import create_app
from advanced_notes.client import AudioClipsClient
from testkit.faultproxy import FaultProxy
from testkit.longaudio import build_long_wav
from testkit.paths import FIXTURES, REPO
from testkit.servers import LiveServer

pytestmark = pytest.mark.e2e
PART = 5 * 1024 * 1024


@pytest.fixture(scope="module")
def proxied(app, base_config, s3_endpoint):
    """(api url, app, proxy): the app signs part URLs for the proxy in front of moto."""
    target = urlsplit(s3_endpoint)
    proxy = FaultProxy(target.hostname, target.port)
    proxied_app = create_app(
        {**base_config, "S3_PUBLIC_ENDPOINT_URL": proxy.url, "MULTIPART_PART_SIZE_BYTES": str(PART)}
    )
    server = LiveServer(proxied_app)
    yield server.url, proxied_app, proxy
    server.stop()
    proxy.close()


@pytest.fixture(scope="module")
def long_file(tmp_path_factory):
    """About 23 MB of real speech: five parts of 5 MiB."""
    path = tmp_path_factory.mktemp("audio") / "lecture.wav"
    path.write_bytes(build_long_wav(FIXTURES / "note.wav", 4 * PART + 2 * 1024 * 1024))
    return path


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "advanced_notes.tools.cli", *args]


def test_kill_the_upload_after_some_parts_then_resume(proxied, long_file, make_token):
    url, app, proxy = proxied
    token = make_token("cli-mp")
    storage = services_of(app).storage
    common = ["--api", url, "--token", token, "--parallel", "1", "--multipart-threshold", str(PART)]
    proc = subprocess.Popen(
        cli("upload", str(long_file), *common, "--quiet"), cwd=REPO, stderr=subprocess.PIPE, text=True
    )
    try:
        line = ""
        while "resume with: --resume" not in line:  # the first lines are the app's logs
            line = proc.stderr.readline()
            assert line, "the CLI ended before announcing its clip"
        clip_id = line.split("--resume ")[1].strip()
        client = AudioClipsClient(url, token)
        session = client.get(clip_id)["clip"]
        key = session["storage_key"]
        upload_id = client.list_parts(clip_id)["multipart"]["upload_id"]
        deadline = time.monotonic() + 60
        while not storage.list_parts(key, upload_id) and time.monotonic() < deadline:
            time.sleep(0.01)
        proxy.set_mode("hang")  # the part in flight never finishes
        proc.kill()
        proc.wait(10)
    finally:
        proxy.set_mode("pass")
        if proc.poll() is None:
            proc.kill()
    stored = storage.list_parts(key, upload_id) or []
    assert 1 <= len(stored) < 5, stored
    assert client.get(clip_id)["clip"]["status"] == "pending"

    resumed = subprocess.run(
        cli("upload", str(long_file), *common, "--resume", clip_id),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    # A part whose bytes had all reached the store before the kill may be recorded a moment
    # after the listing above, so the resume may find one more than we listed; never fewer.
    found = re.search(r"resuming: (\d) of 5 parts already stored", resumed.stderr)
    assert found and len(stored) <= int(found.group(1)) < 5, resumed.stderr
    clip = json.loads(resumed.stdout.split("\nplayback URL")[0])
    assert clip["status"] == "ready" and clip["stored_bytes"] == long_file.stat().st_size
    playback = client.playback(clip_id)["url"]
    assert requests.get(playback, timeout=60).content == long_file.read_bytes()


def test_a_failed_part_is_retried(proxied, long_file, make_token):
    url, _, proxy = proxied
    client = AudioClipsClient(url, make_token("cli-mp-retry"), backoff_seconds=0.2)
    proxy.set_mode("reset")  # every part PUT fails until the store comes back
    restore = threading.Timer(0.5, proxy.set_mode, ("pass",))
    restore.start()
    sent: list[int] = []
    try:
        result = client.upload_file(str(long_file), multipart_threshold=PART, parallel=4, on_progress=sent.append)
    finally:
        restore.join()
        proxy.set_mode("pass")
    assert result["clip"]["status"] == "ready"
    assert sum(sent) == long_file.stat().st_size  # one bar: each part counted once
    assert requests.get(result["playback"]["url"], timeout=60).content == long_file.read_bytes()


def test_ctrl_c_stops_at_once_and_prints_the_resume_command(proxied, long_file, make_token):
    """SIGINT while parts hang in flight: the command exits within seconds (not after the
    parts' 300 s timeout), prints the command that resumes, and that command finishes."""
    url, app, proxy = proxied
    token = make_token("cli-mp-sigint")
    storage = services_of(app).storage
    common = ["--api", url, "--token", token, "--parallel", "2", "--multipart-threshold", str(PART)]
    console = str(Path(sys.executable).with_name("advanced-notes"))
    proc = subprocess.Popen(
        [console, "upload", str(long_file), *common, "--quiet"], cwd=REPO, stderr=subprocess.PIPE, text=True
    )
    try:
        line = ""
        while "resume with: --resume" not in line:
            line = proc.stderr.readline()
            assert line, "the CLI ended before announcing its clip"
        clip_id = line.split("--resume ")[1].strip()
        client = AudioClipsClient(url, token)
        key = client.get(clip_id)["clip"]["storage_key"]
        upload_id = client.list_parts(clip_id)["multipart"]["upload_id"]
        deadline = time.monotonic() + 60
        while not storage.list_parts(key, upload_id) and time.monotonic() < deadline:
            time.sleep(0.01)
        proxy.set_mode("hang")  # the parts in flight (and their retries) never finish
        time.sleep(0.5)
        interrupted = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, rest = proc.communicate(timeout=30)
        stopped_in = time.monotonic() - interrupted
    finally:
        proxy.set_mode("pass")
        if proc.poll() is None:
            proc.kill()
    assert stopped_in < 5, stopped_in
    assert proc.returncode == 130, rest
    assert "Aborted!" not in rest and "Traceback" not in rest
    command = rest.split("send the others with:\n", 1)[1].splitlines()[0].split()
    assert command == ["advanced-notes", "upload", str(long_file), "--resume", clip_id], rest
    assert client.get(clip_id)["clip"]["status"] == "pending"

    resumed = subprocess.run([console, *command[1:], *common], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    clip = json.loads(resumed.stdout.split("\nplayback URL")[0])
    assert clip["status"] == "ready" and clip["stored_bytes"] == long_file.stat().st_size
    assert requests.get(client.playback(clip_id)["url"], timeout=60).content == long_file.read_bytes()

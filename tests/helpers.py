"""What the tests share that the benchmarks do not (those are in ``testkit``): the test
settings' constants, API calls through the Flask test client, the error shape, the CLI."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from advanced_notes.adapters.models import AudioClip, PendingDeletion
from advanced_notes.api.context import services_of
from advanced_notes.app import create_app
from advanced_notes.domain import webm
from advanced_notes.settings import Settings
from testkit.live import Api, put_upload
from testkit.paths import FIXTURES, REPO
from testkit.servers import LiveServer, free_port

#: The smallest real audio fixture: what a clip that must become ready uploads by default.
REAL_AUDIO = (FIXTURES / "note.ogg").read_bytes()


def create(client: Any, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    """POST /api/audio-clips and return the JSON (asserting 201)."""
    body.setdefault("mime_type", "audio/mp4")
    body.setdefault("bytes", 10)
    response = client.post("/api/audio-clips", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def upload_ready(
    client: Any, headers: dict[str, str], data: bytes = REAL_AUDIO, mime_type: str = "audio/ogg", **body: Any
) -> dict[str, Any]:
    """Create, PUT ``data`` (real audio) over HTTP with the signed headers, complete; return the ready clip."""
    created = create(client, headers, mime_type=mime_type, bytes=len(data), **body)
    assert put_upload(created["upload"], data).status_code == 200
    response = client.post(f"/api/audio-clips/{created['clip']['id']}/complete", headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["clip"]


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """Assert the DESIGN §4 error shape, status and code; return the error object."""
    assert response.status_code == status, (response.status_code, response.data[:300])
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}
    error = body["error"]
    assert error["code"] == code and isinstance(error["message"], str) and error["message"]
    assert set(error) <= {"code", "message", "details"}
    return error


def pending_deletions(app: Any, clip_id: str | uuid.UUID) -> list[PendingDeletion]:
    """The deletion outbox's records of a clip, read from its table (the service offers no such read)."""
    with services_of(app).db.read() as session:
        query = select(PendingDeletion).where(PendingDeletion.clip_id == uuid.UUID(str(clip_id)))
        return list(session.scalars(query))


JWT_SECRET = "test-secret-" + "x" * 40


BUCKET = "advanced-notes-test"


REGION = "us-east-1"
ACCESS_KEY, SECRET_KEY = "AKIATESTKEY", "test-secret-access-key"


#: Test settings, not the app's: kept when the app's settings are cleared below.
TEST_VARIABLES = ("AUDIO_FIXTURES_DIR", "TEST_DATABASE_URL")


def is_app_setting(name: str) -> bool:
    """Whether ``name`` is a setting of the app (cleared from the environment for the tests)."""
    if name in TEST_VARIABLES:
        return False
    return name.startswith(
        (
            "S3_",
            "AWS_",
            "AUTH_",
            "APP_",
            "MAX_",
            "UPLOAD_",
            "CORS_",
            "RATELIMIT_",
            "LOG_",
            "OWNER_",
            "AUDIO_",
            "SWEEP_",
            "STORAGE_EVENTS_",
            "WEBHOOK_",
            "MULTIPART_",
        )
    ) or name in ("ENV", "FLASK_ENV", "DATABASE_URL", "ALLOWED_MIME_TYPES", "PROMETHEUS_MULTIPROC_DIR")


def run_cli(app, args: list[str]):
    """Invoke a ``flask --app wsgi`` command on ``app`` (commands added as wsgi.py adds them)."""
    from advanced_notes.tools.cli import register_app_commands

    register_app_commands(app)
    return app.test_cli_runner().invoke(args=args)


def clip_of(app, clip_id: str) -> AudioClip:
    with services_of(app).db.read() as session:
        clip = session.get(AudioClip, uuid.UUID(clip_id))
    assert clip is not None
    return clip


def counter(app, name: str, **labels: str) -> float:
    """A sample of the app's /metrics (0 when absent)."""
    text = app.test_client().get("/metrics").get_data(as_text=True)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def assert_ready_and_playable(api: Api, app, clip_id: str, f) -> None:
    clip = clip_of(app, clip_id)
    assert clip.status == "ready", clip.status
    assert abs(clip.measured_duration_ms - f.duration_ms) <= 100
    assert services_of(app).storage.head(clip.storage_key) is not None
    playback = api("GET", f"/api/audio-clips/{clip_id}/playback")
    assert playback.status_code == 200, playback.text
    assert requests.get(playback.json()["url"], timeout=30).content == f.data


WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class Receiver:
    """A webhook receiver on loopback: verifies signatures, fails the first ``fail_first`` requests."""

    def __init__(self, fail_first: int = 0, secret: str = WEBHOOK_SECRET):
        self.verifier = Webhook(secret)
        self.fail_first = fail_first
        self.requests: list[dict[str, Any]] = []
        self.verified: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver.lock:
                    receiver.requests.append({"headers": headers, "body": body})
                    failing = len(receiver.requests) <= receiver.fail_first
                try:
                    payload = receiver.verifier.verify(body, headers)
                except WebhookVerificationError:
                    self.send_response(401)
                    self.end_headers()
                    return
                if failing:
                    self.send_response(503)
                    self.end_headers()
                    return
                with receiver.lock:
                    receiver.verified.append({"id": headers["webhook-id"], "payload": payload})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def make_env(base_config, make_token, urls: list[str], **extra: str):
    app = create_app(
        {
            **base_config,
            "S3_KEY_PREFIX": f"hooks-{uuid.uuid4().hex[:8]}",
            "WEBHOOK_URLS": " ".join(urls),
            "WEBHOOK_SECRET": WEBHOOK_SECRET,
            "WEBHOOK_TIMEOUT_SECONDS": "2",
            "METRICS_CACHE_SECONDS": "0",  # the gauges are read right after each change
            **extra,
        }
    )
    server = LiveServer(app)
    return Api(server.url, make_token("hooks-user")), app, server


STREAMED = Path(__file__).resolve().parent / "fixtures" / "streamed"


def shift_cluster_timecodes(body: bytes, offset_ms: int) -> bytes:
    """``body``'s Clusters with ``offset_ms`` added to each Timecode (re-encoded as 4 bytes)."""
    out = io.BytesIO()
    f = io.BytesIO(body)
    while f.tell() < len(body):
        cluster = webm._element(f)
        assert cluster.id == webm.CLUSTER and cluster.size is None
        out.write(body[cluster.start : cluster.data])
        while f.tell() < len(body):
            el = webm._element(f)
            if el.id == webm.CLUSTER:
                f.seek(el.start)
                break
            if el.id == webm.TIMECODE:
                f.seek(el.data)
                value = webm._uint(f, el) + offset_ms
                out.write(b"\xe7\x84" + value.to_bytes(4, "big"))
            else:
                out.write(body[el.start : el.data + el.size])
            f.seek(el.data + el.size)
    return out.getvalue()


RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


EC_KEY = ec.generate_private_key(ec.SECP256R1())


def token_claims(**overrides):
    """JWT claims of owner ``alice`` valid for 5 minutes, with ``overrides`` (None drops a claim)."""
    now = dt.datetime.now(dt.UTC)
    claims = {"sub": "alice", "iat": now, "exp": now + dt.timedelta(minutes=5)}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


BIN = Path(sys.executable).parent
CLI = str(BIN / "advanced-notes")


def env_with(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not is_app_setting(k) and not k.startswith("ADVANCED_NOTES_")}
    return env | extra


def run_command(
    args: list[str], cwd: Path, env: dict[str, str], timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


PART = 5 * 1024 * 1024


#: A real S3 implementation to run against instead of moto (see the module doc).
STRICT = {
    "S3_ENDPOINT_URL": os.environ.get("STRICT_S3_ENDPOINT_URL"),
    "AWS_ACCESS_KEY_ID": os.environ.get("STRICT_S3_ACCESS_KEY"),
    "AWS_SECRET_ACCESS_KEY": os.environ.get("STRICT_S3_SECRET_KEY"),
    "S3_BUCKET": "advanced-notes-strict",
}


IS_STRICT = bool(STRICT["S3_ENDPOINT_URL"])


def read_elsewhere() -> set[str]:
    """Variables read outside the settings model, straight from the process environment."""
    files = [*sorted((REPO / "advanced_notes").rglob("*.py")), REPO / "wsgi.py", SERVER_CONFIG]
    files.append(REPO / "migrations" / "env.py")
    return set().union(*(environ_reads(path) for path in files))


def settings_variables() -> set[str]:
    return {names[0] for names in Settings.variable_names().values()}


def settings_aliases() -> set[str]:
    return {alias for names in Settings.variable_names().values() for alias in names[1:]}


def clean_env() -> dict[str, str]:
    """The environment of a fresh shell: no app settings, no client token or URL."""
    env = {k: v for k, v in os.environ.items() if not is_app_setting(k) and not k.startswith("ADVANCED_NOTES_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_clean(args: list[str], cwd: Path, timeout: float = 60, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=timeout, **kw)


@dataclass
class DevServer:
    folder: Path
    port: int
    s3_port: int
    process: subprocess.Popen[str]
    log_path: Path

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def discovery(self) -> Path:
        return self.folder / "instance" / "embedded-client.json"

    def token(self) -> str:
        return json.loads(self.discovery.read_text())["token"]

    def stop(self) -> str:
        """SIGTERM, wait, and return everything the process printed."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(30)
        return self.log_path.read_text()


def start_dev_server(folder: Path, *extra: str) -> DevServer:
    folder.mkdir(parents=True, exist_ok=True)
    port, s3_port = free_port(), free_port()
    log_path = folder / "dev.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [CLI, "dev", "--port", str(port), "--s3-port", str(s3_port), *extra],
            cwd=folder,
            env=clean_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    server = DevServer(folder, port, s3_port, process, log_path)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"dev server exited {process.returncode}:\n{log_path.read_text()}")
        if server.discovery.exists():
            try:
                if requests.get(server.api + "/healthz", timeout=2).status_code == 200:
                    return server
            except requests.ConnectionError:
                pass
        time.sleep(0.2)
    server.stop()
    pytest.fail("dev server did not start in 90 s")


SERVER_CONFIG = REPO / "gunicorn.conf.py"


def environ_reads(path: Path) -> set[str]:
    """Names ``path`` reads from ``os.environ`` (or ``getenv``) by literal."""
    text = path.read_text()
    return {name for pattern in _ENVIRON_READS for name in pattern.findall(text)}


_NAME = r"""["']([A-Z][A-Z0-9_]*)["']"""
_ENVIRON_READS = (
    re.compile(rf"os\.environ\.get\(\s*{_NAME}"),
    re.compile(rf"os\.environ\[\s*{_NAME}\s*\]"),
    re.compile(rf"{_NAME}\s+(?:not\s+)?in\s+os\.environ"),
    re.compile(rf"getenv\(\s*{_NAME}"),
)


def build_multipart_app(base_config: dict[str, Any], **settings: str):
    """An app with 5 MiB parts (and ``settings``), on moto or (STRICT_S3_ENDPOINT_URL set) the
    strict store, its bucket made."""
    application = create_app(
        {**base_config, "MULTIPART_PART_SIZE_BYTES": str(PART), **settings, **(STRICT if IS_STRICT else {})}
    )
    services_of(application).storage.ensure_bucket()
    return application

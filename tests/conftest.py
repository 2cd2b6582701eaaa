"""Shared fixtures: real parts wherever a user would have them.

- S3: moto's ThreadedMotoServer on loopback (one per session, one bucket).
- Database: PostgreSQL when TEST_DATABASE_URL is set (a fresh database per session,
  dropped at the end), else a SQLite file; migrated with Alembic, never create_all.
- HTTP: the Flask test client for API tests, and the app served by werkzeug on
  loopback (``live_server``) for end-to-end tests with ``requests``.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt  # noqa: F401 - before any app: the suite builds HS256 and JWKS apps in one process (api/tokenlib.py)
import pytest
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from advanced_notes.adapters import migrate
from advanced_notes.api.auth import mint_token
from advanced_notes.api.context import services_of
from advanced_notes.app import create_app
from advanced_notes.domain.mime import mime_type_for_filename

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(os.environ.get("AUDIO_FIXTURES_DIR", REPO.parent / "shared" / "fixtures" / "audio"))
AUDIO_FILES = ["note.m4a", "note.mp3", "note.wav", "note.ogg", "note.webm", "note.flac"]
JWT_SECRET = "test-secret-" + "x" * 40
BUCKET = "advanced-notes-test"
REGION = "us-east-1"
ACCESS_KEY, SECRET_KEY = "AKIATESTKEY", "test-secret-access-key"


#: Test settings, not the app's: kept when the app's settings are cleared below.
TEST_VARIABLES = ("AUDIO_FIXTURES_DIR", "TEST_DATABASE_URL")


def _is_app_setting(name: str) -> bool:
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


@pytest.fixture(scope="session", autouse=True)
def _isolated_environment() -> Iterator[None]:
    """Settings of the developer's shell or .env must not leak into tests (restored afterwards)."""
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if _is_app_setting(n)]:
            patch.delenv(name)
        # moto's server logs every request at INFO through werkzeug; failures are what matter.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        yield


@dataclass(frozen=True)
class AudioFixture:
    name: str
    path: Path
    size: int
    sha256_base64: str
    duration_ms: int | None

    @property
    def data(self) -> bytes:
        return self.path.read_bytes()

    @property
    def mime_type(self) -> str:
        """The type a client declares for this file's name (the API's table)."""
        mime_type = mime_type_for_filename(self.name)
        assert mime_type is not None, f"no audio type for {self.name}"
        return mime_type


@pytest.fixture(scope="session")
def audio() -> dict[str, AudioFixture]:
    """The real audio fixtures of ../shared/fixtures/audio, from MANIFEST.tsv."""
    manifest = FIXTURES / "MANIFEST.tsv"
    if not manifest.exists():
        pytest.fail(f"audio fixtures not found at {FIXTURES} (set AUDIO_FIXTURES_DIR)")
    with manifest.open() as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return {
        r["file"]: AudioFixture(
            r["file"],
            FIXTURES / r["file"],
            int(r["bytes"]),
            r["sha256_base64"],
            int(r["duration_ms"]) if r["duration_ms"] else None,
        )
        for r in rows
    }


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's threaded S3 server on a free loopback port."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def _fresh_postgres_database(base_url: str) -> tuple[str, Any]:
    url = make_url(base_url)
    name = f"an_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url.set(database=name).render_as_string(hide_password=False), drop


@pytest.fixture(scope="session")
def empty_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A factory of empty databases of the backend under test (PostgreSQL or SQLite)."""
    drops = []
    base = os.environ.get("TEST_DATABASE_URL")

    def make() -> str:
        if base:
            url, drop = _fresh_postgres_database(base)
            drops.append(drop)
            return url
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite'}"

    yield make
    for drop in drops:
        drop()


@pytest.fixture(scope="session")
def database_url(empty_database_url: Any) -> str:
    """The session's database, migrated to head with Alembic."""
    url = empty_database_url()
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="session")
def base_config(database_url: str, s3_endpoint: str) -> dict[str, Any]:
    """Settings of a non-dev deployment ("test") against the session's database and moto."""
    return {
        "APP_ENV": "test",
        "DATABASE_URL": database_url,
        "S3_BUCKET": BUCKET,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "S3_ENDPOINT_URL": s3_endpoint,
        "S3_ADDRESSING_STYLE": "path",
        "AUTH_JWT_SECRET": JWT_SECRET,
        # Limits get their own tests; the rest of the suite must not trip over them.
        "RATELIMIT_DEFAULT": "100000 per minute",
        "RATELIMIT_AUTH_FAILURES": "100000 per minute",  # many tests send bad tokens from 127.0.0.1
        # Tests scrape /metrics right after changing rows: no reuse of earlier counts.
        "METRICS_CACHE_SECONDS": "0",
    }


@pytest.fixture(scope="session")
def app(base_config: dict[str, Any]):
    application = create_app(base_config)
    services_of(application).storage.ensure_bucket()
    return application


@pytest.fixture(autouse=True)
def _clean_tables(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "app" in request.fixturenames:
        db = services_of(request.getfixturevalue("app")).db
        with db.engine.begin() as conn:
            conn.execute(text("DELETE FROM audio_clips"))
            conn.execute(text("DELETE FROM pending_deletions"))
            conn.execute(text("DELETE FROM webhook_deliveries"))


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def make_token(app):
    settings = services_of(app).settings

    def make(sub: str = "alice", expires_in: int = 3600) -> str:
        return mint_token(settings, sub, expires_in)

    return make


@pytest.fixture
def auth(make_token) -> dict[str, str]:
    """Authorization header of owner ``alice``."""
    return {"Authorization": f"Bearer {make_token('alice')}"}


@pytest.fixture
def other_auth(make_token) -> dict[str, str]:
    """Authorization header of owner ``mallory``."""
    return {"Authorization": f"Bearer {make_token('mallory')}"}


class LiveServer:
    """The app served by werkzeug on a loopback port in a background thread."""

    def __init__(self, application: Any):
        from werkzeug.serving import make_server

        self._server = make_server("127.0.0.1", 0, application, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(5)


@pytest.fixture(scope="session")
def live_server(app) -> Iterator[LiveServer]:
    server = LiveServer(app)
    yield server
    server.stop()


class Api:
    """A ``requests`` client of the live server, authenticated as one owner."""

    def __init__(self, base: str, token: str):
        self.base, self.http = base, requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def __call__(self, method: str, path: str, **kw: Any) -> requests.Response:
        return self.http.request(method, self.base + path, timeout=30, **kw)

    def create(self, f: AudioFixture, **body: Any) -> dict[str, Any]:
        """Create an upload session for fixture ``f`` (201 asserted)."""
        response = self("POST", "/api/audio-clips", json={"mime_type": f.mime_type, "bytes": f.size, **body})
        assert response.status_code == 201, response.text
        return response.json()

    def upload(self, f: AudioFixture, **body: Any) -> dict[str, Any]:
        """Create, PUT the fixture's bytes with the signed headers, complete (200 asserted)."""
        created = self.create(f, **body)
        assert put_upload(created["upload"], f.data).status_code == 200
        done = self("POST", f"/api/audio-clips/{created['clip']['id']}/complete")
        assert done.status_code == 200, done.text
        return done.json()["clip"]


@pytest.fixture
def api(live_server, make_token) -> Api:
    """The live server as owner ``e2e-user``."""
    return Api(live_server.url, make_token("e2e-user"))


def put_upload(upload: dict[str, Any], body: bytes) -> requests.Response:
    """PUT ``body`` to a presigned upload with exactly the returned headers (a real HTTP client)."""
    return requests.put(upload["url"], data=body, headers=upload["headers"], timeout=30)


def run_cli(app, args: list[str]):
    """Invoke a ``flask --app wsgi`` command on ``app`` (commands added as wsgi.py adds them)."""
    from advanced_notes.tools.cli import register_app_commands

    register_app_commands(app)
    return app.test_cli_runner().invoke(args=args)


@contextlib.contextmanager
def gunicorn_serving(settings: dict[str, Any], log: Any, **gunicorn_env: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """The real ``gunicorn -c gunicorn.conf.py wsgi:app`` with ``settings`` on a free loopback port.

    Args:
        settings: the app's settings (environment variables), e.g. ``base_config``.
        log: a binary file for gunicorn's output (its log and the app's).
        gunicorn_env: ``GUNICORN_*`` and other variables for this server.
    Yields:
        the base URL, once ``/healthz`` answers, and the master process (stopped on exit).
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update({k: str(v) for k, v in settings.items()})
    env.update({"GUNICORN_BIND": f"127.0.0.1:{port}", "LOG_LEVEL": "WARNING", **gunicorn_env})
    gunicorn = Path(sys.executable).with_name("gunicorn")
    proc = subprocess.Popen(
        [str(gunicorn), "-c", "gunicorn.conf.py", "wsgi:app"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"{base}/healthz", timeout=2)
                break
            except requests.RequestException:  # bound by the master, workers still booting
                assert proc.poll() is None and time.monotonic() < deadline, "gunicorn did not start (see its log)"
                time.sleep(0.2)
        yield base, proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()

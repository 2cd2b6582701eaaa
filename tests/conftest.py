"""Shared fixtures: real parts wherever a user would have them.

- S3: moto's ThreadedMotoServer on loopback (one per session, one bucket).
- Database: PostgreSQL when TEST_DATABASE_URL is set (a fresh database per session,
  dropped at the end), else a SQLite file; migrated with Alembic, never create_all.
- HTTP: the Flask test client for API tests, and the app served by werkzeug on
  loopback (``live_server``) for end-to-end tests with ``requests``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from sqlalchemy import text

from advanced_notes.adapters import migrate
from advanced_notes.api.auth import mint_token
from advanced_notes.api.context import services_of
from advanced_notes.app import create_app
from testkit.live import Api, AudioFixture, read_manifest
from testkit.paths import FIXTURES
from testkit.servers import LiveServer, fresh_postgres_database, moto_server
from tests.helpers import ACCESS_KEY, BUCKET, EC_KEY, JWT_SECRET, REGION, RSA_KEY, SECRET_KEY, is_app_setting


@pytest.fixture(scope="session", autouse=True)
def _isolated_environment() -> Iterator[None]:
    """Settings of the developer's shell or .env must not leak into tests (restored afterwards)."""
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if is_app_setting(n)]:
            patch.delenv(name)
        # moto's server logs every request at INFO through werkzeug; failures are what matter.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        yield


@pytest.fixture(scope="session")
def audio() -> dict[str, AudioFixture]:
    """The real audio fixtures of ../shared/fixtures/audio, from MANIFEST.tsv."""
    if not (FIXTURES / "MANIFEST.tsv").exists():
        pytest.fail(f"audio fixtures not found at {FIXTURES} (set AUDIO_FIXTURES_DIR)")
    return read_manifest(FIXTURES)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's threaded S3 server on a free loopback port."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def empty_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A factory of empty databases of the backend under test (PostgreSQL or SQLite)."""
    drops = []
    base = os.environ.get("TEST_DATABASE_URL")

    def make() -> str:
        if base:
            url, drop = fresh_postgres_database(base)
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


@pytest.fixture(scope="session")
def live_server(app) -> Iterator[LiveServer]:
    server = LiveServer(app)
    yield server
    server.stop()


@pytest.fixture
def api(live_server, make_token) -> Api:
    """The live server as owner ``e2e-user``."""
    return Api(live_server.url, make_token("e2e-user"))


@pytest.fixture(scope="module")
def jwks_url():
    """A JWKS endpoint on loopback publishing ``RSA_KEY`` (kid rsa-1, RS256) and ``EC_KEY`` (ec-1, ES256)."""
    keys = []
    for kid, key, alg in (("rsa-1", RSA_KEY, "RS256"), ("ec-1", EC_KEY, "ES256")):
        algorithm = jwt.get_algorithm_by_name(alg)
        jwk = json.loads(algorithm.to_jwk(key.public_key()))
        keys.append({**jwk, "kid": kid, "alg": alg, "use": "sig"})
    body = json.dumps({"keys": keys}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/.well-known/jwks.json"
    server.shutdown()

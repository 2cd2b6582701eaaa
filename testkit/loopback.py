"""The app served on loopback over moto's threaded S3 server and a fresh database.

Shared by the scripts that talk to the service over real HTTP in one process
(bench/fuzz.py, bench/roundtrip.py, bench/complete_large.py) and by tests/foundation/test_fuzz.py.
"""

from __future__ import annotations

import collections
import logging
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from advanced_notes.adapters import migrate
from advanced_notes.api.auth import mint_token
from advanced_notes.api.context import services_of
from advanced_notes.app import create_app
from testkit.servers import LiveServer, moto_server

#: Scripts hammer the API as one owner: limits get their own tests.
DEFAULT_SETTINGS = {
    "APP_ENV": "test",
    "S3_BUCKET": "loopback",
    "S3_ADDRESSING_STYLE": "path",
    "AWS_ACCESS_KEY_ID": "loopback",
    "AWS_SECRET_ACCESS_KEY": "loopback-secret",
    "AUTH_JWT_SECRET": "loopback-" + "s" * 40,
    "AUTH_JWKS_URL": None,
    "LOG_LEVEL": "WARNING",
    "RATELIMIT_DEFAULT": "1000000 per minute",
    "RATELIMIT_AUTH_FAILURES": "1000000 per minute",  # the fuzzer sends bad tokens on purpose
    "MAX_PENDING_UPLOADS_PER_OWNER": "0",
}


class StatusCounter:
    """WSGI middleware counting responses by status code (``counts``: status -> n)."""

    def __init__(self, app: Any):
        self.app = app
        self.counts: collections.Counter[int] = collections.Counter()
        self._lock = threading.Lock()

    def __call__(self, environ: dict, start_response: Any) -> Any:
        def counting_start_response(status: str, headers: list, exc_info: Any = None) -> Any:
            with self._lock:
                self.counts[int(status.split()[0])] += 1
            return start_response(status, headers, exc_info)

        return self.app(environ, counting_start_response)


@dataclass(frozen=True)
class Loopback:
    """A running service: ``base_url``, a bearer ``token`` (sub ``loopback``), the ``app``
    and its response ``counter``."""

    base_url: str
    token: str
    app: Any
    counter: StatusCounter


@contextmanager
def serving(database_url: str | None = None, **settings: str | None) -> Iterator[Loopback]:
    """Start moto's server, migrate ``database_url`` (default: a fresh SQLite file), serve the app.

    Args:
        database_url: an empty or migrated database; None for a temporary SQLite file.
        settings: overrides of :data:`DEFAULT_SETTINGS` (environment-variable names).
    """
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access line per request
    with moto_server() as s3_endpoint:
        db_url = database_url or f"sqlite:///{tempfile.mkdtemp()}/loopback.sqlite"
        migrate.upgrade(db_url)
        app = create_app({**DEFAULT_SETTINGS, "DATABASE_URL": db_url, "S3_ENDPOINT_URL": s3_endpoint, **settings})
        services = services_of(app)
        services.storage.ensure_bucket()
        counter = StatusCounter(app)
        server = LiveServer(counter)
        try:
            yield Loopback(server.url, mint_token(services.settings, "loopback", 6 * 3600), app, counter)
            services.db.dispose()
        finally:
            server.stop()

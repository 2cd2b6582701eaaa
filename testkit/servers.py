"""Servers on free loopback ports: moto's S3, the app on werkzeug or gunicorn, PostgreSQL databases."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from testkit.paths import REPO


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the OS picks it; a race with other binders is possible)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto's ``ThreadedMotoServer`` (S3 and SQS emulator) on a free loopback port.

    Yields:
        its endpoint URL, ``http://127.0.0.1:<port>``; the server stops on exit.
    """
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def fresh_postgres_database(base_url: str) -> tuple[str, Callable[[], None]]:
    """Create an empty database on the server of ``base_url`` (a SQLAlchemy URL).

    Returns:
        (the new database's URL, a function that drops it, closing its connections).
    """
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


class LiveServer:
    """A WSGI app served by werkzeug on a free loopback port in a background thread.

    ``url`` is its base URL; :meth:`stop` shuts it down.
    """

    def __init__(self, application: Any):
        from werkzeug.serving import make_server

        self._server = make_server("127.0.0.1", 0, application, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and wait (up to 5 s) for the serving thread."""
        self._server.shutdown()
        self._thread.join(5)


@contextlib.contextmanager
def gunicorn_serving(
    settings: dict[str, Any], log: IO[bytes], startup_seconds: float = 60, **gunicorn_env: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The real ``gunicorn -c gunicorn.conf.py wsgi:app`` with ``settings`` on a free loopback port.

    Args:
        settings: the app's settings (environment variables), e.g. the tests' ``base_config``.
        log: a binary file for gunicorn's output (its log and the app's).
        startup_seconds: how long ``/healthz`` may take to answer before this gives up.
        gunicorn_env: ``GUNICORN_*`` and other variables for this server.
    Yields:
        the base URL, once ``/healthz`` answers, and the master process (stopped on exit:
        SIGTERM, then SIGKILL after 30 s).
    Raises:
        RuntimeError: gunicorn exited or did not answer within ``startup_seconds``.
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update({k: str(v) for k, v in settings.items()})
    env.update({"GUNICORN_BIND": f"127.0.0.1:{port}", "LOG_LEVEL": "WARNING", **gunicorn_env})
    gunicorn = Path(sys.executable).with_name("gunicorn")
    proc = subprocess.Popen(
        [str(gunicorn), "-c", "gunicorn.conf.py", "wsgi:app"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_seconds
        while True:
            try:
                requests.get(f"{base}/healthz", timeout=2)
                break
            except requests.RequestException:  # bound by the master, workers still booting
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not start (see its log)") from None
                time.sleep(0.2)
        yield base, proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()

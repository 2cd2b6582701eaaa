"""The real stack for the reliability scripts: PostgreSQL, moto's server, gunicorn.

``running_stack()`` creates a fresh PostgreSQL database (migrated with Alembic), starts
moto's S3 server in its own process (optionally behind the fault proxy of
tests/faultproxy.py, so the API's store calls can be broken while clients still reach
the bucket directly), and gunicorn with the app; it stops everything and drops the
database on exit, also on Ctrl-C. Process and database handling come from bench/perf.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "bench" / "perf"), str(REPO)]

import pgutil  # noqa: E402
from procs import Children, free_port, wait_for_http  # noqa: E402

from tests.faultproxy import FaultProxy  # noqa: E402

BIN = Path(sys.executable).parent
JWT_SECRET = "stack-" + "s" * 40


@dataclass
class Stack:
    """A running stack: ``api`` and ``store`` base URLs, the app's ``env``, and handles."""

    api: str
    store: str
    env: dict[str, str]
    dbname: str
    gunicorn_pid: int
    proxy: FaultProxy | None
    children: Children

    def settings_env(self, **overrides: str) -> dict[str, str]:
        """The app's settings, e.g. for an in-process create_app() reaching the store directly."""
        return {**self.env, "S3_ENDPOINT_URL": self.store, **overrides}


def migrate(dbname: str) -> None:
    """Migrate ``dbname`` with the service's own command (``make migrate``), in a child process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUNICORN_")}
    result = subprocess.run([str(BIN / "flask"), "--app", "wsgi", "db", "upgrade"], cwd=REPO, check=False,
                            env={**env, "DATABASE_URL": pgutil.sqlalchemy_url(dbname), "LOG_LEVEL": "WARNING"},
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180)
    if result.returncode != 0:
        raise RuntimeError(f"migration of {dbname} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")


@contextmanager
def running_stack(name: str, *, workers: int = 2, threads: int = 4, fault_proxy: bool = False,
                  extra_env: dict[str, str] | None = None) -> Iterator[Stack]:
    """Start database, store and API; yield the :class:`Stack`; tear everything down."""
    dbname = f"an_perf_{name}_{uuid.uuid4().hex[:8]}"
    children = Children(Path(tempfile.mkdtemp(prefix=f"an-{name}-")))
    proxy = None
    pgutil.create_database(dbname)
    try:
        migrate(dbname)
        store_port, api_port = free_port(), free_port()
        moto = children.start("moto", [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(store_port)])
        store = f"http://127.0.0.1:{store_port}"
        wait_for_http(f"{store}/moto-api/", moto)
        if fault_proxy:
            proxy = FaultProxy("127.0.0.1", store_port)
        env = {
            **os.environ, "APP_ENV": "test", "DATABASE_URL": pgutil.sqlalchemy_url(dbname),
            "S3_BUCKET": name.replace("_", "-"), "S3_ADDRESSING_STYLE": "path", "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "stack", "AWS_SECRET_ACCESS_KEY": "stack-secret",
            "S3_ENDPOINT_URL": proxy.url if proxy else store, "S3_PUBLIC_ENDPOINT_URL": store,
            "AUTH_JWT_SECRET": JWT_SECRET, "LOG_LEVEL": "WARNING",
            **(extra_env or {}),
        }
        from advanced_notes import create_app

        create_app({**env, "S3_ENDPOINT_URL": store}).extensions["advanced_notes"].storage.ensure_bucket()
        gunicorn = children.start("gunicorn", [
            str(BIN / "gunicorn"), "-w", str(workers), "--threads", str(threads), "-b", f"127.0.0.1:{api_port}",
            "--graceful-timeout", "5", "--timeout", "30", "wsgi:app"], env=env, cwd=REPO)
        api = f"http://127.0.0.1:{api_port}"
        wait_for_http(f"{api}/healthz", gunicorn, timeout_s=60)
        yield Stack(api, store, env, dbname, gunicorn.pid, proxy, children)
    finally:
        if proxy:
            proxy.close()
        children.stop_all()
        pgutil.drop_database(dbname)

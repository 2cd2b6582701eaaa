"""The real stack for the reliability scripts: PostgreSQL, moto's server, gunicorn.

``running_stack()`` creates a fresh PostgreSQL database (migrated with Alembic), starts
moto's S3 server in its own process (optionally behind the fault proxy of
testkit/faultproxy.py, so the API's store calls can be broken while clients still reach
the bucket directly), and gunicorn with the app; it stops everything and drops the
database on exit, also on Ctrl-C. Process and database handling come from bench/perf.

gunicorn starts as in production: ``gunicorn -c gunicorn.conf.py wsgi:app`` from the
repository root, every setting through the config's ``GUNICORN_*`` environment variables
(bind, workers, threads, timeouts, and a small ``max_requests`` so workers recycle many
times during a run). ``PROMETHEUS_MULTIPROC_DIR`` is left unset, so the config creates
its own metrics directory as it does in production. The master's log (gunicorn's error
log, on stderr) goes to ``gunicorn.log`` in the stack's log folder; :func:`server_report`
reads it, and the master's state and ``/metrics``, at the end of a run.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "bench" / "perf"), str(REPO)]

import pgutil
from procs import Child, Children, free_port, wait_for_http

from advanced_notes.api.context import services_of
from testkit.faultproxy import FaultProxy

BIN = Path(sys.executable).parent
JWT_SECRET = "stack-" + "s" * 40
#: Worker recycling of the reliability runs: small, so a run crosses many recycles.
MAX_REQUESTS = 50
MAX_REQUESTS_JITTER = 10


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
    gunicorn: Child
    workers: int

    @property
    def gunicorn_log(self) -> Path:
        """gunicorn's own log (master and workers: boots, recycles, kills, tracebacks)."""
        return self.gunicorn.log

    def master_alive(self) -> bool:
        return self.gunicorn.proc.poll() is None

    def settings_env(self, **overrides: str) -> dict[str, str]:
        """The app's settings, e.g. for an in-process create_app() reaching the store directly."""
        return {**self.env, "S3_ENDPOINT_URL": self.store, **overrides}


def migrate(dbname: str, env: dict[str, str]) -> None:
    """Migrate ``dbname`` with the service's own command (``make migrate``), in a child process.

    ``env`` is the app's settings: the command builds the app, which refuses to start
    without a real auth configuration outside the local embedded stack.
    """
    result = subprocess.run(
        [str(BIN / "flask"), "--app", "wsgi", "db", "upgrade"],
        cwd=REPO,
        check=False,
        env={**env, "DATABASE_URL": pgutil.sqlalchemy_url(dbname), "LOG_LEVEL": "WARNING"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
    )
    if result.returncode != 0:
        raise RuntimeError(f"migration of {dbname} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """``--workers --threads --max-requests --max-requests-jitter``: the server of :func:`running_stack`."""
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (default 4)")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (default 4)")
    parser.add_argument(
        "--max-requests",
        type=int,
        default=MAX_REQUESTS,
        help=f"gunicorn max_requests: recycle workers (default {MAX_REQUESTS}; 0: never)",
    )
    parser.add_argument(
        "--max-requests-jitter",
        type=int,
        default=MAX_REQUESTS_JITTER,
        help=f"gunicorn max_requests_jitter (default {MAX_REQUESTS_JITTER})",
    )


@contextmanager
def running_stack(
    name: str,
    *,
    workers: int = 2,
    threads: int = 4,
    max_requests: int = MAX_REQUESTS,
    max_requests_jitter: int = MAX_REQUESTS_JITTER,
    fault_proxy: bool = False,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Stack]:
    """Start database, store and API; yield the :class:`Stack`; tear everything down.

    Args:
        workers, threads: gunicorn workers and threads per worker (gthread, as the config says).
        max_requests, max_requests_jitter: worker recycling (0 turns it off).
    """
    dbname = f"an_perf_{name}_{uuid.uuid4().hex[:8]}"
    children = Children(Path(tempfile.mkdtemp(prefix=f"an-{name}-")))
    proxy = None
    pgutil.create_database(dbname)
    try:
        store_port, api_port = free_port(), free_port()
        moto = children.start("moto", [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(store_port)])
        store = f"http://127.0.0.1:{store_port}"
        wait_for_http(f"{store}/moto-api/", moto)
        if fault_proxy:
            proxy = FaultProxy("127.0.0.1", store_port)
        # Nothing gunicorn-related leaks in from the caller: not its settings (GUNICORN_*,
        # including GUNICORN_CMD_ARGS, which gunicorn itself reads), not a metrics directory.
        inherited = {
            k: v for k, v in os.environ.items() if not k.startswith("GUNICORN_") and k != "PROMETHEUS_MULTIPROC_DIR"
        }
        env = {
            **inherited,
            "APP_ENV": "test",
            "DATABASE_URL": pgutil.sqlalchemy_url(dbname),
            "S3_BUCKET": name.replace("_", "-"),
            "S3_ADDRESSING_STYLE": "path",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "stack",
            "AWS_SECRET_ACCESS_KEY": "stack-secret",
            "S3_ENDPOINT_URL": proxy.url if proxy else store,
            "S3_PUBLIC_ENDPOINT_URL": store,
            "AUTH_JWT_SECRET": JWT_SECRET,
            "LOG_LEVEL": "WARNING",
            **(extra_env or {}),
        }
        migrate(dbname, env)
        from advanced_notes.app import create_app

        services_of(create_app({**env, "S3_ENDPOINT_URL": store})).storage.ensure_bucket()
        # The production command and config; the settings through the config's variables.
        gunicorn_env = {
            **env,
            "GUNICORN_BIND": f"127.0.0.1:{api_port}",
            "GUNICORN_WORKERS": str(workers),
            "GUNICORN_THREADS": str(threads),
            "GUNICORN_TIMEOUT": "30",
            "GUNICORN_GRACEFUL_TIMEOUT": "5",
            "GUNICORN_MAX_REQUESTS": str(max_requests),
            "GUNICORN_MAX_REQUESTS_JITTER": str(max_requests_jitter),
        }
        gunicorn = children.start(
            "gunicorn", [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"], env=gunicorn_env, cwd=REPO
        )
        api = f"http://127.0.0.1:{api_port}"
        wait_for_http(f"{api}/healthz", gunicorn, timeout_s=60)
        yield Stack(api, store, env, dbname, gunicorn.pid, proxy, children, gunicorn, workers)
    finally:
        if proxy:
            proxy.close()
        children.stop_all()
        pgutil.drop_database(dbname)


def workers_gauge(api: str) -> float | None:
    """``advanced_notes_workers`` from ``/metrics`` (live processes serving the app), None if absent."""
    with urllib.request.urlopen(f"{api}/metrics", timeout=10) as response:
        text = response.read().decode()
    match = re.search(r"^advanced_notes_workers(?:\{[^}]*\})? (\S+)$", text, re.M)
    return float(match.group(1)) if match else None


def server_report(stack: Stack, settle_s: float = 15.0) -> dict[str, object]:
    """The server's side of a run, read at its end (before the stack is torn down).

    ``worker_restarts``: "Autorestarting worker" lines (max_requests recycles);
    ``workers_booted``: distinct worker pids gunicorn booted (initial ones included);
    ``workers_killed_seen``: workers the master reaped after a SIGKILL; ``unhandled``:
    "Unhandled exception" lines (the master's main loop failing); ``master_alive``;
    ``workers_gauge``: ``advanced_notes_workers`` from ``/metrics``, which must equal the
    configured worker count. A worker being replaced right now may be missing for a
    moment, so it is read again for up to ``settle_s`` seconds until it matches; a dead
    worker's file left behind would keep it above for ever.
    """
    alive = stack.master_alive()
    gauge: float | None = None
    gauge_error = ""
    if alive:
        deadline = time.monotonic() + settle_s
        while True:
            try:
                gauge = workers_gauge(stack.api)
                gauge_error = ""
            except OSError as exc:
                gauge, gauge_error = None, repr(exc)
            if gauge == stack.workers or time.monotonic() > deadline:
                break
            time.sleep(0.3)
    log = stack.gunicorn_log.read_text(errors="replace")
    return {
        "master_alive": alive and stack.master_alive(),
        "worker_restarts": log.count("Autorestarting worker"),
        "workers_booted": len(set(re.findall(r"Booting worker with pid: (\d+)", log))),
        "workers_killed_seen": len(re.findall(r"Worker \(pid:\d+\) was sent SIGKILL", log)),
        "worker_timeouts": log.count("WORKER TIMEOUT"),
        "unhandled": log.count("Unhandled exception"),
        "tracebacks": log.count("Traceback (most recent call last)"),
        "workers_configured": stack.workers,
        "workers_gauge": gauge,
        **({"workers_gauge_error": gauge_error} if gauge_error else {}),
        "log": str(stack.gunicorn_log),
    }


def server_failures(server: dict[str, object]) -> list[str]:
    """What in :func:`server_report` fails a run (empty: the server held)."""
    failures = []
    if not server["master_alive"]:
        failures.append("the gunicorn master died")
    if server["unhandled"]:
        failures.append(f"{server['unhandled']} 'Unhandled exception' in gunicorn's log")
    if server["workers_gauge"] != server["workers_configured"]:
        failures.append(
            f"/metrics advanced_notes_workers is {server['workers_gauge']}, "
            f"{server['workers_configured']} workers are configured"
        )
    return failures

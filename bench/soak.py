"""Soak: minutes of steady mixed traffic against gunicorn + PostgreSQL + moto's server.

gunicorn runs as in production (``gunicorn -c gunicorn.conf.py wsgi:app``, see stack.py)
with a small ``max_requests`` (50 +- 10 by default), so its workers recycle every few
seconds, now and then two at once: the master's SIGCHLD handling is part of what is soaked.

A scheduler sends requests at a fixed rate from a thread pool (a separate process
from the server): 40 % full uploads (create, PUT to the bucket, complete), 25 %
playback, 20 % note audio, 15 % list. It prints, at the start (after warm-up) and at
the end: gunicorn workers' RSS, and the app's PostgreSQL connections (total and in
use, from pg_stat_activity by application_name). With recycling on, workers are young,
so RSS says little about leaks; run with ``--max-requests 0`` for that. At the end it
reports worker restarts seen in gunicorn's log, whether the master is alive, and the
``advanced_notes_workers`` gauge of ``/metrics``.

It fails (exit status 1) on any answer that is not the expected success, any
connection error or timeout, any 5xx, a dead master, an "Unhandled exception" in
gunicorn's log, or a workers gauge other than the configured worker count.

    .venv/bin/python bench/soak.py [--seconds 300 --rate 20 --workers 4 --threads 4
                                    --max-requests 50 --max-requests-jitter 10]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import itertools
import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jwt
import psutil
import requests

# Siblings (stack) and the perf harness (pgutil, procs) are imported as top-level modules.
sys.path[:0] = [
    str(Path(__file__).resolve().parent),
    str(Path(__file__).resolve().parent / "perf"),
    str(Path(__file__).resolve().parents[1]),
]
import pgutil
from stack import (
    JWT_SECRET,
    Stack,
    add_server_options,
    running_stack,
    server_failures,
    server_report,
)

from advanced_notes.adapters.db import APPLICATION_NAME
from testkit.paths import FIXTURES as AUDIO_FIXTURES

AUDIO = AUDIO_FIXTURES / "note.ogg"
WARMUP_SECONDS = 15
#: Seconds a client waits for an answer (the API's slowest bounded call is ~17 s).
CLIENT_TIMEOUT_S = 30


def snapshot(stack: Stack) -> dict[str, float]:
    """Worker RSS (MiB, each) and the app's database connections right now."""
    rss = []
    for worker in psutil.Process(stack.gunicorn_pid).children():
        with contextlib.suppress(psutil.NoSuchProcess):  # recycled between the listing and the reading
            rss.append(round(worker.memory_info().rss / 2**20, 1))
    with pgutil.connect(stack.dbname) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*), count(*) FILTER (WHERE state = 'active') FROM pg_stat_activity "
            "WHERE datname = %s AND application_name = %s",
            (stack.dbname, APPLICATION_NAME),
        )
        total, active = cur.fetchone()
    return {"worker_rss_mib": sorted(rss), "db_connections": total, "db_connections_active": active}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=300)
    parser.add_argument("--rate", type=float, default=20.0, help="operations per second")
    add_server_options(parser)
    args = parser.parse_args()
    audio = AUDIO.read_bytes()
    results: collections.Counter = collections.Counter()
    latencies: list[float] = []
    connection_errors: list[str] = []
    lock = threading.Lock()
    with running_stack(
        "soak",
        workers=args.workers,
        threads=args.threads,
        max_requests=args.max_requests,
        max_requests_jitter=args.max_requests_jitter,
        extra_env={"RATELIMIT_DEFAULT": "1000000 per minute", "MAX_PENDING_UPLOADS_PER_OWNER": "0"},
    ) as stack:
        token = jwt.encode({"sub": "soak-user", "exp": int(time.time()) + 86400}, JWT_SECRET, algorithm="HS256")
        local = threading.local()
        ready: list[tuple[str, str]] = []  # (clip id, note id) of ready clips

        def session() -> requests.Session:
            if not hasattr(local, "s"):
                local.s = requests.Session()
                local.s.headers["Authorization"] = f"Bearer {token}"
            return local.s

        def check(response: requests.Response, expected: int, what: str) -> requests.Response:
            with lock:
                results[f"{what} {response.status_code}"] += 1
                if response.status_code != expected:
                    results["errors"] += 1
                if response.status_code >= 500:
                    results["5xx"] += 1
            return response

        def send(
            what: str, method: str, url: str, via: requests.Session | None = None, **kw
        ) -> requests.Response | None:
            """One request; a connection error or timeout is counted (and fails the soak), not raised."""
            try:
                return (via or requests).request(method, url, timeout=CLIENT_TIMEOUT_S, **kw)
            except (requests.ConnectionError, requests.Timeout) as exc:
                with lock:
                    results[f"{what} connection error"] += 1
                    results["errors"] += 1
                    connection_errors.append(f"{time.monotonic() - begin:.1f} s {what}: {exc!r}"[:300])
                if via is not None:  # a fresh connection next time
                    local.__dict__.pop("s", None)
                return None

        def upload(n: int) -> None:
            s = session()
            note = f"soak-{n % 50}"
            created = send(
                "create",
                "POST",
                f"{stack.api}/api/audio-clips",
                s,
                json={"mime_type": "audio/ogg", "bytes": len(audio), "note_id": note},
            )
            if created is None or check(created, 201, "create").status_code != 201:
                return
            body = created.json()
            put = send("put", "PUT", body["upload"]["url"], data=audio, headers=body["upload"]["headers"])
            if put is None or check(put, 200, "put").status_code != 200:
                return
            done = send("complete", "POST", f"{stack.api}/api/audio-clips/{body['clip']['id']}/complete", s)
            if done is not None and check(done, 200, "complete").status_code == 200:
                with lock:
                    ready.append((body["clip"]["id"], note))

        def operation(n: int) -> None:
            started = time.perf_counter()
            kind = random.random()
            s = session()
            with lock:
                clip, note = random.choice(ready) if ready else (None, None)
            if kind < 0.40 or clip is None:
                upload(n)
            else:
                what, path = (
                    ("playback", f"/api/audio-clips/{clip}/playback")
                    if kind < 0.65
                    else ("note-audio", f"/api/notes/{note}/audio")
                    if kind < 0.85
                    else ("list", "/api/audio-clips?limit=20")
                )
                response = send(what, "GET", stack.api + path, s)
                if response is not None:
                    check(response, 200, what)
            with lock:
                latencies.append((time.perf_counter() - started) * 1000)

        start_snapshot: dict | None = None
        deadline = time.monotonic() + args.seconds
        begin = time.monotonic()
        futures = []
        with ThreadPoolExecutor(16) as pool:
            for n in itertools.count():
                due = begin + n / args.rate
                now = time.monotonic()
                if due > deadline:
                    break
                if due > now:
                    time.sleep(due - now)
                if start_snapshot is None and time.monotonic() - begin >= WARMUP_SECONDS:
                    start_snapshot = snapshot(stack)
                futures.append(pool.submit(operation, n))
        # An operation that raised (not an HTTP answer, not a connection error) is a failure too.
        crashed = [repr(exc)[:300] for exc in (f.exception() for f in futures) if exc is not None]
        end_snapshot = snapshot(stack)
        server = server_report(stack)
    failures = server_failures(server)
    ops = len(latencies)
    latencies.sort()
    tallies = ("errors", "5xx")
    requests_sent = sum(v for k, v in results.items() if k not in tallies)
    n_connection_errors = sum(v for k, v in results.items() if k.endswith("connection error"))
    print(
        f"soak: {args.seconds} s at {args.rate:g} operations/s ({ops} operations, {requests_sent} HTTP requests); "
        f"gunicorn -c gunicorn.conf.py, {args.workers} workers x {args.threads} threads, max_requests "
        f"{args.max_requests} +- {args.max_requests_jitter}; PostgreSQL, moto"
    )
    print(
        f"errors: {results['errors']} (connection errors/timeouts {n_connection_errors}, 5xx {results['5xx']}), "
        f"operations that raised: {len(crashed)}"
    )
    print("answers: " + ", ".join(f"{k}: {v}" for k, v in sorted(results.items()) if k not in tallies))
    if ops:
        print(f"operation latency ms: p50 {latencies[ops // 2]:.1f}, p99 {latencies[int(ops * 0.99)]:.1f}")
    print(f"at start (after {WARMUP_SECONDS} s warm-up): {start_snapshot}")
    print(f"at end:                              {end_snapshot}")
    print(
        f"server: worker restarts (max_requests) {server['worker_restarts']}, workers booted "
        f"{server['workers_booted']}, master alive {server['master_alive']}, 'Unhandled exception' "
        f"{server['unhandled']}, tracebacks {server['tracebacks']}, worker timeouts {server['worker_timeouts']}, "
        f"/metrics advanced_notes_workers {server['workers_gauge']} (configured {server['workers_configured']}); "
        f"log {server['log']}"
    )
    for line in connection_errors[:5] + crashed[:5]:
        print("  ", line)
    for failure in failures:
        print("FAIL:", failure)
    return 1 if results["errors"] or crashed or failures else 0


if __name__ == "__main__":
    sys.exit(main())

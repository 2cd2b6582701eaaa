"""Soak: minutes of steady mixed traffic against gunicorn + PostgreSQL + moto's server.

A scheduler sends requests at a fixed rate from a thread pool (a separate process
from the server): 40 % full uploads (create, PUT to the bucket, complete), 25 %
playback, 20 % note audio, 15 % list. It prints, at the start (after warm-up) and at
the end: gunicorn workers' RSS, and the app's PostgreSQL connections (total and in
use, from pg_stat_activity by application_name). It counts every answer that is not
a success. Flat memory and pool, and 0 errors, is the pass mark.

    .venv/bin/python bench/soak.py [--seconds 300 --rate 20]
"""

from __future__ import annotations

import argparse
import collections
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pgutil
from stack import JWT_SECRET, Stack, running_stack

from advanced_notes.adapters.db import APPLICATION_NAME

AUDIO = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "audio" / "note.ogg"
WARMUP_SECONDS = 15


def snapshot(stack: Stack) -> dict[str, float]:
    """Worker RSS (MiB, each) and the app's database connections right now."""
    workers = psutil.Process(stack.gunicorn_pid).children()
    with pgutil.connect(stack.dbname) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*), count(*) FILTER (WHERE state = 'active') FROM pg_stat_activity "
            "WHERE datname = %s AND application_name = %s",
            (stack.dbname, APPLICATION_NAME),
        )
        total, active = cur.fetchone()
    rss = sorted(round(w.memory_info().rss / 2**20, 1) for w in workers)
    return {"worker_rss_mib": rss, "db_connections": total, "db_connections_active": active}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=300)
    parser.add_argument("--rate", type=float, default=20.0, help="operations per second")
    args = parser.parse_args()
    audio = AUDIO.read_bytes()
    results: collections.Counter = collections.Counter()
    latencies: list[float] = []
    lock = threading.Lock()
    with running_stack(
        "soak",
        workers=2,
        threads=4,
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
            return response

        def upload(n: int) -> None:
            s = session()
            note = f"soak-{n % 50}"
            created = check(
                s.post(
                    f"{stack.api}/api/audio-clips",
                    json={"mime_type": "audio/ogg", "bytes": len(audio), "note_id": note},
                ),
                201,
                "create",
            )
            if created.status_code != 201:
                return
            body = created.json()
            check(requests.put(body["upload"]["url"], data=audio, headers=body["upload"]["headers"]), 200, "put")
            done = check(s.post(f"{stack.api}/api/audio-clips/{body['clip']['id']}/complete"), 200, "complete")
            if done.status_code == 200:
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
            elif kind < 0.65:
                check(s.get(f"{stack.api}/api/audio-clips/{clip}/playback"), 200, "playback")
            elif kind < 0.85:
                check(s.get(f"{stack.api}/api/notes/{note}/audio"), 200, "note-audio")
            else:
                check(s.get(f"{stack.api}/api/audio-clips?limit=20"), 200, "list")
            with lock:
                latencies.append((time.perf_counter() - started) * 1000)

        start_snapshot: dict | None = None
        deadline = time.monotonic() + args.seconds
        begin = time.monotonic()
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
                pool.submit(operation, n)
        end_snapshot = snapshot(stack)
    ops = len(latencies)
    latencies.sort()
    print(
        f"soak: {args.seconds} s at {args.rate:g} operations/s ({ops} operations, "
        f"{sum(v for k, v in results.items() if k != 'errors')} HTTP requests); gunicorn 2 workers x 4 threads, "
        "PostgreSQL, moto"
    )
    print(f"errors: {results['errors']}")
    print("answers: " + ", ".join(f"{k}: {v}" for k, v in sorted(results.items()) if k != "errors"))
    print(f"operation latency ms: p50 {latencies[ops // 2]:.1f}, p99 {latencies[int(ops * 0.99)]:.1f}")
    print(f"at start (after {WARMUP_SECONDS} s warm-up): {start_snapshot}")
    print(f"at end:                              {end_snapshot}")
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())

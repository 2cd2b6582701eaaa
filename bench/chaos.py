"""Chaos run: complete flows against the real stack while faults are injected, then invariants.

1,000 flows (create -> PUT -> complete -> playback; some deleted, some abandoned after
create) run against gunicorn + PostgreSQL + moto's server while a fault injector
breaks the API's store calls at random (connections refused, reset, hanging, HTTP 500)
and SIGKILLs gunicorn workers: one at a time, or (about 4 kills in 10) two or more at
the same moment (2, 3, ... up to all of them, in turn), so the master reaps several
exits at once. gunicorn runs as in production (``gunicorn -c gunicorn.conf.py wsgi:app``,
see stack.py) with a small ``max_requests`` (50 +- 10 by default), so workers also recycle
all the time. Clients retry like a mobile app with an Idempotency-Key. Then the sweeper
runs once (with the recorded deletions made due: time passes) and the invariants are checked:

1. every ready clip's object exists, with its size;
2. every object under the prefix is known to a row or a recorded deletion;
3. no clip was lost or duplicated: one row per idempotency key, every acknowledged clip
   exists unless deleted, every deleted one is gone;
4. no API response was a 5xx other than 503 (the store faults' expected answer), and no
   store response (clients PUT to the bucket directly) a 5xx;
5. no connection error, timeout or cut-off answer except on an API request in flight when
   a worker was killed (or sent up to 1 s after: a connection the killed worker held);
6. the server held: the gunicorn master alive, no "Unhandled exception" in its log,
   and ``/metrics`` ``advanced_notes_workers`` equal to the configured worker count.

With ``--silent 0.33`` a third of the clients PUT their recording and never call
``complete`` (the app was killed, the network dropped): the sweeper (grace period 0: time
has passed) must finish every one of them, so 0 recordings are lost.

    .venv/bin/python bench/chaos.py [--flows 1000 --concurrency 8 --seed 1 --workers 4 --threads 4
                                     --max-requests 50 --max-requests-jitter 10 --silent 0.33]

Exit status 0 only when every invariant holds.
"""

from __future__ import annotations

import argparse
import collections
import random
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import requests

# Siblings (stack) and the perf harness (pgutil, procs) are imported as top-level modules.
sys.path[:0] = [
    str(Path(__file__).resolve().parent),
    str(Path(__file__).resolve().parent / "perf"),
    str(Path(__file__).resolve().parents[1]),
]
import jwt
import pgutil
from stack import (
    JWT_SECRET,
    Stack,
    add_server_options,
    running_stack,
    server_failures,
    server_report,
)

from advanced_notes.api.context import services_of
from testkit.paths import FIXTURES as AUDIO_FIXTURES

AUDIO = AUDIO_FIXTURES / "note.ogg"
OWNER = "chaos-user"
RETRYABLE = {429, 502, 503, 504}
#: The API's answer to a broken store (or database): expected while faults are injected.
EXPECTED_5XX = {503}
#: A connection error this long after a worker kill is still the kill's (a connection it held).
KILL_GRACE_S = 1.0
#: Share of kill events that kill two or more workers at the same moment.
SIMULTANEOUS_SHARE = 0.4


@dataclass
class Tally:
    statuses: collections.Counter = field(default_factory=collections.Counter)  # API answers
    store_statuses: collections.Counter = field(default_factory=collections.Counter)  # the bucket's (PUT)
    connection_errors: int = 0
    retries: int = 0
    faults: collections.Counter = field(default_factory=collections.Counter)
    kill_times: list = field(default_factory=list)  # time.monotonic() of each kill event
    #: (api?, sent at, failed at, what) of every connection error or timeout
    failed_sends: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)


@dataclass
class Flow:
    key: str
    kind: str  # complete, abandon, delete, silent (PUT, never complete)
    clip_id: str | None = None
    storage_key: str | None = None
    ready: bool = False
    deleted: bool = False


class Client:
    """The API as a flaky-network mobile client sees it: retries with backoff."""

    def __init__(self, stack: Stack, tally: Tally):
        token = jwt.encode({"sub": OWNER, "exp": int(time.time()) + 6 * 3600}, JWT_SECRET, algorithm="HS256")
        self.api, self.tally = stack.api, tally
        self.local = threading.local()
        self.token = token

    def _session(self) -> requests.Session:
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
            self.local.session.headers["Authorization"] = f"Bearer {self.token}"
        return self.local.session

    def call(self, method: str, url: str, attempts: int = 60, **kw) -> tuple[requests.Response, int]:
        """Send until an answer that is not retryable; returns (response, attempts used)."""
        api = url.startswith(self.api)
        for attempt in range(1, attempts + 1):
            sent = time.monotonic()
            try:
                response = self._session().request(method, url, timeout=15, **kw)
            # ChunkedEncodingError: the answer's head arrived, its body was cut off (a killed worker).
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                self.tally.add(connection_errors=1, retries=1)
                with self.tally.lock:
                    self.tally.failed_sends.append((api, sent, time.monotonic(), f"{method} {url}: {exc!r}"[:300]))
                self.local.__dict__.pop("session", None)
                time.sleep(min(0.05 * 2**attempt, 1.0) * random.random())
                continue
            with self.tally.lock:
                (self.tally.statuses if api else self.tally.store_statuses)[response.status_code] += 1
            if response.status_code not in RETRYABLE:
                return response, attempt
            self.tally.add(retries=1)
            time.sleep(min(0.05 * 2**attempt, 1.0) * random.random())
        raise RuntimeError(f"{method} {url}: no answer after {attempts} attempts")


def run_flow(client: Client, flow: Flow, audio: bytes) -> None:
    api = client.api
    created, _ = client.call(
        "POST",
        f"{api}/api/audio-clips",
        headers={"Idempotency-Key": flow.key},
        json={"mime_type": "audio/ogg", "bytes": len(audio), "note_id": "chaos"},
    )
    assert created.status_code == 201, created.text
    flow.clip_id, flow.storage_key = created.json()["clip"]["id"], created.json()["clip"]["storage_key"]
    if flow.kind == "abandon":
        return
    upload = created.json()["upload"]
    if upload is not None:  # None: a replay after a lost answer found the clip already ready
        put, _ = client.call("PUT", upload["url"], data=audio, headers=upload["headers"])
        assert put.status_code == 200, put.text
    if flow.kind == "silent":
        return
    done, _ = client.call("POST", f"{api}/api/audio-clips/{flow.clip_id}/complete")
    assert done.status_code == 200, done.text
    flow.ready = True
    playback, _ = client.call("GET", f"{api}/api/audio-clips/{flow.clip_id}/playback")
    assert playback.status_code == 200, playback.text
    if flow.kind == "delete":
        gone, tries = client.call("DELETE", f"{api}/api/audio-clips/{flow.clip_id}")
        # A 404 after a lost answer means an earlier attempt deleted it.
        assert gone.status_code == 204 or (gone.status_code == 404 and tries > 1), gone.text
        flow.deleted = True


def live_workers(stack: Stack) -> list[psutil.Process]:
    """The master's children that are running (not a killed one not yet reaped)."""
    workers = []
    for worker in psutil.Process(stack.gunicorn_pid).children():
        try:
            if worker.status() != psutil.STATUS_ZOMBIE:
                workers.append(worker)
        except psutil.NoSuchProcess:
            pass
    return workers


def kill_workers(stack: Stack, tally: Tally, rng: random.Random) -> None:
    """SIGKILL one worker or, some of the time, two or more (2, 3, ..., all in turn) at the same moment."""
    workers = live_workers(stack)
    if not workers:
        return
    n = 1
    if len(workers) >= 2 and rng.random() < SIMULTANEOUS_SHARE:
        # Sizes in turn, 2, 3, ... up to every worker, so each occurs in a run.
        together = sum(v for k, v in tally.faults.items() if k.endswith("at once"))
        n = 2 + together % (len(workers) - 1)
    victims = rng.sample(workers, n)
    killed = 0
    for worker in victims:  # back to back: the master sees the exits together
        try:
            worker.send_signal(signal.SIGKILL)
            killed += 1
        except psutil.NoSuchProcess:  # it recycled in the meantime
            pass
    with tally.lock:
        tally.kill_times.append(time.monotonic())
        tally.faults["workers killed"] += killed
        tally.faults["kill events, one worker" if n == 1 else f"kill events, {n} workers at once"] += 1


def inject_faults(stack: Stack, tally: Tally, stop: threading.Event, rng: random.Random) -> None:
    """Break the API's store path or kill workers, at random, until ``stop``."""
    last_kill = time.monotonic()
    while not stop.wait(rng.uniform(0.3, 1.2)):
        if time.monotonic() - last_kill > 4 and rng.random() < 0.3:
            kill_workers(stack, tally, rng)
            last_kill = time.monotonic()
            continue
        mode = rng.choice(["refuse", "reset", "hang", "http500"])
        stack.proxy.set_mode(mode)
        tally.faults[f"store {mode}"] += 1
        stop.wait(rng.uniform(0.2, 1.0))
        stack.proxy.set_mode("pass")


def check_invariants(stack: Stack, flows: list[Flow], tally: Tally) -> dict[str, int]:
    """Run the sweeper once, then check the four invariants; return counts (failures included)."""
    from advanced_notes.app import create_app
    from advanced_notes.services.sweeper import Sweeper
    from advanced_notes.settings import load_settings

    with pgutil.connect(stack.dbname) as conn, conn.cursor() as cur:  # time passes: deletions are due
        cur.execute("UPDATE pending_deletions SET next_attempt_at = now(), recheck_until = now()")
    app = create_app(stack.settings_env())
    services = services_of(app)
    settings = load_settings(stack.settings_env(SWEEP_COMPLETE_GRACE_SECONDS="0"))
    report = Sweeper(services.db, services.storage, settings).run(apply=True, reconcile=True)
    storage = services.storage
    with pgutil.connect(stack.dbname) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT id::text, storage_key, status, bytes, idempotency_key FROM audio_clips WHERE owner_id = %s",
            (OWNER,),
        )
        rows = cur.fetchall()
        cur.execute("SELECT storage_key FROM pending_deletions")
        recorded = {r[0] for r in cur.fetchall()}
    by_key = collections.Counter(r[4] for r in rows)
    rows_by_id = {r[0]: r for r in rows}
    objects = [o for page in storage.list_objects(f"{services.settings.key_prefix}/audio-clips/") for o in page]
    known = {r[1] for r in rows} | recorded
    missing = [r for r in rows if r[2] == "ready" and (storage.head(r[1]) is None or storage.head(r[1]).size != r[3])]
    counts = {
        "flows": len(flows),
        "clips acknowledged (201)": sum(f.clip_id is not None for f in flows),
        "ready": sum(r[2] == "ready" for r in rows),
        "pending (abandoned)": sum(r[2] == "pending" for r in rows),
        "deleted by clients": sum(f.deleted for f in flows),
        "objects in the bucket": len(objects),
        "sweeper: recorded deletions done": report.deletions.done,
        "sweeper: late objects deleted": report.late_objects_deleted,
        "silent uploads (never completed)": sum(f.kind == "silent" for f in flows),
        "sweeper: uploads finished ready": report.finished_ready,
        "must be 0: recordings lost (uploaded, never completed, not ready)": sum(
            1 for f in flows if f.kind == "silent" and rows_by_id.get(f.clip_id, ("",) * 3)[2] != "ready"
        ),
        "must be 0: ready clips without their object": len(missing),
        "must be 0: objects no row or deletion knows": sum(o.key not in known for o in objects),
        "must be 0: idempotency keys with more than one row": sum(n > 1 for n in by_key.values()),
        "must be 0: acknowledged clips lost": sum(
            1 for f in flows if f.clip_id and not f.deleted and f.clip_id not in rows_by_id
        ),
        "must be 0: deleted clips still present": sum(1 for f in flows if f.deleted and f.clip_id in rows_by_id),
        "must be 0: rows nobody asked for": sum(1 for k in by_key if k not in {f.key for f in flows}),
        "must be 0: completed flows not ready": sum(
            1 for f in flows if f.ready and not f.deleted and rows_by_id.get(f.clip_id, ("",) * 3)[2] != "ready"
        ),
        "must be 0: API 5xx other than 503": sum(
            n for s, n in tally.statuses.items() if s >= 500 and s not in EXPECTED_5XX
        ),
        "must be 0: store 5xx (direct PUTs)": sum(n for s, n in tally.store_statuses.items() if s >= 500),
        "must be 0: connection errors not explained by a worker kill": len(unexplained_failures(tally)),
    }
    return counts


def unexplained_failures(tally: Tally) -> list[str]:
    """Connection errors/timeouts not on an API request in flight at a kill (or just after one)."""
    return [
        what
        for api, sent, failed, what in tally.failed_sends
        if not (api and any(sent - KILL_GRACE_S <= k <= failed for k in tally.kill_times))
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    add_server_options(parser)
    parser.add_argument("--silent", type=float, default=0.0, help="Share of clients that never call complete.")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    audio = AUDIO.read_bytes()
    flows = [
        Flow(f"chaos-{args.seed}-{i}", rng.choices(["complete", "abandon", "delete"], [8, 1, 1])[0])
        for i in range(args.flows)
    ]
    for flow in flows if args.silent else ():  # no draw without --silent: the default run is unchanged
        if rng.random() < args.silent:
            flow.kind = "silent"
    tally = Tally()
    extra = {
        "S3_CONNECT_TIMEOUT_SECONDS": "1",
        "S3_READ_TIMEOUT_SECONDS": "2",
        "S3_MAX_ATTEMPTS": "2",
        "RATELIMIT_DEFAULT": "1000000 per minute",
        "MAX_PENDING_UPLOADS_PER_OWNER": "0",
    }
    started = time.monotonic()
    with running_stack(
        "chaos",
        workers=args.workers,
        threads=args.threads,
        max_requests=args.max_requests,
        max_requests_jitter=args.max_requests_jitter,
        fault_proxy=True,
        extra_env=extra,
    ) as stack:
        client = Client(stack, tally)
        stop = threading.Event()
        injector = threading.Thread(target=inject_faults, args=(stack, tally, stop, rng), daemon=True)
        injector.start()
        errors = []
        with ThreadPoolExecutor(args.concurrency) as pool:
            for future in [pool.submit(run_flow, client, flow, audio) for flow in flows]:
                try:
                    future.result()
                except Exception as exc:
                    errors.append(repr(exc))
        stop.set()
        injector.join()
        stack.proxy.set_mode("pass")
        flow_seconds = time.monotonic() - started
        counts = check_invariants(stack, flows, tally)
        server = server_report(stack)
    counts["must be 0: flows that did not finish"] = len(errors)
    failures = server_failures(server)
    counts["must be 0: server (master dead, unhandled exception, workers gauge)"] = len(failures)
    unexplained = unexplained_failures(tally)
    print(
        f"chaos run: {args.flows} flows, concurrency {args.concurrency}, seed {args.seed}, "
        f"{flow_seconds:.0f} s of flows; gunicorn -c gunicorn.conf.py, {args.workers} workers x {args.threads} "
        f"threads, max_requests {args.max_requests} +- {args.max_requests_jitter}; PostgreSQL, moto"
    )
    print("faults injected: " + ", ".join(f"{k}: {v}" for k, v in sorted(tally.faults.items())))
    print(
        f"client: {sum(tally.statuses.values())} API responses "
        f"({', '.join(f'{s}: {n}' for s, n in sorted(tally.statuses.items()))}), "
        f"{sum(tally.store_statuses.values())} store responses "
        f"({', '.join(f'{s}: {n}' for s, n in sorted(tally.store_statuses.items()))}), "
        f"{tally.connection_errors} connection errors/timeouts ({len(unexplained)} not explained by a kill), "
        f"{tally.retries} retries"
    )
    print(
        f"server: worker restarts (max_requests) {server['worker_restarts']}, SIGKILLed workers reaped "
        f"{server['workers_killed_seen']}, workers booted {server['workers_booted']}, master alive "
        f"{server['master_alive']}, 'Unhandled exception' {server['unhandled']}, worker timeouts "
        f"{server['worker_timeouts']}, /metrics advanced_notes_workers {server['workers_gauge']} "
        f"(configured {server['workers_configured']}); log {server['log']}"
    )
    for name, value in counts.items():
        print(f"  {name}: {value}")
    for error in errors[:5]:
        print("  flow error:", error[:300])
    for what in unexplained[:5]:
        print("  unexplained connection error:", what)
    for failure in failures:
        print("  server:", failure)
    failed = sum(v for k, v in counts.items() if k.startswith("must be 0"))
    print("invariants: " + ("all hold" if not failed else f"{failed} violation(s)"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Chaos run of the processing stage: uploads, killed worker children, a restarted broker.

The stack of bench/stack.py (PostgreSQL, moto's server, gunicorn on loopback) plus a Redis
broker of this run's own (``redis-server --port <free port> --save '' --appendonly no``:
nothing survives its restart; the shared Redis on 6379 is never touched), two Celery
workers (``--pool prefork -c 1`` each, as in production) and the relay (``celery beat``).
``--uploads`` clients' uploads (every fixture of ../shared/fixtures/audio in turn) go
through create, PUT, complete; a few ready clips are deleted at once (a delete racing its
processing) and a few have their object replaced by garbage once ready (the engine must
refuse it: ``failed``, the worker alive). Meanwhile the script SIGKILLs a worker's pool
child ``--kills`` times, each mid-job (the child holds a file of its job's work folder
open), and restarts the broker once (SIGKILL, then a new, empty Redis on the same port:
every queued message is lost).

Then it waits until every ready clip's processing is ``done`` (or ``failed`` for input the
engine refuses) and checks:

1. every ready clip was processed (none left queued or running; no ``failed`` for a
   reason other than the input's: not ``worker_lost`` or ``store_unavailable``);
2. every ready clip's original is still in the bucket (failed ones too); each derived
   object of a done clip exists exactly at its key (``derived_key`` of the
   original's key), with the size the clip's ``processing`` records;
3. no derived object under the prefix without its clip (listing the bucket), and none of
   a deleted clip;
4. how many times jobs ran: ``processing_jobs.attempts`` (claims that ran the engine or
   found the clip gone) and the workers' task outcomes from their logs.

Short limits make recovery quick: ``PROCESSING_TIME_LIMIT_SECONDS`` (the lease a killed
run holds is this + 45 s) and ``PROCESSING_REPUBLISH_SECONDS`` (how soon the relay sends a
lost message again). Figures depend on the machine and its load; this is not a CI test.

    .venv/bin/python bench/chaos_processing.py [--uploads 200 --concurrency 4 --kills 4 --seed 1]

Exit status 0 only when every check holds.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import jwt
import psutil
import requests

sys.path[:0] = [
    str(Path(__file__).resolve().parent),
    str(Path(__file__).resolve().parent / "perf"),
    str(Path(__file__).resolve().parents[1]),
]
import pgutil
from procs import Child, free_port
from stack import BIN, JWT_SECRET, Stack, running_stack

from advanced_notes.domain.keys import DERIVED_NAMES, clip_id_from_key, derived_key
from testkit.paths import FIXTURES as AUDIO_FIXTURES

#: File extension -> the type a client declares (the API's own table, for the fixtures).
MIME = {
    "m4a": "audio/mp4",
    "mp3": "audio/mpeg",
    "ogg": "audio/ogg",
    "wav": "audio/wav",
    "webm": "audio/webm",
    "flac": "audio/flac",
}
#: Fixtures uploaded in turn: every decodable one, and two that complete rejects.
FIXTURES = ("note.flac", "note.m4a", "note.mp3", "note.ogg", "note.wav", "note.webm", "truncated.m4a")
OWNERS = [f"chaos-proc-{n}" for n in range(8)]
#: Failure reasons that are the input's fault (the engine refused the file).
INPUT_REASONS = {"not_audio", "corrupt", "too_long", "ffmpeg_error"}
UNFINISHED = ("queued", "running")
CELERY_APP = "advanced_notes.worker.celery_app"
OUTCOME_RE = re.compile(r"process_clip\[[^\]]+\] succeeded in ([\d.]+)s: '(\w+)'")
#: Processing settings of the run (seconds): short, so a killed run's lease ends soon.
PROCESSING_ENV = {
    "PROCESSING_TIME_LIMIT_SECONDS": "20",
    "PROCESSING_REPUBLISH_SECONDS": "15",
    "PROCESSING_RELAY_INTERVAL_SECONDS": "1",
    "PROCESSING_QUEUE": "chaos-processing",
    "RATELIMIT_DEFAULT": "1000000 per minute",
    "MAX_PENDING_UPLOADS_PER_OWNER": "0",
}


def redis_ping(port: int, timeout: float = 0.5) -> bool:
    """True when a Redis answers PING on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class Broker:
    """A Redis of this run's own, on a free port; :meth:`restart` loses every message."""

    def __init__(self, stack: Stack):
        self.stack = stack
        self.port = free_port()
        self.child: Child | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.child = self.stack.children.start(f"redis-{self.starts}", argv)
        self.starts += 1
        deadline = time.monotonic() + 10
        while not redis_ping(self.port):
            if time.monotonic() > deadline or self.child.proc.poll() is not None:
                raise RuntimeError(f"redis-server did not start:\n{self.child.log_tail()}")
            time.sleep(0.05)

    def queue_length(self, queue: str) -> int | None:
        """``LLEN queue``: the messages waiting in the broker (None if it does not answer)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(f"LLEN {queue}\r\n".encode())
                answer = sock.recv(64)
        except OSError:
            return None
        return int(answer[1:].split(b"\r\n", 1)[0]) if answer.startswith(b":") else None

    def restart(self, down_seconds: float) -> None:
        """SIGKILL the broker, wait ``down_seconds``, start an empty one on the same port."""
        assert self.child is not None
        self.child.proc.send_signal(signal.SIGKILL)
        self.child.proc.wait(10)
        time.sleep(down_seconds)
        self.start()


def celery_env(stack: Stack, broker: Broker, **extra: str) -> dict[str, str]:
    """The workers' environment: the app's settings, the broker, the run's processing limits."""
    return {**stack.env, **PROCESSING_ENV, "PROCESSING_BROKER_URL": broker.url, **extra}


def start_worker(stack: Stack, env: dict[str, str], name: str, app: str = CELERY_APP) -> Child:
    """``celery worker --pool prefork -c 1`` (INFO: one line per task and its outcome)."""
    argv = [str(BIN / "celery"), "-A", app, "worker", "--pool", "prefork", "--concurrency", "1"]
    argv += ["-n", f"{name}@%h", "-Q", env["PROCESSING_QUEUE"], "--loglevel", "INFO", "--without-gossip"]
    argv += ["--without-mingle"]
    return stack.children.start(name, argv, env=env, cwd=stack.children.log_dir)


def start_beat(stack: Stack, env: dict[str, str]) -> Child:
    """``celery beat``: the relay every ``PROCESSING_RELAY_INTERVAL_SECONDS``."""
    schedule = stack.children.log_dir / "beat-schedule"
    argv = [str(BIN / "celery"), "-A", CELERY_APP, "beat", "--schedule", str(schedule), "--loglevel", "WARNING"]
    return stack.children.start("beat", argv, env=env, cwd=stack.children.log_dir)


def token(owner: str) -> str:
    return jwt.encode({"sub": owner, "exp": int(time.time()) + 6 * 3600}, JWT_SECRET, algorithm="HS256")


@dataclass
class Upload:
    fixture: str
    owner: str
    clip_id: str | None = None
    status: str | None = None  # the clip's status after complete
    deleted: bool = False
    spoiled: bool = False  # its object was replaced by bytes no decoder takes, once ready
    ready_at: float | None = None  # time.monotonic() when complete answered ready


#: What replaces a spoiled clip's object: not audio in any container FFmpeg knows.
GARBAGE = b"\x00garbage" * 64


def upload(api: str, item: Upload, delete: bool, spoil: Any = None) -> Upload:
    """Create, PUT, complete (retrying connection errors and 429/503); then maybe delete the
    clip, or (``spoil``: a callable taking the storage key) replace its object with garbage."""
    path = AUDIO_FIXTURES / item.fixture
    data = path.read_bytes()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token(item.owner)}"

    def call(method: str, url: str, **kw) -> requests.Response:
        for attempt in range(30):
            try:
                response = session.request(method, url, timeout=30, **kw)
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.2 * (attempt + 1))
                continue
            if response.status_code not in (429, 502, 503, 504):
                return response
            time.sleep(0.2 * (attempt + 1))
        raise RuntimeError(f"{method} {url}: no answer after 30 attempts")

    mime = MIME[item.fixture.rsplit(".", 1)[1]]
    created = call("POST", f"{api}/api/audio-clips", json={"mime_type": mime, "bytes": len(data)})
    created.raise_for_status()
    body = created.json()
    item.clip_id = body["clip"]["id"]
    put = requests.put(body["upload"]["url"], data=data, headers=body["upload"]["headers"], timeout=30)
    put.raise_for_status()
    done = call("POST", f"{api}/api/audio-clips/{item.clip_id}/complete")
    item.status = done.json()["clip"]["status"] if done.status_code == 200 else f"http {done.status_code}"
    if item.status == "ready":
        item.ready_at = time.monotonic()
        if spoil is not None and not delete:
            # As if the bucket's copy were swapped after complete verified it (a store-side
            # write): the engine must refuse it, fail the clip, and keep the worker alive.
            spoil(done.json()["clip"]["storage_key"])
            item.spoiled = True
        if delete:
            answer = call("DELETE", f"{api}/api/audio-clips/{item.clip_id}")
            item.deleted = answer.status_code == 204
    return item


@dataclass
class Chaos:
    """What the chaos thread did."""

    kills: list[dict] = field(default_factory=list)  # {"worker", "pid", "running_jobs", "at"}
    broker_restarts: int = 0
    #: Messages waiting in the broker when it was killed (lost with it).
    messages_lost: list[int | None] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def running_jobs(dbname: str) -> int:
    with pgutil.connect(dbname) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM audio_clips WHERE processing_status = 'running'")
        return int(cur.fetchone()[0])


def pool_children(worker: Child) -> list[psutil.Process]:
    """The worker's pool processes (children of its main process)."""
    try:
        return psutil.Process(worker.pid).children()
    except psutil.NoSuchProcess:
        return []


#: The runner's work folders (``tempfile.TemporaryDirectory(prefix=...)`` in services/processing_runner.py).
WORKDIR_MARK = "an-processing-"


def busy_child(workers: list[Child], rng: random.Random) -> tuple[Child, psutil.Process] | None:
    """A (worker, pool child) whose child is running a job now, or None."""
    for worker in rng.sample(workers, len(workers)):
        for child in pool_children(worker):
            try:
                if any(WORKDIR_MARK in f.path for f in child.open_files()):
                    return worker, child
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
    return None


def chaos_loop(
    stack: Stack, broker: Broker, workers: list[Child], kills: int, stop: threading.Event, rng: random.Random
) -> Chaos:
    """Kill ``kills`` pool children mid-job at random moments; restart the broker once, halfway."""
    chaos = Chaos()
    restart_after = max(kills // 2, 1)
    while not stop.is_set() and (len(chaos.kills) < kills or not chaos.broker_restarts):
        if stop.wait(rng.uniform(2.0, 6.0)):
            break
        if len(chaos.kills) >= restart_after and not chaos.broker_restarts:
            try:
                chaos.messages_lost.append(broker.queue_length(PROCESSING_ENV["PROCESSING_QUEUE"]))
                broker.restart(down_seconds=2.0)
                chaos.broker_restarts += 1
            except Exception as exc:
                chaos.errors.append(f"broker restart: {exc!r}")
            continue
        if len(chaos.kills) >= kills:
            continue
        # Wait (a little) for a pool child to be mid-job: it holds a file open in the
        # runner's work folder (the original it downloads, or the engine's outputs).
        deadline = time.monotonic() + 10
        found = None
        while found is None and time.monotonic() < deadline and not stop.is_set():
            found = busy_child(workers, rng)
            if found is None:
                time.sleep(0.01)
        if found is None:
            continue
        worker, victim = found
        running = running_jobs(stack.dbname)
        try:
            victim.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            continue
        chaos.kills.append({"worker": worker.name, "pid": victim.pid, "running_jobs": running, "mid_job": True})
    return chaos


def _rows_by_id(dbname: str, query: str) -> dict[str, dict]:
    """The rows of ``query`` keyed by their first column (as text), each as {column: value}."""
    with pgutil.connect(dbname) as conn, conn.cursor() as cur:
        cur.execute(query)
        names = [column.name for column in cur.description][1:]
        return {str(row[0]): dict(zip(names, row[1:], strict=True)) for row in cur.fetchall()}


def clip_rows(dbname: str) -> dict[str, dict]:
    return _rows_by_id(dbname, "SELECT id, storage_key, status, processing_status, processing FROM audio_clips")


def job_rows(dbname: str) -> dict[str, dict]:
    columns = "clip_id, attempts, next_attempt_at, lease_until, last_error"
    return _rows_by_id(dbname, f"SELECT {columns} FROM processing_jobs")


def wait_drained(dbname: str, timeout: float) -> tuple[bool, float]:
    """Wait until no ready clip is queued or running; (drained?, seconds waited)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        rows = clip_rows(dbname)
        pending = [
            r for r in rows.values() if r["status"] == "ready" and r["processing_status"] in ("queued", "running")
        ]
        if not pending:
            return True, time.monotonic() - started
        time.sleep(1.0)
    return False, time.monotonic() - started


def s3_client(stack: Stack) -> Any:
    """A boto3 client of the run's bucket (the store directly, as the app sees it)."""
    return boto3.client(
        "s3",
        endpoint_url=stack.store,
        region_name="us-east-1",
        aws_access_key_id=stack.env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=stack.env["AWS_SECRET_ACCESS_KEY"],
    )


def list_bucket(stack: Stack) -> dict[str, int]:
    """Every object in the bucket: key -> size."""
    s3 = s3_client(stack)
    objects: dict[str, int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=stack.env["S3_BUCKET"]):
        for item in page.get("Contents", []):
            objects[item["Key"]] = item["Size"]
    return objects


def expected_derived(row: dict) -> dict[str, int]:
    """The derived keys a done clip's ``processing`` records, with their sizes (None: unknown)."""
    processing = json.loads(row["processing"] or "{}")
    expected: dict[str, int] = {}
    for rendition in (processing.get("renditions") or {}).values():
        expected[rendition["key"]] = rendition.get("bytes")
    peaks = processing.get("peaks")
    if peaks:
        expected[peaks["key"]] = peaks.get("bytes")
    return expected


def check(stack: Stack, uploads: list[Upload]) -> tuple[dict, list[str]]:
    """The checks of the module docstring: (figures, failures)."""
    rows, jobs, objects = clip_rows(stack.dbname), job_rows(stack.dbname), list_bucket(stack)
    failures: list[str] = []
    figures: dict = {}
    ready = {cid: r for cid, r in rows.items() if r["status"] == "ready"}
    outcome = collections.Counter(r["processing_status"] for r in ready.values())
    figures["clips_ready"] = len(ready)
    figures["processing"] = dict(outcome)
    reasons = collections.Counter(
        (json.loads(r["processing"] or "{}").get("reason") or {}).get("code")
        for r in ready.values()
        if r["processing_status"] == "failed"
    )
    figures["failed_reasons"] = dict(reasons)
    unprocessed = [cid for cid, r in ready.items() if r["processing_status"] not in ("done", "failed")]
    if unprocessed:
        failures.append(f"{len(unprocessed)} ready clips not processed, e.g. {unprocessed[:3]}")
    bad_failures = {code: n for code, n in reasons.items() if code not in INPUT_REASONS}
    if bad_failures:
        failures.append(f"clips failed for reasons that are not the input's: {bad_failures}")

    # 2. every ready clip's original is kept; each derived object of a done clip exists
    # exactly at its key, with its size
    originals_missing = [r["storage_key"] for r in ready.values() if r["storage_key"] not in objects]
    figures["ready_originals_in_bucket"] = len(ready) - len(originals_missing)
    if originals_missing:
        failures.append(f"{len(originals_missing)} originals of ready clips missing, e.g. {originals_missing[:3]}")
    missing, wrong_key, wrong_size, derived_expected = [], [], [], 0
    for row in ready.values():
        if row["processing_status"] != "done":
            continue
        for key, size in expected_derived(row).items():
            derived_expected += 1
            name = key.rsplit("/", 1)[-1]
            if name not in DERIVED_NAMES or key != derived_key(row["storage_key"], name):
                wrong_key.append(key)
            if key not in objects:
                missing.append(key)
            elif size is not None and objects[key] != size:
                wrong_size.append((key, objects[key], size))
    figures["derived_objects_expected"] = derived_expected
    for label, found in (("missing", missing), ("at a wrong key", wrong_key), ("of a wrong size", wrong_size)):
        if found:
            failures.append(f"{len(found)} derived objects {label}, e.g. {found[:3]}")

    # 3. no derived object without its (ready, done) clip; nothing of a deleted clip
    strays, unlisted = [], []
    derived_in_bucket = 0
    for key in objects:
        if "audio-clips/" not in key or key.rsplit("/", 1)[-1] not in DERIVED_NAMES:
            continue
        derived_in_bucket += 1
        folder = key[: key.index("audio-clips/") + len("audio-clips/")]
        clip_id = clip_id_from_key(folder, key)
        row = rows.get(str(clip_id)) if clip_id else None
        if row is None or row["status"] != "ready":
            strays.append(key)
        elif key not in expected_derived(row):
            unlisted.append(key)
    figures["derived_objects_in_bucket"] = derived_in_bucket
    deleted_ids = {u.clip_id for u in uploads if u.deleted}
    left_of_deleted = [k for k in objects if any(d and d in k for d in deleted_ids)]
    figures["deleted_clips"] = len(deleted_ids)
    spoiled = [rows.get(u.clip_id or "", {}).get("processing_status") for u in uploads if u.spoiled]
    # A spoiled clip may be processed before its object is swapped: then it is done.
    figures["spoiled_clips_by_processing_status"] = dict(collections.Counter(spoiled))
    figures["objects_left_of_deleted_clips"] = len(left_of_deleted)
    if strays:
        failures.append(f"{len(strays)} derived objects without their clip, e.g. {strays[:3]}")
    if unlisted:
        failures.append(f"{len(unlisted)} derived objects their clip does not list, e.g. {unlisted[:3]}")
    if left_of_deleted:
        failures.append(f"{len(left_of_deleted)} objects of deleted clips remain, e.g. {left_of_deleted[:3]}")

    # 4. how many times jobs ran
    attempts = collections.Counter(j["attempts"] for cid, j in jobs.items() if cid in ready)
    figures["job_attempts_histogram"] = dict(sorted(attempts.items()))
    figures["job_runs_total"] = sum(n * count for n, count in attempts.items())
    figures["jobs_still_due"] = sum(1 for j in jobs.values() if j["next_attempt_at"] is not None)
    return figures, failures


def worker_outcomes(workers: list[Child]) -> dict:
    """Task outcomes and lost children, read from the workers' logs."""
    outcomes: collections.Counter = collections.Counter()
    seconds: list[float] = []
    lost = 0
    for worker in workers:
        text = worker.log.read_text(errors="replace")
        for took, outcome in OUTCOME_RE.findall(text):
            outcomes[outcome] += 1
            if outcome == "done":
                seconds.append(float(took))
        lost += text.count("WorkerLostError")
    seconds.sort()
    return {
        "task_outcomes": dict(outcomes),
        "worker_lost_error_log_lines": lost,
        "done_task_seconds_p50": round(seconds[len(seconds) // 2], 3) if seconds else None,
        "done_task_seconds_max": round(seconds[-1], 3) if seconds else None,
    }


@contextmanager
def processing_stack(
    name: str, workers: int = 2, app: str = CELERY_APP
) -> Iterator[tuple[Stack, Broker, list[Child], Child]]:
    """The stack, its own Redis broker, ``workers`` Celery workers (of ``app``) and the relay (beat)."""
    with running_stack(name, workers=2, threads=4, max_requests=0, extra_env=dict(PROCESSING_ENV)) as stack:
        broker = Broker(stack)
        broker.start()
        env = celery_env(stack, broker)
        env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])  # for bench.timed_worker
        children = [start_worker(stack, env, f"worker{n + 1}", app) for n in range(workers)]
        beat = start_beat(stack, env)
        yield stack, broker, children, beat


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--kills", type=int, default=4, help="worker children SIGKILLed mid-job")
    parser.add_argument("--delete-share", type=float, default=0.05, help="share of ready clips deleted at once")
    parser.add_argument(
        "--spoil-share", type=float, default=0.03, help="share of ready clips whose object becomes undecodable"
    )
    parser.add_argument("--drain-timeout", type=float, default=600.0, help="seconds to wait for processing")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    with processing_stack("chaos_processing") as (stack, broker, workers, beat):
        print(f"stack: API {stack.api}, store {stack.store}, broker {broker.url}, logs {stack.children.log_dir}")
        items = [Upload(FIXTURES[n % len(FIXTURES)], OWNERS[n % len(OWNERS)]) for n in range(args.uploads)]
        deletes = {n for n in range(args.uploads) if rng.random() < args.delete_share}
        spoils = {n for n in range(args.uploads) if rng.random() < args.spoil_share}
        s3, bucket = s3_client(stack), stack.env["S3_BUCKET"]

        def spoil(key: str) -> None:
            s3.put_object(Bucket=bucket, Key=key, Body=GARBAGE, ContentType="audio/wav")

        def one(n: int) -> Upload:
            return upload(stack.api, items[n], n in deletes, spoil if n in spoils else None)

        stop = threading.Event()
        started = time.monotonic()
        with ThreadPoolExecutor(1) as chaos_pool:
            chaos_future = chaos_pool.submit(
                chaos_loop, stack, broker, workers, args.kills, stop, random.Random(args.seed)
            )
            with ThreadPoolExecutor(args.concurrency) as pool:
                done = list(pool.map(one, range(args.uploads)))
            uploaded_s = time.monotonic() - started
            # The chaos goes on until its kills and the restart are done (the queue may still be busy).
            chaos_deadline = time.monotonic() + 120
            while not chaos_future.done() and time.monotonic() < chaos_deadline:
                time.sleep(0.5)
            stop.set()
            chaos = chaos_future.result()
        drained, waited = wait_drained(stack.dbname, args.drain_timeout)
        total_s = time.monotonic() - started
        figures, failures = check(stack, done)
        logs = worker_outcomes(workers)
        alive = {w.name: w.proc.poll() is None for w in [*workers, beat]}

    statuses = collections.Counter(u.status for u in done)
    report = {
        "uploads": args.uploads,
        "concurrency": args.concurrency,
        "complete_answers": dict(statuses),
        "uploads_seconds": round(uploaded_s, 1),
        "kills": len(chaos.kills),
        # Each kill hit a child holding a file of its job open; its job shows a second attempt.
        "kills_mid_job": sum(1 for k in chaos.kills if k["mid_job"]),
        "broker_restarts": chaos.broker_restarts,
        "messages_in_the_killed_broker": chaos.messages_lost,
        "chaos_errors": chaos.errors,
        "drained": drained,
        "drain_wait_seconds_after_chaos": round(waited, 1),
        "total_seconds": round(total_s, 1),
        **figures,
        **logs,
        "processes_alive_at_end": alive,
    }
    if not drained:
        failures.append(f"processing did not drain within {args.drain_timeout:.0f} s")
    if not all(alive.values()):
        failures.append(f"a worker or beat died: {alive}")
    print(json.dumps(report, indent=2, default=str))
    print("RESULT:", "PASS" if not failures else "FAIL")
    for failure in failures:
        print("  -", failure)
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())

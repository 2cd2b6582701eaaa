"""Latency of the processing stage at idle: from ``ready`` to ``processing.status == done``.

The stack of bench/chaos_processing.py (PostgreSQL, moto's server, gunicorn, a Redis broker
of its own, the relay as ``celery beat`` every second) with ONE worker (``--pool prefork
-c 1``) and nothing else to do. A 5-minute note is made from the spoken fixture with
ffmpeg (bench/processing.py's ``make_input``: a streamed Opus WebM as MediaRecorder writes
it, and an MP3), uploaded through create, PUT and complete; the clock starts when
complete answers ``ready`` and stops when the database shows ``done`` (read every 20 ms).

Printed beside it, per run: the worker's task time (Celery's "succeeded in" line:
download, engine, uploads, the final transaction) and the engine's own time in that task
(the transcode time: the worker runs as ``bench.timed_worker``, the same app with its
engine call timed), both measured in the same run under the same load. A short clip is
processed first, so the worker child has built its services (warm, as in production). The stage's own cost is
``ready->done`` minus the engine's time: the relay's tick (up to
``PROCESSING_RELAY_INTERVAL_SECONDS``), the broker hop, the download and the uploads.
The target is at most 2 s plus the transcode time.

    .venv/bin/python bench/processing_latency.py [--minutes 5 --kinds webm mp3 --runs 3]

Needs Debian's ffmpeg and redis-server. Figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
from chaos_processing import MIME, pgutil, processing_stack, token

from bench.processing import make_input
from testkit.paths import FIXTURES as AUDIO_FIXTURES

OWNER = "latency-user"
POLL_SECONDS = 0.02
ENGINE_RE = re.compile(r"ENGINE_SECONDS ([\d.]+)")
TASK_RE = re.compile(r"process_clip\[[^\]]+\] succeeded in ([\d.]+)s: 'done'")


def processing_status(dbname: str, clip_id: str) -> str | None:
    with pgutil.connect(dbname) as conn, conn.cursor() as cur:
        cur.execute("SELECT processing_status FROM audio_clips WHERE id = %s", (clip_id,))
        row = cur.fetchone()
        return row[0] if row else None


def upload_ready(api: str, path: Path) -> tuple[str, float]:
    """Create, PUT, complete ``path``; (clip id, time.monotonic() when complete answered ready)."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token(OWNER)}"
    data = path.read_bytes()
    created = session.post(
        f"{api}/api/audio-clips", json={"mime_type": MIME[path.suffix[1:]], "bytes": len(data)}, timeout=30
    )
    created.raise_for_status()
    body = created.json()
    clip_id = body["clip"]["id"]
    requests.put(body["upload"]["url"], data=data, headers=body["upload"]["headers"], timeout=120).raise_for_status()
    done = session.post(f"{api}/api/audio-clips/{clip_id}/complete", timeout=120)
    ready_at = time.monotonic()
    done.raise_for_status()
    assert done.json()["clip"]["status"] == "ready", done.text
    return clip_id, ready_at


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=int, default=5)
    parser.add_argument("--kinds", nargs="+", default=["webm", "mp3"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for one clip")
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp,
        processing_stack("latency", workers=1, app="bench.timed_worker") as (
            stack,
            _broker,
            workers,
            _beat,
        ),
    ):
        worker_log = workers[0].log
        # One short clip first: the worker child's first job builds its services (pool, client).
        warm_id, _ = upload_ready(stack.api, AUDIO_FIXTURES / "note.ogg")
        while processing_status(stack.dbname, warm_id) not in ("done", "failed"):
            time.sleep(0.1)
        print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        print("input          run  ready->done_s  queue_s  task_s  engine_s  overhead_s  target_s")
        overheads: list[float] = []
        queues: list[float] = []
        for kind in args.kinds:
            source = make_input(Path(tmp), args.minutes, kind)
            for n in range(1, args.runs + 1):
                seen = len(TASK_RE.findall(worker_log.read_text(errors="replace")))
                clip_id, ready_at = upload_ready(stack.api, source)
                deadline = ready_at + args.timeout
                status = None
                while time.monotonic() < deadline:
                    status = processing_status(stack.dbname, clip_id)
                    if status in ("done", "failed"):
                        break
                    time.sleep(POLL_SECONDS)
                latency = time.monotonic() - ready_at
                if status != "done":
                    raise SystemExit(f"{source.name}: processing ended {status!r} after {latency:.1f} s")
                # The task's own line follows the commit by a moment.
                tasks: list[str] = []
                while time.monotonic() < deadline and len(tasks) <= seen:
                    tasks = TASK_RE.findall(worker_log.read_text(errors="replace"))
                    time.sleep(0.05)
                task_s = float(tasks[-1]) if len(tasks) > seen else float("nan")
                engine_s = float(ENGINE_RE.findall(worker_log.read_text(errors="replace"))[-1])
                overhead, queue = latency - engine_s, latency - task_s
                overheads.append(overhead)
                queues.append(queue)
                print(
                    f"{source.name:<14} {n:>3}  {latency:>13.2f}  {queue:>7.2f}  {task_s:>6.2f}  {engine_s:>8.2f}"
                    f"  {overhead:>10.2f}  {2 + engine_s:>8.2f}"
                )
        print(f"overhead (ready->done - engine) median {statistics.median(overheads):.2f} s, max {max(overheads):.2f}")
        print(f"queue (ready->done - task) median {statistics.median(queues):.2f} s, max {max(queues):.2f} s")
        print("target: ready->done <= 2 s + engine_s (target_s)")
        print("queue_s: relay tick + broker hop + the worker's claim, before the task starts (and its commit seen)")
        print("task_s: the worker's task (Celery's 'succeeded in'): download, engine, uploads, final transaction")
        print("engine_s: the engine's call inside that task (bench/timed_worker.py): the transcode time")


if __name__ == "__main__":
    main()

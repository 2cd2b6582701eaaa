"""A warm web worker's memory under gunicorn, on its own (a few minutes less than run.py).

    .venv/bin/python bench/perf/worker_rss.py                  # 4 sync workers, 200 rounds
    .venv/bin/python bench/perf/worker_rss.py --workers 2 --rounds 100

The service as in production and as run.py serves it (``gunicorn wsgi:app`` on a fresh
PostgreSQL database ``an_perf_<run id>_rss`` and moto's S3 server, the same settings as
run.py's), then every route a client uses, ``--rounds`` times from 8 threads so that
every worker serves each kind: create, the PUT of the real ``note.m4a`` to its URL,
complete, playback, note audio, list, health, metrics. Then it prints each worker's RSS
and USS (MiB) and the largest RSS against the target (report.py's
``WORKER_RSS_TARGET_MIB``). Everything it started is stopped, and the database dropped.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import footprint
import report
import seed
from procs import free_port, wait_for_http
from run import REPO_DIR, VENV_BIN, Run, parse_plan


def call(base: str, method: str, path: str, token: str | None = None, body: Any = None) -> tuple[int, Any]:
    """One HTTP request to the service; returns (status, JSON body or None)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None
    if body is not None:
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, None


def one_round(base: str, token: str, index: int, audio: bytes) -> list[int]:
    """Every route a client uses, once; returns the statuses in order."""
    note = f"rss-note-{index}"
    body = {"mime_type": seed.FIXTURE_MIME, "bytes": len(audio), "note_id": note}
    status, created = call(base, "POST", "/api/audio-clips", token, body)
    statuses = [status]
    if status != 201:
        return statuses
    upload, clip_id = created["upload"], created["clip"]["id"]
    put = urllib.request.Request(upload["url"], data=audio, method="PUT", headers=upload["headers"])
    with urllib.request.urlopen(put, timeout=30) as response:
        statuses.append(response.status)
    for method, path in (
        ("POST", f"/api/audio-clips/{clip_id}/complete"),
        ("GET", f"/api/audio-clips/{clip_id}/playback"),
        ("GET", f"/api/notes/{quote(note, safe='')}/audio"),
        ("GET", "/api/audio-clips?limit=20"),
        ("GET", "/healthz"),
        ("GET", "/metrics"),
    ):
        statuses.append(call(base, method, path, token)[0])
    return statuses


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers (default 4, as run.py)")
    parser.add_argument("--rounds", type=int, default=200, help="rounds of every route (default 200)")
    args = parser.parse_args(argv)
    raw_dir = Path(tempfile.mkdtemp(prefix="an-rss-"))
    run = Run(parse_plan(["--quick", "--raw-dir", str(raw_dir), "--workers", str(args.workers)]))
    try:
        run.start_store()
        env = run.service_env(run.new_database("rss"))
        port = free_port()
        server = run.children.start(
            "gunicorn-rss",
            [
                str(VENV_BIN / "gunicorn"),
                *("--workers", str(args.workers), "--worker-class", "sync", "--log-level", "warning"),
                *("--bind", f"127.0.0.1:{port}", "--chdir", str(REPO_DIR), "wsgi:app"),
            ],
            env,
        )
        base = f"http://127.0.0.1:{port}"
        wait_for_http(base + "/healthz", server)
        audio = seed.FIXTURE.read_bytes()
        with ThreadPoolExecutor(8) as pool:
            rounds = list(pool.map(lambda i: one_round(base, run.token(f"rss-{i % 16}"), i, audio), range(args.rounds)))
        expected = [201, 200, 200, 200, 200, 200, 200, 200]
        failed = sum(statuses != expected for statuses in rounds)
        workers = footprint.worker_memory(server.pid)
        for worker in sorted(workers, key=lambda w: w["pid"]):
            print(f"worker {worker['pid']}: RSS {worker['rss_mib']:.1f} MiB, USS {worker['uss_mib']:.1f} MiB")
        largest = max(w["rss_mib"] for w in workers)
        target = report.WORKER_RSS_TARGET_MIB
        verdict = "within" if largest <= target else "over"
        print(f"largest warm worker RSS: {largest:.1f} MiB ({verdict} the {target} MiB target)")
        print(f"{args.rounds} rounds of {len(expected)} requests, {failed} with an unexpected status")
        return 1 if failed else 0
    finally:
        run.cleanup()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

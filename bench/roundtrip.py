"""Round-trip cost of create -> PUT -> complete -> playback over real HTTP on loopback.

Starts moto's threaded S3 server and the app (werkzeug, threaded) on loopback ports,
then runs N sequential round trips with ``requests`` and prints per-step and total
latency percentiles in ms. The database is a fresh SQLite file, or PostgreSQL when
BENCH_DATABASE_URL names an existing, migrated-or-empty database.

    .venv/bin/python -m bench.roundtrip [--rounds 200] [--file ../shared/fixtures/audio/note.m4a]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import requests

from testkit.loopback import Loopback, serving

STEPS = ("create", "put", "complete", "playback", "total")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--file", default=str(Path(__file__).resolve().parents[2] / "shared/fixtures/audio/note.m4a"))
    args = parser.parse_args()

    database_url = os.environ.get("BENCH_DATABASE_URL")
    with serving(database_url) as service:
        measure(service, Path(args.file).read_bytes(), args.rounds, (database_url or "sqlite").split(":", 1)[0])


def measure(service: Loopback, data: bytes, rounds: int, backend: str) -> None:
    """Run ``rounds`` sequential round trips of ``data`` and print the percentiles."""
    base = service.base_url
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {service.token}"
    store = requests.Session()
    timings: dict[str, list[float]] = {step: [] for step in STEPS}
    for _ in range(rounds):
        t0 = time.perf_counter()
        created = api.post(f"{base}/api/audio-clips", json={"mime_type": "audio/mp4", "bytes": len(data)}).json()
        t1 = time.perf_counter()
        store.put(created["upload"]["url"], data=data, headers=created["upload"]["headers"]).raise_for_status()
        t2 = time.perf_counter()
        api.post(f"{base}/api/audio-clips/{created['clip']['id']}/complete").raise_for_status()
        t3 = time.perf_counter()
        api.get(f"{base}/api/audio-clips/{created['clip']['id']}/playback").raise_for_status()
        t4 = time.perf_counter()
        for step, ms in zip(STEPS, ((t1 - t0), (t2 - t1), (t3 - t2), (t4 - t3), (t4 - t0)), strict=True):
            timings[step].append(ms * 1000)

    print(f"round trips: {rounds}, object {len(data)} bytes, database {backend}, store moto (threaded, loopback)")
    print(f"{'step':<10}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'mean ms':>10}")
    for step in STEPS:
        values = timings[step]
        print(
            f"{step:<10}{percentile(values, 0.5):>10.2f}{percentile(values, 0.95):>10.2f}"
            f"{percentile(values, 0.99):>10.2f}{statistics.fmean(values):>10.2f}"
        )


if __name__ == "__main__":
    main()

"""The load generator: an asyncio HTTP client (aiohttp) in its own process.

    python loadgen.py PLAN.json RESULT.json

PLAN is ``{"runs": [run, ...]}``; each run is::

    {"name": "ours/playback/c16", "base_url": "http://127.0.0.1:PORT", "concurrency": 16,
     "duration_s": 6.0, "warmup_s": 1.0, "max_requests": null, "mode": "cycle", "expect": 200,
     "requests": [["GET", "/api/...", {"Authorization": "Bearer ..."}, null], ...]}

``concurrency`` workers send requests back to back (closed loop) over keep-alive
connections. ``mode`` ``cycle`` goes round the request list; ``once`` sends each
request at most once (complete: every request consumes a pending clip). Requests
started during the first ``warmup_s`` seconds are not recorded. A run ends at
``warmup_s + duration_s`` seconds, or once ``max_requests`` were recorded, or when a
``once`` list runs out; requests then in flight finish and are recorded.

RESULT holds per run: ``count``, ``errors`` (any status other than ``expect``, or a
transport error), ``status_counts``, up to 5 ``error_samples``, ``elapsed_s`` (from the
end of warm-up to the last recorded answer), ``rps``, ``latencies_ms`` (every recorded
request, milliseconds, sorted) and ``cpu_pct`` (this process's CPU use during the run,
percent of one core: near 100 means the generator, not the server, was the limit).
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from typing import Any

import aiohttp

#: Seconds one request may take before it counts as an error.
REQUEST_TIMEOUT_S = 30.0
MAX_ERROR_SAMPLES = 5


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _run_one(run: dict[str, Any]) -> dict[str, Any]:
    requests = run["requests"]
    once = run.get("mode") == "once"
    expect = int(run.get("expect", 200))
    max_requests = run.get("max_requests")
    concurrency = int(run["concurrency"])
    warmup_s, duration_s = float(run.get("warmup_s", 1.0)), float(run["duration_s"])

    latencies: list[float] = []
    status_counts: dict[str, int] = {}
    samples: list[str] = []
    state = {"next": 0, "last_done": 0.0, "recorded": 0}
    start = time.perf_counter()
    record_from = start + warmup_s
    deadline = record_from + duration_s
    cpu_at_record = None

    def next_request() -> list | None:
        i = state["next"]
        if once and i >= len(requests):
            return None
        state["next"] = i + 1
        return requests[i % len(requests)]

    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(base_url=run["base_url"], connector=connector, timeout=timeout) as session:

        async def worker() -> None:
            nonlocal cpu_at_record
            while True:
                now = time.perf_counter()
                if now >= deadline or (max_requests is not None and state["recorded"] >= max_requests):
                    return
                item = next_request()
                if item is None:
                    return
                method, path, headers, body = item
                recorded = now >= record_from
                if recorded:
                    state["recorded"] += 1
                    if cpu_at_record is None:
                        cpu_at_record = _cpu_seconds()
                t0 = time.perf_counter()
                try:
                    async with session.request(method, path, headers=headers, json=body) as response:
                        payload = await response.read()
                        status = str(response.status)
                except (TimeoutError, aiohttp.ClientError) as exc:
                    payload, status = repr(exc).encode(), "transport-error"
                t1 = time.perf_counter()
                if not recorded:
                    continue
                latencies.append((t1 - t0) * 1000.0)
                status_counts[status] = status_counts.get(status, 0) + 1
                state["last_done"] = max(state["last_done"], t1)
                if status != str(expect) and len(samples) < MAX_ERROR_SAMPLES:
                    samples.append(f"{method} {path} -> {status}: {payload[:300].decode(errors='replace')}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))

    cpu_used = _cpu_seconds() - (cpu_at_record if cpu_at_record is not None else _cpu_seconds())
    elapsed = max(state["last_done"] - record_from, 1e-9) if latencies else 0.0
    errors = sum(n for status, n in status_counts.items() if status != str(expect))
    return {
        "name": run["name"],
        "concurrency": concurrency,
        "count": len(latencies),
        "errors": errors,
        "status_counts": status_counts,
        "error_samples": samples,
        "elapsed_s": round(elapsed, 4),
        "rps": round(len(latencies) / elapsed, 2) if elapsed else 0.0,
        "latencies_ms": sorted(round(v, 4) for v in latencies),
        "cpu_pct": round(100.0 * cpu_used / elapsed, 1) if elapsed else 0.0,
    }


async def _run_all(plan: dict[str, Any]) -> list[dict[str, Any]]:
    results = []
    for run in plan["runs"]:
        # A hard bound per run, whatever the server does: the run's own time plus the
        # longest a request in flight may take.
        limit = float(run.get("warmup_s", 1.0)) + float(run["duration_s"]) + REQUEST_TIMEOUT_S + 5
        results.append(await asyncio.wait_for(_run_one(run), limit))
    return results


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        plan = json.load(f)
    results = asyncio.run(_run_all(plan))
    with open(argv[2], "w") as f:
        json.dump({"runs": results}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

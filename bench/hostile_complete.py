"""What a complete of crafted audio costs: wall time, CPU time, RSS growth; and 8 at once vs 1.

Each crafted file of testkit/crafted_audio.py (cheap to store, costly to parse) is
uploaded through a presigned PUT to moto's threaded server and completed over real HTTP on
loopback (``testkit.loopback``: app, moto and SQLite in this process), each case in a fresh
process so RSS figures do not mix. Then one crafted clip is completed by 8 concurrent
requests, against one request for another clip of the same bytes: wall time, answers,
and verifications run (ranged GETs of the object's first block, one per verification).

CPU time is the process's (the app's request thread, moto and the client together);
RSS is the process's resident set (``/proc/self/status`` VmRSS) before and after the
complete, and the growth of its peak (``ru_maxrss``).

    .venv/bin/python -m bench.hostile_complete [--bytes N] [--only crafted.flac ...]
        [--concurrent-case crafted.flac] [--concurrency 8]

Runs against whatever ``advanced_notes`` is importable first (run it from another
checkout, with this file and testkit/crafted_audio.py copied in, to measure that
code); the first line says which.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import threading
import time
from collections import Counter
from typing import Any

import requests

import advanced_notes
from advanced_notes.adapters.storage import S3Storage
from testkit.crafted_audio import BUILDERS, DEFAULT_BYTES
from testkit.loopback import Loopback, serving


def rss_mib() -> float:
    """The resident set of this process now, MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


FIRST_BLOCKS: Counter = Counter()
_LOCK = threading.Lock()


def count_verifications() -> None:
    """Count ranged GETs from byte 0 per key (every verification sniffs the first block)."""
    original = S3Storage.get_range

    def counting(self: S3Storage, key: str, start: int, end: int) -> bytes:
        if start == 0:
            with _LOCK:
                FIRST_BLOCKS[key] += 1
        return original(self, key, start, end)

    S3Storage.get_range = counting  # type: ignore[method-assign]


def upload(service: Loopback, api: requests.Session, data: bytes, mime_type: str) -> dict[str, Any]:
    created = api.post(f"{service.base_url}/api/audio-clips", json={"mime_type": mime_type, "bytes": len(data)}).json()
    requests.put(created["upload"]["url"], data=data, headers=created["upload"]["headers"]).raise_for_status()
    return created


def answer(response: requests.Response) -> str:
    body = response.json()
    if "error" in body:
        reason = (body["error"].get("details") or {}).get("reason")
        return f"{response.status_code} {body['error']['code']}" + (f"/{reason}" if reason else "")
    return f"{response.status_code} {body['clip']['status']}"


def one_case(name: str, size: int) -> dict[str, Any]:
    build, mime_type = BUILDERS[name]
    data = build(size)
    count_verifications()
    with serving(MAX_UPLOAD_BYTES=str(max(size, 104_857_600))) as service:
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {service.token}"
        created = upload(service, api, data, mime_type)
        rss0, peak0 = rss_mib(), peak_mib()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        done = api.post(f"{service.base_url}/api/audio-clips/{created['clip']['id']}/complete", timeout=900)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        return {
            "case": name,
            "bytes": len(data),
            "answer": answer(done),
            "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2),
            "rss_before_mib": round(rss0),
            "rss_after_mib": round(rss_mib()),
            "peak_growth_mib": round(peak_mib() - peak0),
        }


def concurrent_case(name: str, size: int, concurrency: int) -> dict[str, Any]:
    build, mime_type = BUILDERS[name]
    data = build(size)
    count_verifications()
    with serving(MAX_UPLOAD_BYTES=str(max(size, 104_857_600))) as service:
        headers = {"Authorization": f"Bearer {service.token}"}
        api = requests.Session()
        api.headers.update(headers)
        single = upload(service, api, data, mime_type)
        t0 = time.perf_counter()
        one = api.post(f"{service.base_url}/api/audio-clips/{single['clip']['id']}/complete", timeout=900)
        one_wall = time.perf_counter() - t0
        many = upload(service, api, data, mime_type)
        url = f"{service.base_url}/api/audio-clips/{many['clip']['id']}/complete"
        barrier = threading.Barrier(concurrency)
        answers: list[str] = []

        def complete() -> None:
            barrier.wait()
            answers.append(answer(requests.post(url, headers=headers, timeout=900)))

        threads = [threading.Thread(target=complete) for _ in range(concurrency)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        many_wall = time.perf_counter() - t0
        return {
            "case": name,
            "one": {
                "wall_s": round(one_wall, 2),
                "answer": answer(one),
                "verifications": FIRST_BLOCKS[single["clip"]["storage_key"]],
            },
            "concurrent": {
                "requests": concurrency,
                "wall_s": round(many_wall, 2),
                "answers": dict(Counter(answers)),
                "verifications": FIRST_BLOCKS[many["clip"]["storage_key"]],
            },
        }


def child(args: list[str]) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter; its JSON result."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.hostile_complete", *args], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bytes", type=int, default=DEFAULT_BYTES, help="size of each crafted file")
    parser.add_argument("--only", nargs="*", choices=sorted(BUILDERS), help="cases to run (default: all)")
    parser.add_argument("--concurrent-case", default="crafted.flac", choices=sorted(BUILDERS))
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, name = args.child[0], args.child[1]
        result = one_case(name, args.bytes) if kind == "one" else concurrent_case(name, args.bytes, args.concurrency)
        print(json.dumps(result))
        return
    print(f"code under test: {advanced_notes.__file__}; each case in a fresh process; SQLite, moto on loopback")
    print(f"{'case':14} {'bytes':>9} {'answer':34} {'wall s':>7} {'cpu s':>6} {'RSS MiB':>11} {'peak +MiB':>9}")
    for name in args.only or sorted(BUILDERS):
        r = child(["--bytes", str(args.bytes), "--child", "one", name])
        rss = f"{r['rss_before_mib']}->{r['rss_after_mib']}"
        print(
            f"{r['case']:14} {r['bytes']:>9} {r['answer']:34} {r['wall_s']:>7} {r['cpu_s']:>6} "
            f"{rss:>11} {r['peak_growth_mib']:>9}",
            flush=True,
        )
    sizes = ["--bytes", str(args.bytes), "--concurrency", str(args.concurrency)]
    r = child([*sizes, "--child", "concurrent", args.concurrent_case])
    print(
        f"{r['case']}: 1 complete {r['one']['wall_s']} s, {r['one']['verifications']} verification(s), "
        f"{r['one']['answer']}"
    )
    c = r["concurrent"]
    print(
        f"{r['case']}: {c['requests']} concurrent completes of one clip {c['wall_s']} s, "
        f"{c['verifications']} verification(s), answers {c['answers']}"
    )


if __name__ == "__main__":
    main()

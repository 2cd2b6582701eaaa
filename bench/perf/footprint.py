"""Footprint: gunicorn worker memory after warm-up, and the cost of starting the app.

Import and ``create_app()`` times are taken in fresh interpreters (the only way to
measure an import: a second import in the same process is a dictionary lookup),
several times, reporting the median, in milliseconds.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

import psutil

_TIMING_CODE = """
import json, time
t0 = time.perf_counter()
import advanced_notes.app
t1 = time.perf_counter()
app = advanced_notes.app.create_app()
t2 = time.perf_counter()
print(json.dumps({"import_ms": (t1 - t0) * 1000, "create_app_ms": (t2 - t1) * 1000}))
"""
_IMPORTTIME_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)")


class OtherLoad:
    """What used the CPUs during a phase (the machine is shared: absolute figures drift).

    A background thread samples every process once a second, so processes that start and
    end within the phase (another engineer's test runs) are counted too, up to their last
    sample. :meth:`stop` reports the machine's busy share (all CPUs, percent) and CPU
    seconds by owner: this run (the harness and its children), PostgreSQL (its backends
    serve this run and others alike) and everything else, with the top programs.
    """

    SAMPLE_S = 1.0

    def __init__(self) -> None:
        self._cpu0 = psutil.cpu_times()
        self._t0 = time.time()
        self._wall0 = time.monotonic()
        self._first: dict[int, float] = {}  # pid -> CPU seconds when the phase started (0 if born later)
        self._last: dict[int, tuple[str, str, float]] = {}  # pid -> (owner, program, CPU seconds)
        self._stop = threading.Event()
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="other-load", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.SAMPLE_S):
            self._sample()

    def _sample(self) -> None:
        me = psutil.Process()
        ours = {me.pid} | {p.pid for p in me.children(recursive=True)}
        for proc in psutil.process_iter(["pid", "name", "cmdline", "cpu_times", "create_time"]):
            info = proc.info
            times = info["cpu_times"]
            if times is None:
                continue
            used = times.user + times.system
            pid = info["pid"]
            if pid not in self._first:
                born_before = (info["create_time"] or 0) < self._t0
                self._first[pid] = used if born_before else 0.0
            owner = "ours" if pid in ours else ("postgres" if info["name"] == "postgres" else "other")
            if pid in self._last and self._last[pid][0] == "ours":
                owner = "ours"  # once ours, always ours (a child outlives its listing)
            self._last[pid] = (owner, _program(info["cmdline"], info["name"]), used)

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join()
        self._sample()
        cpu1, wall = psutil.cpu_times(), time.monotonic() - self._wall0
        busy0 = sum(self._cpu0) - self._cpu0.idle - getattr(self._cpu0, "iowait", 0)
        busy1 = sum(cpu1) - cpu1.idle - getattr(cpu1, "iowait", 0)
        by_owner = {"ours": 0.0, "postgres": 0.0, "other": 0.0}
        programs: dict[str, float] = {}
        for pid, (owner, program, used) in self._last.items():
            delta = max(0.0, used - self._first.get(pid, 0.0))
            by_owner[owner] += delta
            if owner == "other":
                programs[program] = programs.get(program, 0.0) + delta
        top = sorted(programs.items(), key=lambda kv: -kv[1])[:4]
        return {
            "seconds": round(wall, 1),
            "machine_busy_pct": round(100 * (busy1 - busy0) / max(sum(cpu1) - sum(self._cpu0), 1e-9), 1),
            "ours_cpu_s": round(by_owner["ours"], 1),
            "postgres_cpu_s": round(by_owner["postgres"], 1),
            "other_cpu_s": round(by_owner["other"], 1),
            "other_top": [{"command": c, "cpu_s": round(v, 1)} for c, v in top if v >= 0.1],
        }


def _program(cmdline: list[str] | None, name: str | None) -> str:
    """A process's program name without its arguments (they may hold tokens): ``schemathesis``."""
    args = [a for a in (cmdline or []) if a]
    if not args:
        return name or "?"
    program = os.path.basename(args[0])
    if program.startswith("python") and len(args) > 1:
        rest = args[1:]
        if rest[0] == "-m" and len(rest) > 1:
            return f"python -m {rest[1]}"
        return f"python {os.path.basename(rest[0])}"
    return program


def worker_memory(master_pid: int) -> list[dict[str, Any]]:
    """RSS and USS (unique set: what a worker does not share with its siblings) of each worker, MiB.

    USS is what one more worker would cost; RSS double-counts pages shared after fork.
    """
    workers = []
    for proc in psutil.Process(master_pid).children():
        info = proc.memory_full_info()
        workers.append({"pid": proc.pid, "rss_mib": round(info.rss / 2**20, 1), "uss_mib": round(info.uss / 2**20, 1)})
    return workers


def startup_times(python: str, env: Mapping[str, str], cwd: str, runs: int) -> dict[str, Any]:
    """Median (and all runs) of ``import advanced_notes.app`` and ``create_app()``, ms, fresh processes."""
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [python, "-c", _TIMING_CODE], env=dict(env), cwd=cwd, capture_output=True, text=True, timeout=60, check=True
        )
        samples.append(json.loads(out.stdout.strip().splitlines()[-1]))
    imports = [s["import_ms"] for s in samples]
    creates = [s["create_app_ms"] for s in samples]
    return {
        "runs": runs,
        "import_ms_median": round(statistics.median(imports), 1),
        "create_app_ms_median": round(statistics.median(creates), 1),
        "total_ms_median": round(statistics.median(i + c for i, c in zip(imports, creates, strict=False)), 1),
        "import_ms_all": [round(v, 1) for v in imports],
        "create_app_ms_all": [round(v, 1) for v in creates],
    }


def heaviest_imports(python: str, env: Mapping[str, str], cwd: str, top: int = 10) -> list[dict[str, Any]]:
    """Top-level packages by cumulative import time in ``import advanced_notes.app; create_app()``, ms.

    From ``python -X importtime``: the line of each top-level package (no dot in its name)
    carries its cumulative time, which includes what it imports itself, so nested packages
    (marshmallow under flask_smorest, say) are also inside their importer's figure.
    """
    out = subprocess.run(
        [python, "-X", "importtime", "-c", "import advanced_notes.app; advanced_notes.app.create_app()"],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    totals: dict[str, int] = {}
    for line in out.stderr.splitlines():
        match = _IMPORTTIME_LINE.match(line)
        if match and "." not in match.group(4):
            totals[match.group(4)] = max(totals.get(match.group(4), 0), int(match.group(2)))
    ordered = sorted(totals.items(), key=lambda kv: -kv[1])[:top]
    return [{"package": name, "cumulative_ms": round(us / 1000, 1)} for name, us in ordered]


if __name__ == "__main__":
    print(json.dumps(startup_times(sys.executable, dict(__import__("os").environ), ".", 3), indent=1))

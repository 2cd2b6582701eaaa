"""Footprint: gunicorn worker memory after warm-up, and the cost of starting the app.

Import and ``create_app()`` times are taken in fresh interpreters (the only way to
measure an import: a second import in the same process is a dictionary lookup),
several times, reporting the median, in milliseconds.
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

import psutil

_TIMING_CODE = """
import json, time
t0 = time.perf_counter()
import advanced_notes
t1 = time.perf_counter()
app = advanced_notes.create_app()
t2 = time.perf_counter()
print(json.dumps({"import_ms": (t1 - t0) * 1000, "create_app_ms": (t2 - t1) * 1000}))
"""
_IMPORTTIME_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)")


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
    """Median (and all runs) of ``import advanced_notes`` and ``create_app()``, ms, fresh processes."""
    samples = []
    for _ in range(runs):
        out = subprocess.run([python, "-c", _TIMING_CODE], env=dict(env), cwd=cwd, capture_output=True,
                             text=True, timeout=60, check=True)
        samples.append(json.loads(out.stdout.strip().splitlines()[-1]))
    imports = [s["import_ms"] for s in samples]
    creates = [s["create_app_ms"] for s in samples]
    return {"runs": runs, "import_ms_median": round(statistics.median(imports), 1),
            "create_app_ms_median": round(statistics.median(creates), 1),
            "total_ms_median": round(statistics.median(i + c for i, c in zip(imports, creates)), 1),
            "import_ms_all": [round(v, 1) for v in imports], "create_app_ms_all": [round(v, 1) for v in creates]}


def heaviest_imports(python: str, env: Mapping[str, str], cwd: str, top: int = 10) -> list[dict[str, Any]]:
    """Top-level packages by cumulative import time in ``import advanced_notes; create_app()``, ms.

    From ``python -X importtime``: the line of each top-level package (no dot in its name)
    carries its cumulative time, which includes what it imports itself, so nested packages
    (marshmallow under flask_smorest, say) are also inside their importer's figure.
    """
    out = subprocess.run([python, "-X", "importtime", "-c", "import advanced_notes; advanced_notes.create_app()"],
                         env=dict(env), cwd=cwd, capture_output=True, text=True, timeout=60, check=True)
    totals: dict[str, int] = {}
    for line in out.stderr.splitlines():
        match = _IMPORTTIME_LINE.match(line)
        if match and "." not in match.group(4):
            totals[match.group(4)] = max(totals.get(match.group(4), 0), int(match.group(2)))
    ordered = sorted(totals.items(), key=lambda kv: -kv[1])[:top]
    return [{"package": name, "cumulative_ms": round(us / 1000, 1)} for name, us in ordered]


if __name__ == "__main__":
    print(json.dumps(startup_times(sys.executable, dict(__import__("os").environ), ".", 3), indent=1))

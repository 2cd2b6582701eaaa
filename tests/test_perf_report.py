"""bench/perf/report.py writes a report for a run that had failures, and says so first.

The results start from a real ``run.py --quick`` run (bench/perf/testdata/results-quick.json,
trimmed), then are degraded the way a run whose server died is: a second concurrency level
where every request failed, a complete run that measured nothing (no latencies: percentiles
None, 0 requests/s), ceilings missing, ratios of nothing, a scaling run with no answer.
"""

from __future__ import annotations

import copy
import importlib.util
import json
from typing import Any

import pytest

from .conftest import REPO

PERF = REPO / "bench" / "perf"


def _load_report():
    # bench/perf is a folder of scripts, not a package: load the file itself.
    spec = importlib.util.spec_from_file_location("perf_report", PERF / "report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


report = _load_report()


def _run(
    name: str, count: int, errors: int, statuses: dict[str, int], samples: list[str], latencies: bool = True
) -> dict[str, Any]:
    """A load run as run.py keeps it (loadgen's result without the latency list)."""
    p = 12.5 if latencies else None
    return {
        "name": name,
        "concurrency": int(name.split("/")[2][1:]) if name.split("/")[2][0] == "c" else 1,
        "count": count,
        "errors": errors,
        "status_counts": statuses,
        "error_samples": samples,
        "elapsed_s": 6.0 if count else 0.0,
        "rps": round(count / 6.0, 2) if count else 0.0,
        "cpu_pct": 10.0 if count else 0.0,
        "p50_ms": p,
        "p95_ms": p,
        "p99_ms": p,
    }


def _merged(run: dict[str, Any]) -> dict[str, Any]:
    """The same run as run.py's per-level summary (stats.merge of its rounds) shows it."""
    return {
        "count": run["count"],
        "errors": run["errors"],
        "rps": run["rps"],
        "p50_ms": run["p50_ms"],
        "p95_ms": run["p95_ms"],
        "p99_ms": run["p99_ms"],
        "cpu_pct": run["cpu_pct"],
        "rounds_rps": [run["rps"]],
        "error_samples": run["error_samples"],
        "status_counts": run["status_counts"],
    }


def _degraded(results: dict[str, Any]) -> dict[str, Any]:
    """``results`` of a run whose service died during the concurrency-64 level."""
    r = copy.deepcopy(results)
    html_500 = "POST /api/audio-clips -> 500: <html><title>500 Internal Server Error</title> | broken"
    refused = "GET /api/audio-clips/x/playback -> transport-error: ClientConnectorError('Connection refused')"
    dead = {
        "create": _run(
            "ours/create/c64/r0",
            1_200,
            1_200,
            {"transport-error": 1_195, "500": 5},
            [html_500, "POST /api/audio-clips -> transport-error: ServerDisconnectedError()"],
        ),
        # The complete run that crashed the report: nothing measured at all.
        "complete": _run("ours/complete/c64/r0", 0, 0, {}, [], latencies=False),
        "playback": _run("ours/playback/c64/r0", 14_818, 14_818, {"transport-error": 14_818}, [refused]),
        "note_audio": _run("ours/note_audio/c64/r0", 0, 0, {}, [], latencies=False),
        "list": _run("ours/list/c64/r0", 17_865, 17_865, {"transport-error": 17_865}, [refused]),
    }
    r["load_runs"] += list(dead.values())
    level = {endpoint: {"ours": _merged(run)} for endpoint, run in dead.items()}  # no ceiling anywhere
    level["note_audio"]["ratio"] = {"median": None, "min": None, "max": None, "rounds": []}
    throughput = r["throughput"]
    throughput["by_level"]["64"] = level
    throughput["levels"] = [*throughput["levels"], 64]

    # The main level: its complete run measured nothing either, and note audio lost its ceiling.
    main = throughput["by_level"][str(throughput["main_concurrency"])]
    main["complete"]["ours"].update(count=0, rps=0.0, p50_ms=None, p95_ms=None, p99_ms=None, cpu_pct=None)
    main["note_audio"].pop("ceiling")
    main["note_audio"]["ratio"] = {"median": None, "min": None, "max": None, "rounds": []}

    # A scaling run that got no answer.
    run = r["scaling"][-1]["runs"][0]
    run.update(
        count=3,
        errors=3,
        status_counts={"transport-error": 3},
        p50_ms=None,
        p95_ms=None,
        p99_ms=None,
        error_samples=[refused],
    )
    return r


@pytest.fixture
def results() -> dict[str, Any]:
    return json.loads((PERF / "testdata" / "results-quick.json").read_text())


@pytest.fixture
def no_plots(monkeypatch):
    """The markdown only: matplotlib (the bench extra) is not installed for the test suite."""
    monkeypatch.setattr(report, "plot_throughput", lambda throughput, path: len(throughput["levels"]) > 1)
    monkeypatch.setattr(report, "plot_scaling", lambda points, path: None)


def test_a_run_without_failures_has_no_failure_section(results, no_plots, tmp_path):
    report.write(results, tmp_path / "performance.md", tmp_path)

    text = (tmp_path / "performance.md").read_text()
    assert "## Failed requests" not in text
    assert "| no failed request | 0 failed | **met** |" in text


def test_a_run_with_failures_gets_a_report_that_shows_them_first(results, no_plots, tmp_path):
    degraded = _degraded(results)

    report.write(degraded, tmp_path / "performance.md", tmp_path)

    text = (tmp_path / "performance.md").read_text()
    failures = text.split("## Failed requests", 1)[1].split("\n## ", 1)[0]
    assert text.index("## Failed requests") < text.index("## Summary")
    total = 1_200 + 14_818 + 17_865 + 3
    assert f"**{total:,} requests failed in 4 load run(s)**" in failures
    rows = [line for line in failures.splitlines() if line.startswith("| ") and "endpoint" not in line]
    assert len(rows) == 4, failures
    assert (
        "| create | service | 64 | throughput, round 0 | 1,200 | 1,200 | transport-error: 1,195, 500: 5 |" in failures
    )
    assert "| playback | service | 64 | throughput, round 0 | 14,818 | 14,818 | transport-error: 14,818 |" in failures
    assert "| list | service | 64 |" in failures
    assert "| note audio | service | 1 | scaling, 10^4 clips | 3 | 3 | transport-error: 3 |" in failures
    assert "<html><title>500 Internal Server Error</title> / broken" in failures  # a pipe would split the cell
    assert f"| no failed request | {total} failed | **not met** |" in text
    # Figures that do not exist are shown as such, never as a crash or a made-up number.
    assert "| complete (POST .../complete) | service | 0.0 | n/a | n/a | n/a | 0 | 0 |  | n/a |" in text
    assert "n/a (n/a)" not in text.split("### Throughput vs concurrency", 1)[0]
    sweep = text.split("### Throughput vs concurrency", 1)[1]
    assert "| complete | service |" in sweep and "0 (n/a)" in sweep


def test_plots_of_a_run_with_failures(results, tmp_path):
    pytest.importorskip("matplotlib")

    report.write(_degraded(results), tmp_path / "performance.md", tmp_path)

    assert (tmp_path / report.PNG_THROUGHPUT).stat().st_size > 0
    assert (tmp_path / report.PNG_SCALING).stat().st_size > 0

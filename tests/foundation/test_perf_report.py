"""bench/perf/report.py writes a report for a run that had failures, and says so first.

The results start from real ``run.py --quick`` runs (bench/perf/testdata/, trimmed):
``results-quick.json`` with the complete ceiling, the store-call counts and the baseline,
``results-quick-no-complete-ceiling.json`` from before them (a report is regenerated from
an old results file too). Then they are degraded the way a run whose server died is: a
second concurrency level where every request failed, a complete run that measured nothing
(no latencies: percentiles None, 0 requests/s), ceilings missing, ratios of nothing, a
scaling run with no answer.
"""

from __future__ import annotations

import copy
import importlib.util
import json
from typing import Any

import pytest

from testkit.paths import REPO

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

    # The main level: its complete runs measured nothing either, and note audio lost its ceiling.
    main = throughput["by_level"][str(throughput["main_concurrency"])]
    main["complete"]["ours"].update(count=0, rps=0.0, p50_ms=None, p95_ms=None, p99_ms=None, cpu_pct=None)
    main["complete"].pop("ceiling", None)
    main["complete"]["ratio"] = {"median": None, "min": None, "max": None, "rounds": []}
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


NEW = "results-quick.json"
OLD = "results-quick-no-complete-ceiling.json"


def _results(name: str) -> dict[str, Any]:
    return json.loads((PERF / "testdata" / name).read_text())


@pytest.fixture
def results() -> dict[str, Any]:
    return _results(NEW)


@pytest.fixture
def old_results() -> dict[str, Any]:
    """A results file written before the complete ceiling, storecalls.py and baseline.json."""
    return _results(OLD)


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


@pytest.mark.parametrize("name", [NEW, OLD])
def test_a_run_with_failures_gets_a_report_that_shows_them_first(name, no_plots, tmp_path):
    degraded = _degraded(_results(name))

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
    # Ratios lost with the ceilings are n/a; one measured below the target is enough for "not met".
    summary = _section(text, "## Summary")
    assert "complete n/a" in summary and "note audio n/a" in summary
    assert "| service / ceiling throughput >= 0.8 (each of create, complete, playback, note audio, c=8) |" in summary
    assert _row(summary, "service / ceiling throughput").endswith("| **not met** |")
    before_after = _section(text, "## Before and after")
    # The run's side of each lost figure is n/a, whichever baseline the "before" side comes from.
    complete_cells = [cell.strip() for cell in _row(before_after, "| complete |").split("|")[2:5]]
    assert all(cell.endswith("-> n/a") for cell in complete_cells), complete_cells
    assert _row(before_after, "| note audio |").split("|")[2].strip().endswith("-> n/a")


def _section(text: str, heading: str) -> str:
    """The markdown from ``heading`` to the next second-level heading."""
    return text.split(heading + "\n", 1)[1].split("\n## ", 1)[0]


def _row(section: str, start: str) -> str:
    """The one table row of ``section`` that starts with ``start`` (its first cell, with or without ``| ``)."""
    prefix = start if start.startswith("|") else "| " + start
    rows = [line for line in section.splitlines() if line.startswith(prefix)]
    assert len(rows) == 1, (start, section)
    return rows[0]


def test_the_report_shows_complete_against_its_ceiling(results, no_plots, tmp_path):
    report.write(results, tmp_path / "performance.md", tmp_path)

    text = (tmp_path / "performance.md").read_text()
    summary = _section(text, "## Summary")
    assert _row(summary, "service / ceiling throughput").startswith(
        "| service / ceiling throughput >= 0.8 (each of create, complete, playback, note audio, c=8) | "
        "create 0.31, complete 0.72, playback 0.53, note audio 0.29 | **not met** |"
    )
    throughput = _section(text, "## Throughput at concurrency 8")
    assert "list has no ceiling route" in throughput and "complete and list" not in throughput
    assert _row(throughput, "complete (POST .../complete)").startswith(
        "| complete (POST .../complete) | service | 50.3 | 139.0 | 161.5 | 189.9 | 43 | 0 | **0.72** (0.72-0.72) |"
    )
    assert "Ceiling: of the 60 pending clips" in throughput and "6288 ms x60" in throughput
    profiles = _section(text, "## Where the time goes (profiles)")
    assert _row(profiles, "| complete |").startswith(
        "| complete | 41.45 (14.66) | 5 round trips (SELECT x2, BEGIN, UPDATE, COMMIT) / 7.60 | "
        "2 calls (HEAD, GET) / 20.43 | 12.15 (5.80) | 2 round trips (SELECT, UPDATE) / 1.16 | "
        "2 calls (HEAD, GET) / 8.75 | 0.29 |"
    )
    assert "| store HEAD calls | 0 / 0 | 1 / 1 |" in profiles
    assert "The ceiling: 12.15 ms, 2 store calls (HEAD, GET) in 8.75 ms" in profiles
    assert "| library | create | complete | playback | note audio |" in profiles  # the service's extra time
    assert "| complete service | complete ceiling |" in profiles  # shares and notable functions


def test_before_and_after_comes_from_the_baseline_and_the_run(results, no_plots, tmp_path):
    report.write(results, tmp_path / "performance.md", tmp_path)

    text = (tmp_path / "performance.md").read_text()
    assert text.index("## Summary") < text.index("## Before and after") < text.index("## Throughput")
    section = _section(text, "## Before and after")
    assert "commit `5e74297`" in section and "2026-11-21 09:39 UTC" in section
    assert "differ in concurrency" in section  # a quick run at c=8 against a full run at c=16
    rows = [line for line in section.splitlines() if line.startswith("| ") and "endpoint" not in line]
    assert rows == [
        "| create | 0.39 -> 0.31 | 60.2 -> 51.5 | 90.0 -> 249.5 | 5 -> 5 | 1.00 -> 1.00 |",
        "| complete | n/a -> 0.72 | 173.4 -> 139.0 | 257.9 -> 189.9 | 5 -> 5 | 0.00 -> 0.00 |",
        "| playback | 0.56 -> 0.53 | 37.8 -> 37.1 | 66.2 -> 65.1 | 1 -> 1 | 1.00 -> 1.00 |",
        "| note audio | 0.47 -> 0.29 | 40.5 -> 59.3 | 72.9 -> 96.5 | 1 -> 1 | 1.00 -> 1.00 |",
    ]


def test_presigns_below_one_per_request_have_two_decimals(results, no_plots, tmp_path):
    # A service that caches signed URLs in process signs fewer than one per request.
    results["profiles"]["ours/playback"]["presigns_per_request"] = 0.037

    report.write(results, tmp_path / "performance.md", tmp_path)

    section = _section((tmp_path / "performance.md").read_text(), "## Before and after")
    assert _row(section, "| playback |").endswith("| 1 -> 1 | 1.00 -> 0.04 |")


def test_the_committed_baseline_holds_every_figure_of_the_table():
    baseline = report.load_baseline()

    assert baseline["commit"] == "01e5c94" and baseline["concurrency"] == 16
    assert set(baseline["endpoints"]) == set(report.RATIO_ENDPOINTS)
    for figures in baseline["endpoints"].values():
        assert set(figures) == {"ratio", "p50_ms", "p99_ms", "db_round_trips", "presigns"}
        assert isinstance(figures["ratio"], float)  # every endpoint had its ceiling in that run


def test_without_a_baseline_the_before_figures_are_n_a(results, no_plots, tmp_path, monkeypatch):
    results.pop("baseline")
    monkeypatch.setattr(report, "BASELINE_PATH", tmp_path / "absent.json")

    report.write(results, tmp_path / "performance.md", tmp_path)

    section = _section((tmp_path / "performance.md").read_text(), "## Before and after")
    assert "`bench/perf/baseline.json` is missing" in section
    assert _row(section, "create") == "| create | n/a -> 0.31 | n/a -> 51.5 | n/a -> 249.5 | n/a -> 5 | n/a -> 1.00 |"


def test_footprint_targets_are_summary_rows(results, no_plots, tmp_path):
    report.write(results, tmp_path / "performance.md", tmp_path)

    summary = _section((tmp_path / "performance.md").read_text(), "## Summary")
    assert _row(summary, "warm worker RSS") == (
        "| warm worker RSS <= 100 MiB (service, gunicorn workers after the throughput runs) | "
        "largest of 4 workers 117.5 MiB (USS 88.0 MiB) | **not met** |"
    )
    assert _row(summary, "import + create_app()") == (
        "| import + create_app() <= 1 s | 1069 ms (import 884 + create_app 186; median of 2 fresh interpreters) "
        "| **not met** |"
    )


def test_footprint_targets_without_figures_are_n_a(results, no_plots, tmp_path):
    results.pop("memory")
    results.pop("startup")

    report.write(results, tmp_path / "performance.md", tmp_path)

    summary = _section((tmp_path / "performance.md").read_text(), "## Summary")
    assert _row(summary, "warm worker RSS").endswith("| n/a | n/a |")
    assert _row(summary, "import + create_app()").endswith("| n/a | n/a |")


def test_ratios_all_met_but_one_missing_is_no_verdict(results, no_plots, tmp_path):
    main = results["throughput"]["by_level"]["8"]
    for endpoint in ("create", "playback", "note_audio"):
        main[endpoint]["ratio"]["median"] = 0.9
    main["complete"].pop("ceiling")
    main["complete"].pop("ratio")

    report.write(results, tmp_path / "performance.md", tmp_path)

    summary = _section((tmp_path / "performance.md").read_text(), "## Summary")
    assert _row(summary, "service / ceiling throughput").endswith(
        "| create 0.90, complete n/a, playback 0.90, note audio 0.90 | n/a |"
    )


def test_a_results_file_from_before_the_complete_ceiling(old_results, no_plots, tmp_path):
    report.write(old_results, tmp_path / "performance.md", tmp_path)

    text = (tmp_path / "performance.md").read_text()
    summary = _section(text, "## Summary")
    assert "create 0.56, complete n/a, playback 0.50, note audio 0.42 | **not met** |" in summary
    assert _row(summary, "import + create_app()").endswith("| **met** |")
    throughput = _section(text, "## Throughput at concurrency 8")
    assert "complete and list have no ceiling route" in throughput
    assert "Service: of the 60 pending clips" in throughput and "Ceiling:" not in throughput
    # Before/after: the committed baseline (the old file has none of its own); counts it lacks are n/a.
    section = _section(text, "## Before and after")
    assert _row(section, "create") == "| create | 0.63 -> 0.56 | 32.1 -> 30.7 | 105.9 -> 48.5 | 1 -> 5 | 1.00 -> n/a |"
    assert _row(section, "| complete |").startswith("| complete | 0.99 -> n/a | 130.1 -> 78.7 |")
    profiles = _section(text, "## Where the time goes (profiles)")
    assert _row(profiles, "| complete |").startswith(
        "| complete | 17.30 (8.29) | 5 round trips (SELECT x2, BEGIN, UPDATE, COMMIT) / 1.61 | n/a | - | - | - |"
    )


def test_plots_of_a_run_with_failures(results, tmp_path):
    pytest.importorskip("matplotlib")

    report.write(_degraded(results), tmp_path / "performance.md", tmp_path)

    assert (tmp_path / report.PNG_THROUGHPUT).stat().st_size > 0
    assert (tmp_path / report.PNG_SCALING).stat().st_size > 0

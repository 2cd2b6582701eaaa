"""The report: ``docs/performance.md`` and its PNG plots, generated from one run's results.

Everything in the report is a figure of that run. Absolute numbers drift on a shared
machine, so the headline figures are ratios measured side by side in the same run
(service / ceiling, p50 at 10^6 / p50 at 10^3).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import json
import math
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

REPO_DIR = Path(__file__).resolve().parents[2]
PACKAGES = (
    "flask",
    "flask-smorest",
    "marshmallow",
    "sqlalchemy",
    "psycopg2-binary",
    "boto3",
    "botocore",
    "pyjwt",
    "gunicorn",
    "moto",
    "aiohttp",
    "pyinstrument",
)
ENDPOINT_TITLES = {
    "create": "create (POST /api/audio-clips)",
    "complete": "complete (POST .../complete)",
    "playback": "playback (GET .../playback)",
    "note_audio": "note audio (GET /api/notes/&lt;id&gt;/audio)",
    "list": "list (GET /api/audio-clips?limit=20)",
}
#: The answer a load run counts as a success (run.py's EXPECT); any other status is a failure.
EXPECTED_STATUS = {"create": "201"}
THROUGHPUT_TARGET = 0.8
#: The endpoints the throughput target covers: each has a ceiling route (ceiling.py).
RATIO_ENDPOINTS = ("create", "complete", "playback", "note_audio")
P50_GROWTH_TARGET = 1.2
#: A warm gunicorn worker of the service (RSS after the throughput runs) may use at most this, MiB.
WORKER_RSS_TARGET_MIB = 100
#: ``import advanced_notes`` + ``create_app()`` in a fresh interpreter, median, at most this, ms.
STARTUP_TARGET_MS = 1000
#: The figures of the previous report: the "before" of the before/after table.
BASELINE_PATH = Path(__file__).resolve().parent / "baseline.json"
EXPLAIN_TITLES = {
    "note_audio": "note audio",
    "playback": "playback",
    "list": "list (first page)",
    "create": "create (its last statement on audio_clips; an INSERT is explained in a transaction rolled back)",
}
PNG_THROUGHPUT = "perf-throughput-vs-concurrency.png"
PNG_SCALING = "perf-p50-vs-table-size.png"


# -- machine --------------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    """nproc, CPU model, memory, versions, the measured code's commit, date and load average."""
    import pgutil  # here, not at the top: writing a report needs no database (tests load this file alone)

    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": cpu,
        "memory_gib": round(mem_kib / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": pgutil.server_version(),
        "packages": versions,
        "commit": git_output("rev-parse", "--short", "HEAD"),
        # Read-only (--no-optional-locks: never even refreshes the index): did the measured
        # code differ from the commit?
        "uncommitted_changes": bool(
            git_output("--no-optional-locks", "status", "--porcelain", "--", "advanced_notes", "migrations", "wsgi.py")
        ),
        "load_average_start": os.getloadavg(),
        "code_fingerprint_start": code_fingerprint(),
    }


def code_fingerprint() -> str:
    """SHA-256 (12 hex digits) of the service's code: advanced_notes, migrations, wsgi.py.

    Taken at the start and the end of a run: the working tree is shared with other
    engineers, and a run whose code changed midway measured two versions.
    """
    digest = hashlib.sha256()
    files = sorted(
        [*REPO_DIR.glob("advanced_notes/**/*.py"), *REPO_DIR.glob("migrations/**/*.py"), REPO_DIR / "wsgi.py"]
    )
    for path in files:
        if path.is_file():
            digest.update(str(path.relative_to(REPO_DIR)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def git_output(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], check=False, cwd=REPO_DIR, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


# -- formatting -----------------------------------------------------------------------------------


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _n(value: Any, spec: str, unit: str = "") -> str:
    """``value`` formatted with ``spec`` (and ``unit``), or "n/a" when the run has no such figure.

    Every figure of the report goes through here (or :func:`_f`): a run that failed has
    empty latency lists (percentiles None), missing ceilings, ratios of nothing; its report
    must still be written, with those figures marked n/a.
    """
    return "n/a" if _missing(value) else format(value, spec) + unit


def _f(value: Any, digits: int = 1) -> str:
    """A table cell: floats with ``digits`` decimals, ints with separators, None as "n/a"."""
    if _missing(value):
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_f(c) if not isinstance(c, str) else c for c in row) + " |" for row in rows]
    return lines


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**not met**")


def _size(n: int) -> str:
    exponent = len(str(n)) - 1
    return f"10^{exponent}" if n == 10**exponent else f"{n:,}"


# -- plots ----------------------------------------------------------------------------------------


def plot_throughput(throughput: dict[str, Any], path: Path) -> bool:
    """requests/s vs concurrency, one panel per endpoint, service vs ceiling. False if one level only."""
    levels = throughput["levels"]
    if len(levels) < 2:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    endpoints = list(ENDPOINT_TITLES)
    fig, grid = plt.subplots(2, 3, figsize=(12, 7))
    axes = list(grid.flat)
    axes[-1].axis("off")  # five endpoints, six cells
    for ax, endpoint in zip(axes, endpoints, strict=False):
        for app, style in (("ours", "o-"), ("ceiling", "s--")):
            ys = [throughput["by_level"][str(c)].get(endpoint, {}).get(app, {}).get("rps") for c in levels]
            if any(y is not None for y in ys):
                ax.plot(levels, ys, style, label="service" if app == "ours" else "ceiling")
        ax.set_title(endpoint.replace("_", " "))
        ax.set_xscale("log", base=2)
        ax.set_xticks(levels, [str(c) for c in levels])
        ax.set_xlabel("concurrent connections")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    for ax in (axes[0], axes[3]):
        ax.set_ylabel("requests/s")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_scaling(points: list[dict[str, Any]], path: Path) -> None:
    """p50 latency (ms) vs table size (log), note audio and playback, service and ceiling."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    sizes = [p["size"] for p in points]
    for endpoint, color in (("note_audio", "tab:blue"), ("playback", "tab:orange")):
        for app, style in (("ours", "o-"), ("ceiling", "s--")):
            ys = [_scale_run(p, app, endpoint).get("p50_ms") for p in points]
            if all(y is None for y in ys):
                continue
            ys = [float("nan") if y is None else y for y in ys]
            label = f"{endpoint.replace('_', ' ')}, {'service' if app == 'ours' else 'ceiling'}"
            ax.plot(sizes, ys, style, color=color, label=label)
    ax.set_xscale("log")
    ax.set_xlabel("clips in the table")
    ax.set_ylabel("p50 latency (ms)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _scale_run(point: dict[str, Any], app: str, endpoint: str) -> dict[str, Any]:
    for run in point["runs"]:
        if run["name"].startswith(f"{app}/{endpoint}/"):
            return run
    return {}


# -- sections -------------------------------------------------------------------------------------


def _header(r: dict[str, Any]) -> list[str]:
    m, p = r["machine"], r["plan"]
    pkgs = ", ".join(f"{k} {v}" for k, v in m["packages"].items())
    dirty = " plus uncommitted changes in the working tree" if m["uncommitted_changes"] else ""
    changed = m.get("code_fingerprint_end") not in (None, m.get("code_fingerprint_start"))
    warning = (
        [
            "",
            (
                f"**Warning: the service's code changed during this run** (fingerprint "
                f"{m.get('code_fingerprint_start')} at the start, {m.get('code_fingerprint_end')} at the end, "
                f"commit `{m.get('commit_end')}`): the working tree is shared, so some phases measured one "
                "version and some the other. Run again for figures of a single version."
            ),
        ]
        if changed
        else []
    )
    return [
        "# Performance",
        "",
        "Generated by `bench/perf/run.py` from one run; every figure below is what that run measured.",
        "The machine is shared (other test suites may run at the same time), so absolute figures drift",
        "from run to run: the figures to quote are the **ratios**, measured side by side in the same run.",
        *warning,
        "",
        f"- **Command**: `{p['command']}` (from the repository root; {_n(r['wall_s'] / 60, '.1f')} min end to end: "
        + ", ".join(f"{k} {_n(v, '.0f')} s" for k, v in r.get("phase_s", {}).items())
        + ")",
        (
            f"- **Date**: {m['date']}; code at commit `{m['commit']}`{dirty} (code fingerprint "
            f"{m.get('code_fingerprint_start')})"
        ),
        (
            f"- **Machine**: {m['nproc']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB memory, Linux {m['kernel']}, "
            f"Python {m['python']}, {m['postgresql']}"
        ),
        (
            f"- **Load average** (1/5/15 min) at start {_load(m['load_average_start'])}, at end "
            f"{_load(m.get('load_average_end'))}"
        ),
        f"- **Packages**: {pkgs}",
        (
            f"- **Servers**: gunicorn `--workers {p['workers']} --threads {p['threads']} --worker-class "
            f"{p['worker_class']}` for both apps (the README's production command is `gunicorn -w 4 wsgi:app`), on "
            "loopback; PostgreSQL on 127.0.0.1; S3 is moto's server (`moto_server`) on loopback."
        ),
        (
            "- **Load**: a separate process (`loadgen.py`, aiohttp), closed loop: N connections each sending the "
            f"next request as soon as the previous answer arrived; {p['warmup_s']} s warm-up not recorded, "
            f"then {p['duration_s']} s measured per run. Latency is client-side, ms."
        ),
        "- **Service settings**: the defaults, except "
        + "; ".join(f"`{k}={v}`" for k, v in r.get("overrides", {}).items())
        + " (so a few hundred synthetic owners "
        "hammering the API are neither rate-limited nor over quota; both checks still run on every request).",
        "",
    ]


def _load(values: Any) -> str:
    return "n/a" if not values else " / ".join(f"{_n(v, '.2f')}" for v in values)


def _failed_runs(r: dict[str, Any]) -> list[dict[str, Any]]:
    """Every load run (throughput and scaling) with at least one failed request."""
    runs = [*r.get("load_runs", []), *[run for p in r.get("scaling", []) for run in p.get("runs", [])]]
    return [run for run in runs if run.get("errors")]


def _failed_requests(r: dict[str, Any]) -> list[str]:
    """The "Failed requests" section: every load run with failures, how many and of which kinds.

    Empty when no request failed. Placed right after the header: a run whose server broke
    must show that first, not as figures that only look low.
    """
    failed = _failed_runs(r)
    if not failed:
        return []
    total = sum(run["errors"] for run in failed)
    lines = [
        "## Failed requests",
        "",
        (
            f"**{total:,} requests failed in {len(failed)} load run(s)**: a failure is any answer other than the "
            "endpoint's success status (201 for create, 200 otherwise), or a transport error (connection refused "
            "or reset, timeout). The figures of these runs below measure a broken service, not its performance; "
            "`run.py` exits with status 1."
        ),
        "",
    ]
    rows = []
    for run in failed:
        app, endpoint, level, phase = ([*run["name"].split("/"), "", "", "", ""])[:4]
        if level.startswith("n"):  # scaling runs: ours/<endpoint>/n<size>
            phase, level = f"scaling, {_size(int(level[1:]))} clips", str(run.get("concurrency", ""))
        else:
            phase, level = f"throughput, round {phase.lstrip('r')}" if phase else "throughput", level.lstrip("c")
        expected = EXPECTED_STATUS.get(endpoint, "200")
        kinds = sorted(
            ((status, n) for status, n in run.get("status_counts", {}).items() if status != expected),
            key=lambda kv: -kv[1],
        )
        sample = next(iter(run.get("error_samples", [])), "")
        rows.append(
            [
                endpoint.replace("_", " "),
                _app_title(app),
                level,
                phase,
                run.get("count"),
                run["errors"],
                ", ".join(f"{status}: {n:,}" for status, n in kinds) or "n/a",
                f"`{_cell(sample[:160])}`" if sample else "",
            ]
        )
    lines += _table(
        ["endpoint", "app", "concurrency", "phase", "requests", "failed", "kinds (status: count)", "first sample"], rows
    )
    return [*lines, ""]


def _cell(text: str) -> str:
    """``text`` safe in a markdown table cell and a code span."""
    return " ".join(text.replace("|", "/").replace("`", "'").split())


def _main_ratios(r: dict[str, Any]) -> dict[str, float | None]:
    """Service / ceiling requests/s at the main concurrency (median of rounds), None where not measured."""
    t = r["throughput"]
    main = t["by_level"].get(str(t["main_concurrency"]), {})
    return {e: (main.get(e, {}).get("ratio") or {}).get("median") for e in RATIO_ENDPOINTS}


def _at_least(values: list[float | None], target: float) -> bool | None:
    """Every value >= ``target``: False as soon as one measured value is below, None while any is missing."""
    if any(v is not None and v < target for v in values):
        return False
    return None if any(v is None for v in values) else True


def _summary(r: dict[str, Any]) -> list[str]:
    t = r["throughput"]
    ratios = _main_ratios(r)
    lines = ["## Summary", "", "| target | measured | verdict |", "|---|---|---|"]
    lines.append(
        f"| service / ceiling throughput >= {THROUGHPUT_TARGET} (each of "
        + ", ".join(e.replace("_", " ") for e in RATIO_ENDPOINTS)
        + f", c={t['main_concurrency']}) | "
        + ", ".join(f"{e.replace('_', ' ')} {_n(v, '.2f')}" for e, v in ratios.items())
        + f" | {_verdict(_at_least(list(ratios.values()), THROUGHPUT_TARGET))} |"
    )
    growth = _growth(r.get("scaling", []))
    points = r.get("scaling", [])
    for endpoint, g in growth.items():
        measured = f"{_n(g['ours'], '.2f')}x ({_n(g['p50_from'], '.2f')} -> {_n(g['p50_to'], '.2f')} ms)"
        verdict = _verdict(g["ours"] <= P50_GROWTH_TARGET)
        if g["ceiling"]:
            # Sizes are measured minutes apart on a shared machine: the ceiling, measured
            # alongside on the same table, shows how much of the change is the machine.
            sql = [p["explain"][endpoint]["execution_ms"] for p in (points[0], points[-1])]
            relative = g["ours"] / g["ceiling"]
            measured += (
                f"; the ceiling's p50 changed {_n(g['ceiling'], '.2f')}x alongside, so relative to it "
                f"{_n(relative, '.2f')}x; SQL execution {_n(sql[0], '.3f')} -> {_n(sql[1], '.3f')} ms"
            )
            verdict += f" (relative to the ceiling: {_verdict(relative <= P50_GROWTH_TARGET)})"
        lines.append(
            f"| {endpoint.replace('_', ' ')} p50 at {_size(g['to'])} <= {P50_GROWTH_TARGET} x p50 at "
            f"{_size(g['from'])} | {measured} | {verdict} |"
        )
    sweeps = [(p["size"], p["sweeper"]) for p in r.get("scaling", []) if "sweeper" in p]
    if len(sweeps) >= 2:
        first, last = sweeps[0][1], sweeps[-1][1]
        # "Flat": 100x the rows may cost at most 20% more peak memory.
        flat = last["peak_rss_kib"] <= first["peak_rss_kib"] * 1.2
        lines.append(
            f"| sweeper peak RSS flat from {_size(sweeps[0][0])} to {_size(sweeps[-1][0])} rows | "
            f"{_n(first['peak_rss_kib'] / 1024, '.0f')} -> {_n(last['peak_rss_kib'] / 1024, '.0f')} MiB | "
            f"{_verdict(flat)} |"
        )
    lines += _footprint_targets(r)
    errors = sum(run["errors"] for run in r.get("load_runs", [])) + sum(
        run["errors"] for p in r.get("scaling", []) for run in p["runs"]
    )
    lines.append(f"| no failed request | {errors} failed | {_verdict(errors == 0)} |")
    lines.append("")
    return lines


def _footprint_targets(r: dict[str, Any]) -> list[str]:
    """Summary rows: a warm service worker's RSS, and import + create_app() time (n/a when not measured)."""
    workers = (r.get("memory") or {}).get("ours") or []
    rss = [w.get("rss_mib") for w in workers if w.get("rss_mib") is not None]
    uss = [w.get("uss_mib") for w in workers if w.get("uss_mib") is not None]
    largest = max(rss) if rss else None
    rss_measured = (
        f"largest of {len(rss)} workers {_n(largest, '.1f')} MiB (USS {_n(max(uss) if uss else None, '.1f')} MiB)"
        if rss
        else "n/a"
    )
    startup = r.get("startup") or {}
    total = startup.get("total_ms_median")
    startup_measured = (
        f"{_n(total, '.0f')} ms (import {_n(startup.get('import_ms_median'), '.0f')} + create_app "
        f"{_n(startup.get('create_app_ms_median'), '.0f')}; median of {startup.get('runs', 'n/a')} fresh interpreters)"
        if startup
        else "n/a"
    )
    return [
        (
            f"| warm worker RSS <= {WORKER_RSS_TARGET_MIB} MiB (service, gunicorn workers after the throughput runs) | "
            f"{rss_measured} | {_verdict(None if largest is None else largest <= WORKER_RSS_TARGET_MIB)} |"
        ),
        (
            f"| import + create_app() <= {STARTUP_TARGET_MS / 1000:g} s | {startup_measured} | "
            f"{_verdict(None if _missing(total) else total <= STARTUP_TARGET_MS)} |"
        ),
    ]


def load_baseline(path: Path | None = None) -> dict[str, Any] | None:
    """The previous report's figures (:data:`BASELINE_PATH`), or None when absent or unreadable."""
    try:
        baseline = json.loads((path or BASELINE_PATH).read_text())
    except (OSError, ValueError):
        return None
    return baseline if isinstance(baseline, dict) else None


def _presigns(profile: dict[str, Any] | None) -> float | None:
    """Presigned URLs made per request (a service caching signed URLs makes fewer than one)."""
    if not profile:
        return None
    if "presigns_per_request" in profile:
        return profile["presigns_per_request"]
    # Results from before storecalls.py: cProfile's count of the client method, which left out
    # zeros, so an absent count is unknown rather than 0.
    return profile.get("calls_per_request", {}).get("presigns")


def _before_after(r: dict[str, Any]) -> list[str]:
    """Per endpoint: the previous report's figures (baseline.json) next to this run's."""
    baseline = r.get("baseline") or load_baseline()
    before = (baseline or {}).get("endpoints", {})
    t, p = r["throughput"], r["plan"]
    main = t["by_level"].get(str(t["main_concurrency"]), {})
    prof = r.get("profiles") or {}
    ratios = _main_ratios(r)
    servers = f"gunicorn --workers {p['workers']} --threads {p['threads']} --worker-class {p['worker_class']}"
    if baseline:
        source = (
            f"**before** is the previous report (`bench/perf/baseline.json`: {baseline.get('source', 'n/a')} of "
            f"{baseline.get('date', 'n/a')}, code at commit `{baseline.get('commit', 'n/a')}`, concurrency "
            f"{baseline.get('concurrency', 'n/a')}, {baseline.get('servers', 'n/a')})"
        )
    else:
        source = "**before** would be the previous report's figures, but `bench/perf/baseline.json` is missing"
    lines = [
        "## Before and after",
        "",
        (
            f"{source}; **after** is this run (concurrency {t['main_concurrency']}, {servers}). Each cell is "
            "before -> after, for the service: ratio is service / ceiling requests/s, p50 and p99 its latency (ms), "
            "PostgreSQL round trips and presigned URLs per request come from the in-process profiles (a presign is "
            "a URL signed by botocore's query-string signer, which `generate_presigned_url` calls; a service that "
            "caches signed URLs signs fewer than one per request)."
        ),
        "",
    ]
    if baseline and (
        baseline.get("concurrency") != t["main_concurrency"] or baseline.get("servers") not in (None, servers)
    ):
        lines += [
            (
                "The two runs differ in concurrency or servers: their latencies are not comparable (a `--quick` "
                "run is a smoke test); the ratios and the counts per request are."
            ),
            "",
        ]
    rows = []
    for e in RATIO_ENDPOINTS:
        b, ours, profile = before.get(e, {}), main.get(e, {}).get("ours", {}), prof.get(f"ours/{e}")
        rows.append(
            [
                e.replace("_", " "),
                f"{_n(b.get('ratio'), '.2f')} -> {_n(ratios[e], '.2f')}",
                f"{_n(b.get('p50_ms'), '.1f')} -> {_n(ours.get('p50_ms'), '.1f')}",
                f"{_n(b.get('p99_ms'), '.1f')} -> {_n(ours.get('p99_ms'), '.1f')}",
                f"{_n(b.get('db_round_trips'), 'g')} -> "
                f"{_n(profile.get('db_round_trips_per_request') if profile else None, 'g')}",
                f"{_n(b.get('presigns'), '.2f')} -> {_n(_presigns(profile), '.2f')}",
            ]
        )
    lines += _table(
        ["endpoint", "ratio", "p50 ms", "p99 ms", "PostgreSQL round trips / request", "presigns / request"], rows
    )
    return [*lines, ""]


def _growth(points: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    if len(points) < 2:
        return {}
    first, last = points[0], points[-1]
    out = {}
    for endpoint in ("note_audio", "playback"):
        a, b = _scale_run(first, "ours", endpoint), _scale_run(last, "ours", endpoint)
        ca, cb = _scale_run(first, "ceiling", endpoint), _scale_run(last, "ceiling", endpoint)
        if a.get("p50_ms") and b.get("p50_ms"):
            out[endpoint] = {
                "from": first["size"],
                "to": last["size"],
                "p50_from": a["p50_ms"],
                "p50_to": b["p50_ms"],
                "ours": b["p50_ms"] / a["p50_ms"],
                "ceiling": cb["p50_ms"] / ca["p50_ms"] if ca.get("p50_ms") and cb.get("p50_ms") else None,
            }
    return out


def _throughput(r: dict[str, Any], png: bool) -> list[str]:
    t = r["throughput"]
    c = t["main_concurrency"]
    main = t["by_level"][str(c)]
    rounds = r["plan"]["rounds"]
    alone = [e.replace("_", " ") for e in ENDPOINT_TITLES if e in main and "ceiling" not in main[e]]
    complete_paired = "ceiling" in main.get("complete", {})
    lines = [
        f"## Throughput at concurrency {c}",
        "",
        (
            f"{rounds} alternating round(s) per app (service first, then ceiling first, ...), "
            f"{r['plan']['duration_s']} s each; requests/s over all rounds, percentiles over every request. "
            "**ratio** is service / ceiling requests/s: the median of the per-round ratios, with their range. "
            + (f"{' and '.join(alone)} {'has' if len(alone) == 1 else 'have'} no ceiling route. " if alone else "")
            + f"Each complete consumes a pending clip: at most {r['plan']['complete_cap']} clips per run"
            + (" and app" if complete_paired else "")
            + ", each with a real `note.m4a` to verify"
            + (
                "; both apps HEAD and GET it from the same store, moto (the emulator, one Python process), whose "
                "capacity bounds both: complete's ratio says how much the service adds on top of that store, and "
                "the profiles below show its own cost without the store's queue."
                if complete_paired
                else " (complete is bounded by moto, the store emulator)."
            )
        ),
        "",
    ]
    rows = []
    for endpoint in ENDPOINT_TITLES:
        row = main.get(endpoint, {})
        for app in ("ours", "ceiling"):
            if app not in row:
                continue
            m = row[app]
            ratio = row.get("ratio") if app == "ours" else None
            ratio_text = (
                f"**{_n(ratio['median'], '.2f')}** ({_n(ratio.get('min'), '.2f')}-{_n(ratio.get('max'), '.2f')})"
                if ratio and ratio.get("median") is not None
                else ""
            )
            rows.append(
                [
                    ENDPOINT_TITLES[endpoint] if app == "ours" else "",
                    "service" if app == "ours" else "ceiling",
                    m.get("rps"),
                    m.get("p50_ms"),
                    m.get("p95_ms"),
                    m.get("p99_ms"),
                    m.get("count"),
                    m.get("errors"),
                    ratio_text,
                    _n(m.get("cpu_pct"), ".0f", "%"),
                ]
            )
    lines += _table(
        ["endpoint", "app", "requests/s", "p50 ms", "p95 ms", "p99 ms", "requests", "errors", "ratio", "loadgen CPU"],
        rows,
    )
    lines += [
        "",
        (
            "loadgen CPU is the load generator's own CPU use (percent of one core); near 100% it, not the "
            "server, would be the limit. The load generator, PostgreSQL, moto and gunicorn share the same "
            f"{r['machine']['nproc']} CPUs."
        ),
        "",
    ]
    other = r.get("other_load", {}).get("throughput")
    if other:
        lines += [_other_load_sentence(other, "the throughput runs"), ""]
    samples = [s for run in r.get("load_runs", []) for s in run["error_samples"]][:5]
    if samples:
        lines += ["Failed request samples:", "", "```", *samples, "```", ""]
    outcomes = r.get("complete_outcomes")
    if outcomes is None and r.get("completed_ready") is not None:  # results from before the complete ceiling
        outcomes = {"ours": {"statuses": r["completed_ready"]}}
    if outcomes:
        sentences = []
        for app, outcome in outcomes.items():
            statuses = outcome.get("statuses", {})
            durations = outcome.get("measured_duration_ms")
            measured = (
                " (measured duration "
                + ", ".join(f"{ms} ms x{n:,}" for ms, n in sorted(durations.items(), key=lambda kv: -kv[1]))
                + ")"
                if durations
                else ""
            )
            sentences.append(
                f"{_app_title(app).capitalize()}: of the {sum(statuses.values()):,} pending clips (each with the "
                f"real `note.m4a` uploaded) handed to its complete runs, {statuses.get('ready', 0):,} became "
                f"`ready`{measured}, "
                f"{statuses.get('pending', 0):,} were never sent before a run's time was up, "
                f"{statuses.get('rejected', 0):,} were rejected."
            )
        lines += [
            "Complete (warm-up and measured requests: HEAD + ranged GET + sniff + parse + compare-and-set UPDATE). "
            + " ".join(sentences),
            "",
        ]
    if len(t["levels"]) > 1:
        lines += ["### Throughput vs concurrency", ""]
        if png:
            lines += [f"![requests/s vs concurrency]({PNG_THROUGHPUT})", ""]
        header = (
            ["endpoint", "app"]
            + [f"c={lvl} req/s (p50 ms)" for lvl in t["levels"]]
            + [f"ratio c={lvl}" for lvl in t["levels"]]
        )
        rows = []
        for endpoint in ENDPOINT_TITLES:
            for app in ("ours", "ceiling"):
                cells = []
                for lvl in t["levels"]:
                    m = t["by_level"][str(lvl)].get(endpoint, {}).get(app)
                    cells.append(f"{_n(m.get('rps'), ',.0f')} ({_n(m.get('p50_ms'), '.1f')})" if m else "")
                if not any(cells):
                    continue
                ratios = (
                    [t["by_level"][str(lvl)].get(endpoint, {}).get("ratio", {}).get("median") for lvl in t["levels"]]
                    if app == "ours"
                    else [None] * len(t["levels"])
                )
                rows.append(
                    [
                        endpoint.replace("_", " "),
                        "service" if app == "ours" else "ceiling",
                        *cells,
                        *[f"{_n(x, '.2f')}" if x else "" for x in ratios],
                    ]
                )
        lines += [*_table(header, rows), ""]
    return lines


def _app_title(app: str) -> str:
    return "service" if app == "ours" else "ceiling"


def _category_ms(profile: dict[str, Any]) -> dict[str, float]:
    return {c["name"]: c["ms_per_request"] for c in profile["categories"]}


def _other_load_sentence(other: dict[str, Any], during: str) -> str:
    top = ", ".join(f"`{t['command']}` {_n(t['cpu_s'], '.0f')} s" for t in other["other_top"]) or "none"
    capacity = other["seconds"] * _nproc()
    return (
        f"During {during} ({_n(other['seconds'], '.0f')} s, {_n(capacity, '.0f')} CPU-seconds available) "
        f"the machine's CPUs were {_n(other['machine_busy_pct'], '.0f')}% busy. CPU-seconds used: this run's "
        f"processes {_n(other.get('ours_cpu_s', 0), '.0f')}, PostgreSQL (all databases) "
        f"{_n(other['postgres_cpu_s'], '.0f')}, processes this run did not start "
        f"{_n(other['other_cpu_s'], '.0f')} (sampled each second; top: {top})."
    )


def _nproc() -> int:
    return len(os.sched_getaffinity(0))


def _trips(profile: dict[str, Any]) -> str:
    """``4 round trips (SELECT 1, BEGIN, SELECT, ROLLBACK)``: per request, and their kinds."""
    kinds = profile.get("db_round_trips_by_kind", {})
    parts = [k if abs(v - 1) < 0.01 else f"{k} x{_n(v, 'g')}" for k, v in kinds.items()]
    n = profile["db_round_trips_per_request"]
    return f"{_n(n, 'g')} round trip{'' if n == 1 else 's'}" + (f" ({', '.join(parts)})" if parts else "")


#: botocore's operation names as the report shows them.
STORE_OPERATIONS = {"HeadObject": "HEAD", "GetObject": "GET"}


def _store(profile: dict[str, Any] | None) -> str:
    """``2 calls (HEAD, GET) / 10.04``: store API calls per request, their kinds, and their ms."""
    if not profile:
        return "-"
    n = profile.get("store_calls_per_request")
    if n is None:  # results from before storecalls.py
        return "n/a"
    if not n:
        return "0"
    kinds = profile.get("store_calls_by_kind", {})
    parts = [
        STORE_OPERATIONS.get(k, k) if abs(v - 1) < 0.01 else f"{STORE_OPERATIONS.get(k, k)} x{_n(v, 'g')}"
        for k, v in kinds.items()
    ]
    text = f"{_n(n, 'g')} call{'' if n == 1 else 's'}" + (f" ({', '.join(parts)})" if parts else "")
    return f"{text} / {_n(profile.get('store_ms_per_request'), '.2f')}"


def _store_calls(profile: dict[str, Any]) -> str:
    """``2 store calls (HEAD, GET) in 10.04 ms`` per request, for a sentence."""
    text = _store(profile)
    if text in ("n/a", "-", "0"):
        return f"store calls {text}"
    calls, _, ms = text.rpartition(" / ")
    return f"{calls.replace('call', 'store call', 1)} in {ms} ms"


def _share(part: Any, whole: Any, scale: float = 1.0) -> float | None:
    """``scale * part / whole``, or None when either is missing or ``whole`` is 0."""
    if _missing(part) or _missing(whole) or not whole:
        return None
    return scale * part / whole


def _inclusive_or_none(profile: dict[str, Any], prefix: str) -> float | None:
    """Like :func:`_inclusive_ms`, but None when the profile has no such function (older results)."""
    if not any(c["name"].startswith(prefix) for c in profile.get("inclusive", [])):
        return None
    return _inclusive_ms(profile, prefix)


def _inclusive_ms(profile: dict[str, Any], prefix: str) -> float:
    return sum(c["ms_per_request"] for c in profile["inclusive"] if c["name"].startswith(prefix))


def _findings(prof: dict[str, Any], endpoints: list[str], paired: list[str]) -> list[str]:
    """Bullet points computed from the profiles: what makes the service slower than the ceiling."""
    out = []
    for e in paired:
        o, c = prof[f"ours/{e}"], prof[f"ceiling/{e}"]
        gap = o["wall_ms_per_request"] - c["wall_ms_per_request"]
        db_gap = o["db_ms_per_request"] - c["db_ms_per_request"]
        cats_o, cats_c = _category_ms(o), _category_ms(c)
        python = {
            n: cats_o.get(n, 0.0) - cats_c.get(n, 0.0)
            for n in set(cats_o) | set(cats_c)
            if not n.startswith("PostgreSQL")
        }
        top = sorted(python.items(), key=lambda kv: -kv[1])[:4]
        out.append(
            f"- **{e.replace('_', ' ')}**: {_n(o['wall_ms_per_request'], '.2f')} vs "
            f"{_n(c['wall_ms_per_request'], '.2f')} ms per request ({_n(gap, '+.2f')} ms). "
            f"PostgreSQL: {_trips(o)} in "
            f"{_n(o['db_ms_per_request'], '.2f')} ms vs {_trips(c)} in {_n(c['db_ms_per_request'], '.2f')} ms "
            f"({_n(db_gap, '+.2f')} ms). Python side, the largest differences: "
            + ", ".join(f"{n} {_n(v, '+.2f')} ms" for n, v in top)
            + "."
        )
    presign = [
        (
            e,
            _inclusive_ms(prof[f"ours/{e}"], "presign"),
            _inclusive_ms(prof[f"ceiling/{e}"], "presign"),
            prof[f"ours/{e}"]["wall_ms_per_request"],
            prof[f"ceiling/{e}"]["wall_ms_per_request"],
            _presigns(prof[f"ours/{e}"]),
            _presigns(prof[f"ceiling/{e}"]),
        )
        for e in paired
    ]
    presign = [row for row in presign if row[1] or row[2] or row[5] or row[6]]
    if presign:
        out.append(
            "- **Presigning** (getting a presigned URL: the storage adapter's `presign_get`/`presign_put` with any "
            "cache they keep, the ceiling's `generate_presigned_url`; URLs signed per request, service / ceiling: "
            + ", ".join(f"{e.replace('_', ' ')} {_n(no, '.2f')} / {_n(nc, '.2f')}" for e, *_, no, nc in presign)
            + "): "
            + "; ".join(
                f"{e.replace('_', ' ')} {_n(po, '.2f')} ms ({_n(_share(po, wo, 100), '.0f')}% of the "
                f"service's time) vs {_n(pc, '.2f')} ms ({_n(_share(pc, wc, 100), '.0f')}% of the ceiling's)"
                for e, po, pc, wo, wc, _no, _nc in presign
            )
            + "."
        )
    pings = {e: prof[f"ours/{e}"]["calls_per_request"].get("pre-pings (SELECT 1)", 0) for e in endpoints}
    if any(pings.values()):
        out.append(
            "- **Pre-ping**: every pool checkout first sends `SELECT 1` (SQLAlchemy's `pool_pre_ping`; "
            "psycopg2's dialect pings in autocommit, so one round trip each): "
            + ", ".join(f"{e.replace('_', ' ')} {_n(n, 'g')}" for e, n in pings.items())
            + " per request."
        )
    reads = [
        e
        for e in endpoints
        if {"BEGIN", "ROLLBACK"} <= set(prof[f"ours/{e}"].get("db_round_trips_by_kind", {}))
        and "COMMIT" not in prof[f"ours/{e}"].get("db_round_trips_by_kind", {})
    ]
    if reads:
        out.append(
            "- **Reads inside a transaction**: "
            + ", ".join(e.replace("_", " ") for e in reads)
            + " send `BEGIN` before and `ROLLBACK` after their `SELECT` (a read session that opens a "
            "transaction and rolls it back): two round trips per request that an autocommit read would "
            "not make."
        )
    limiter = {e: _inclusive_ms(prof[f"ours/{e}"], "rate limit") for e in endpoints}
    tokens = {e: _inclusive_ms(prof[f"ours/{e}"], "token check") for e in endpoints}
    logs = {e: _inclusive_ms(prof[f"ours/{e}"], "request log") for e in endpoints}
    if any(limiter.values()):
        out.append(
            "- **Rate limiter** (`OwnerRateLimiter` on `limits`, one counter increment per request): "
            + ", ".join(f"{e.replace('_', ' ')} {_n(limiter[e], '.2f')} ms" for e in endpoints)
            + " per request, of which the token check it triggers first "
            + ", ".join(f"{_n(tokens[e], '.2f')}" for e in endpoints)
            + " ms (the token is verified once)."
        )
    once = [
        ("building the query's expressions", "query expressions built per request"),
        ("SQLAlchemy statement cache key", "SQLAlchemy cache key computed per request"),
        ("PyJWT HMAC key checks", "PyJWT re-checking the HMAC secret on every decode"),
    ]
    parts = []
    for prefix, text in once:
        values = {e: _inclusive_ms(prof[f"ours/{e}"], prefix) for e in endpoints}
        if any(v >= 0.005 for v in values.values()):
            parts.append(f"{text}: " + ", ".join(f"{e.replace('_', ' ')} {_n(v, '.2f')} ms" for e, v in values.items()))
    if parts:
        out.append(
            "- **Per-request work that does not depend on the request** (could be done once): " + "; ".join(parts) + "."
        )
    if any(logs.values()):
        out.append(
            "- **Request log line** (one JSON line per request): "
            + ", ".join(f"{e.replace('_', ' ')} {_n(logs[e], '.2f')} ms" for e in endpoints)
            + "."
        )
    if "list" in endpoints:
        lst = prof["ours/list"]
        out.append(
            f"- **list**: marshmallow dump of the page {_n(_inclusive_ms(lst, 'marshmallow dump'), '.2f')} ms, "
            f"SQLAlchemy {_n(_category_ms(lst).get('SQLAlchemy (ORM, Core, pool)', 0), '.2f')} ms "
            f"(21 rows per page: 20 and one that tells whether there is a next), of "
            f"{_n(lst['wall_ms_per_request'], '.2f')} ms."
        )
    if "complete" in endpoints:
        cp = prof["ours/complete"]
        store = _inclusive_ms(cp, "store HEAD") + _inclusive_ms(cp, "ranged GET")
        text = (
            f"- **complete**: in the service, HEAD and ranged GET + sniff + parse take {_n(store, '.2f')} of "
            f"{_n(cp['wall_ms_per_request'], '.2f')} ms ({_store_calls(cp)}: moto, the emulator, on "
            f"loopback); PostgreSQL {_trips(cp)} in {_n(cp['db_ms_per_request'], '.2f')} ms, "
            f"{_n(cp['calls_per_request'].get('SQLAlchemy pool checkouts', 0), 'g')} pool checkouts."
        )
        cc = prof.get("ceiling/complete")
        if cc:
            sniff, parse = _inclusive_or_none(cc, "audio sniff"), _inclusive_or_none(cc, "audio parse")
            text += (
                f" The ceiling: {_n(cc['wall_ms_per_request'], '.2f')} ms, {_store_calls(cc)}, the "
                f"service's sniff {_n(sniff, '.2f')} ms and parse {_n(parse, '.2f')} ms, PostgreSQL {_trips(cc)} "
                f"in {_n(cc['db_ms_per_request'], '.2f')} ms."
            )
        out.append(text)
    return [*out, ""]


def _profiles(r: dict[str, Any]) -> list[str]:
    prof = r.get("profiles")
    if not prof:
        return []
    endpoints = [e for e in ENDPOINT_TITLES if f"ours/{e}" in prof]
    if not endpoints:
        return []
    paired = [e for e in endpoints if f"ceiling/{e}" in prof]
    n = prof[f"ours/{endpoints[0]}"]["n"]
    lines = [
        "## Where the time goes (profiles)",
        "",
        (
            f"In-process and single-threaded (`hotpaths.py`, {n} requests per endpoint after a warm-up): each "
            "request's WSGI environ is built beforehand and the app is called as gunicorn would call it, so these "
            "are the app's own costs without sockets or HTTP parsing, on the same database and store as the load "
            "runs. Every PostgreSQL round trip is counted and timed at the driver (`dbtiming.py`: an `execute` "
            "outside a transaction also sends `BEGIN`, so it counts 2; its time includes waiting for the "
            "PostgreSQL process to be scheduled); every store call (HEAD, GET) and every presigned URL is counted "
            "at botocore (`storecalls.py`), store calls with their time. Shares come from a pyinstrument profile, "
            "each sample attributed to the innermost library on its stack, and are applied to the unprofiled time "
            "per request."
        ),
        "",
    ]
    rows = []
    for e in endpoints:
        o, c = prof[f"ours/{e}"], prof.get(f"ceiling/{e}")
        rows.append(
            [
                e.replace("_", " "),
                f"{_n(o['wall_ms_per_request'], '.2f')} ({_n(o['cpu_ms_per_request'], '.2f')})",
                f"{_trips(o)} / {_n(o['db_ms_per_request'], '.2f')}",
                _store(o),
                f"{_n(c['wall_ms_per_request'], '.2f')} ({_n(c['cpu_ms_per_request'], '.2f')})" if c else "-",
                f"{_trips(c)} / {_n(c['db_ms_per_request'], '.2f')}" if c else "-",
                _store(c),
                f"{_n(_share(c['wall_ms_per_request'], o['wall_ms_per_request']), '.2f')}" if c else "",
            ]
        )
    lines += _table(
        [
            "endpoint",
            "service ms/request (CPU)",
            "service PostgreSQL / ms",
            "service store calls / ms",
            "ceiling ms/request (CPU)",
            "ceiling PostgreSQL / ms",
            "ceiling store calls / ms",
            "ceiling / service time",
        ],
        rows,
    )
    lines += ["", "### Findings", "", *_findings(prof, endpoints, paired)]
    if paired:
        lines += [
            "",
            "### Where the service's extra time goes",
            "",
            (
                "Service minus ceiling, ms per request, by library (innermost on the stack). Positive: what the "
                "service spends beyond the bare stack; the total is the difference of the wall times above."
            ),
            "",
        ]
        names = sorted({n for e in paired for app in ("ours", "ceiling") for n in _category_ms(prof[f"{app}/{e}"])})
        diffs = {
            e: {
                n: _category_ms(prof[f"ours/{e}"]).get(n, 0.0) - _category_ms(prof[f"ceiling/{e}"]).get(n, 0.0)
                for n in names
            }
            for e in paired
        }
        names.sort(key=lambda n: -sum(diffs[e][n] for e in paired))
        rows = [
            [n, *[f"{_n(diffs[e][n], '+.2f')}" for e in paired]]
            for n in names
            if any(abs(diffs[e][n]) >= 0.005 for e in paired)
        ]
        rows.append(["**total**", *[f"**{_n(sum(diffs[e].values()), '+.2f')}**" for e in paired]])
        lines += _table(["library", *[e.replace("_", " ") for e in paired]], rows)
    lines += ["", "### Calls per request", "", "cProfile call counts divided by the number of requests.", ""]
    labels = sorted(
        {
            k
            for e in endpoints
            for app in ("ours", "ceiling")
            for k in prof.get(f"{app}/{e}", {}).get("calls_per_request", {})
        }
    )
    rows = []
    for label in labels:
        cells = []
        for e in endpoints:
            o = prof[f"ours/{e}"]["calls_per_request"].get(label, 0)
            c = prof[f"ceiling/{e}"]["calls_per_request"].get(label, 0) if f"ceiling/{e}" in prof else None
            cells.append(f"{_n(o, 'g')} / {_n(c, 'g')}" if c is not None else f"{_n(o, 'g')} / -")
        rows.append([label, *cells])
    lines += _table(["per request", *[f"{e.replace('_', ' ')} service / ceiling" for e in endpoints]], rows)
    lines += ["", "### Shares of request time by library", "", "ms per request (share of the request's time):", ""]
    cols = [
        (f"{e.replace('_', ' ')} {_app_title(a)}", {c["name"]: c for c in prof[f"{a}/{e}"]["categories"]})
        for e in endpoints
        for a in ("ours", "ceiling")
        if f"{a}/{e}" in prof
    ]
    names = sorted(
        {n for _, cs in cols for n in cs}, key=lambda n: -max(cs.get(n, {}).get("ms_per_request", 0) for _, cs in cols)
    )
    rows = [
        [
            n,
            *[
                f"{_n(cs[n]['ms_per_request'], '.2f')} ({_n(cs[n]['pct'], '.0f')}%)" if n in cs else ""
                for _, cs in cols
            ],
        ]
        for n in names
    ]
    lines += _table(["library", *[t for t, _ in cols]], rows)
    lines += [
        "",
        "### Time under notable functions",
        "",
        ("Inclusive (the function and everything it calls), ms per request; each function counted once per stack."),
        "",
    ]
    cols = [
        (f"{e.replace('_', ' ')} {_app_title(a)}", {c["name"]: c for c in prof[f"{a}/{e}"]["inclusive"]})
        for e in endpoints
        for a in ("ours", "ceiling")
        if f"{a}/{e}" in prof
    ]
    names = sorted({n for _, cs in cols for n in cs})
    rows = [[n, *[f"{_n(cs[n]['ms_per_request'], '.2f')}" if n in cs else "" for _, cs in cols]] for n in names]
    lines += _table(["function", *[t for t, _ in cols]], rows)
    lines += ["", "### Functions with the most self time (service)", ""]
    for e in endpoints:
        top = prof[f"ours/{e}"]["top_self"][:8]
        lines += [f"- **{e.replace('_', ' ')}**: " + "; ".join(f"`{t['name']}` {_n(t['pct'], '.0f')}%" for t in top)]
    lines += ["", "Full pyinstrument trees: `profile-*.txt` in the raw results folder of the run.", ""]
    return lines


def _scaling(r: dict[str, Any], png: bool) -> list[str]:
    points = r.get("scaling", [])
    if not points:
        return []
    p = r["plan"]
    lines = [
        "## p50 vs table size",
        "",
        (
            f"The table grows by COPY from {_size(points[0]['size'])} to {_size(points[-1]['size'])} clips "
            "(about 100 clips per owner over 20 notes, so growth adds owners; 85% ready, 4% pending, 3% rejected, "
            "8% expired; VACUUM ANALYZE after each load). At each size "
            f"{p['targets']} ready clips are drawn from the whole table; note audio and playback are measured "
            f"against them at concurrency {p['scale_concurrency']} for {p['scale_duration_s']} s per app, "
            + (
                "in two alternating rounds (service, ceiling, ceiling, service)"
                if p.get("scale_ceiling", True)
                else "service only"
            )
            + f", each run after a {p['warmup_s']} s warm-up. Playback and note audio "
            "only presign, so this table has no objects in the store."
            + (
                " The sizes are measured minutes apart: the ceiling, on the same table at the same time, shows how "
                "much of a change between sizes is the machine rather than the service."
                if p.get("scale_ceiling", True)
                else ""
            )
        ),
        "",
    ]
    if png:
        lines += [f"![p50 vs table size]({PNG_SCALING})", ""]
    rows = []
    for point in points:
        table_mib = (point["table_bytes"]["heap"] + point["table_bytes"]["indexes"]) / 2**20
        row = [_size(point["size"]), _n(table_mib, ",.0f")]
        for endpoint in ("note_audio", "playback"):
            for app in ("ours", "ceiling"):
                run = _scale_run(point, app, endpoint)
                row.append(f"{_n(run.get('p50_ms'), '.2f')} / {_n(run.get('p99_ms'), '.2f')}" if run else "")
        row += [f"{_n(point['explain'][e]['execution_ms'], '.3f')}" for e in ("note_audio", "playback")]
        other = point.get("other_load")
        row.append(
            f"{_n(other['machine_busy_pct'], '.0f')}% / {_n(other['other_cpu_s'] / other['seconds'], '.2f')}"
            if other
            else ""
        )
        rows.append(row)
    lines += _table(
        [
            "clips",
            "table + indexes MiB",
            "note audio service p50 / p99 ms",
            "note audio ceiling",
            "playback service",
            "playback ceiling",
            "note audio SQL exec ms",
            "playback SQL exec ms",
            "machine busy / others' CPUs in use",
        ],
        rows,
    )
    growth = _growth(points)
    if growth:
        lines += [
            "",
            "Growth of p50 from the smallest to the largest table: "
            + "; ".join(
                f"{e.replace('_', ' ')}: service {_n(g['ours'], '.2f')}x"
                + (f", ceiling {_n(g['ceiling'], '.2f')}x" if g["ceiling"] else "")
                for e, g in growth.items()
            )
            + ".",
        ]
    last = points[-1]
    lines += [
        "",
        f"### EXPLAIN (ANALYZE, BUFFERS) at {_size(last['size'])} clips",
        "",
        (
            "The service's own statements, captured from the running app (SQLAlchemy `before_cursor_execute`) "
            "with their real parameters, explained on its connection (second execution; the first warms "
            "the caches)."
        ),
        "",
    ]
    for endpoint, ex in last["explain"].items():
        used = ", ".join(f"`{i}`" for i in ex["indexes"]) or "none"
        lines += [
            (
                f"**{EXPLAIN_TITLES.get(endpoint, endpoint)}**: indexes used {used}; sequential scan: "
                f"{'yes' if ex['seq_scan'] else 'no'}; execution {ex['execution_ms']} ms."
            ),
            "",
            "```sql",
            ex["sql"].strip(),
            "```",
            "",
            "```",
            ex["plan"],
            "```",
            "",
        ]
    rows = [
        [
            _size(pt["size"]),
            *[
                ", ".join(pt["explain"][e]["indexes"]) + (" + Seq Scan" if pt["explain"][e]["seq_scan"] else "")
                for e in pt["explain"]
            ],
        ]
        for pt in points
    ]
    lines += ["Indexes used at every size:", ""]
    lines += [*_table(["clips", *[e.replace("_", " ") for e in last["explain"]]], rows), ""]
    return lines


def _sweeper(r: dict[str, Any]) -> list[str]:
    sweeps = [(p["size"], p["sweeper"]) for p in r.get("scaling", []) if "sweeper" in p]
    if not sweeps:
        return []
    lines = [
        "## Sweeper at scale",
        "",
        (
            "`Sweeper(db, storage, settings).run(apply=False)` (dry run: reads everything, changes nothing) over the "
            "scaling table, each size in a fresh process (`sweepbench.py`). **The bucket listing is a stand-in**: "
            "moto lists ~1000 keys per XML request and would dominate the measurement at 10^6, so a subclass of "
            "`S3Storage` yields `ListedObject` pages generated from the table in key order through a server-side "
            "cursor: one object per clip except every 500th ready clip (a missing object), plus an orphan after "
            "every 1000th clip, so objects match rows in number. Reading those pages from PostgreSQL is inside the "
            "measured time (a real S3 listing, ~1000 keys per request, would be slower). Everything else is the "
            "service's real code on PostgreSQL."
        ),
        "",
        (
            "Peak RSS is `getrusage(RUSAGE_SELF).ru_maxrss`, read after imports and the first connection "
            "(before) and after the sweep; `VmHWM` (/proc/self/status) is the same peak for this process image "
            "alone. They agree when the sweeper's own peak is above the harness's: on Linux a child's `ru_maxrss` "
            "starts at its parent's peak, which is why the harness loads data in separate processes and stays "
            "small (its peak at each spawn is shown)."
        ),
        "",
    ]
    rows = [
        [
            _size(size),
            s["rows_scanned"],
            s["objects_scanned"],
            f"{_n(s['seconds'], '.1f')}",
            f"{_n(s['rows_scanned'] / s['seconds'], ',.0f')}" if s["seconds"] else "",
            f"{_n(s['peak_rss_before_kib'] / 1024, '.0f')} / {_n(s['peak_rss_kib'] / 1024, '.0f')}",
            f"{_n(s.get('vm_hwm_before_kib', 0) / 1024, '.0f')} / {_n(s.get('vm_hwm_kib', 0) / 1024, '.0f')}",
            f"{_n(s.get('harness_peak_rss_kib', 0) / 1024, '.0f')}",
            " / ".join(_n(s[k], ",") for k in ("would_expire", "orphans", "missing_objects", "late_objects")),
        ]
        for size, s in sweeps
    ]
    lines += [
        *_table(
            [
                "clips",
                "rows scanned",
                "objects scanned",
                "seconds",
                "rows/s",
                "ru_maxrss before / after MiB",
                "VmHWM before / after MiB",
                "harness peak MiB",
                "would expire / orphans / missing / late",
            ],
            rows,
        ),
        "",
    ]
    return lines


def _footprint(r: dict[str, Any]) -> list[str]:
    lines = ["## Footprint", ""]
    mem = r.get("memory")
    if mem:
        lines += [
            (
                "gunicorn workers after the throughput runs (warm: pools filled, every route used), MiB. "
                "USS is the memory a worker does not share with others (what one more worker costs)."
            ),
            "",
        ]
        rows = [
            [("service" if app == "ours" else "ceiling"), w["pid"], w["rss_mib"], w["uss_mib"]]
            for app in ("ours", "ceiling")
            for w in mem[app]
        ]
        lines += [*_table(["app", "worker pid", "RSS MiB", "USS MiB"], rows), ""]
    s = r.get("startup")
    if s:
        lines += [
            (
                f"`import advanced_notes` and `create_app()` in a fresh interpreter, median of {s['runs']} runs: "
                f"import **{_n(s['import_ms_median'], '.0f')} ms**, "
                f"create_app **{_n(s['create_app_ms_median'], '.0f')} ms**, "
                f"total **{_n(s['total_ms_median'], '.0f')} ms** (all runs: import {s['import_ms_all']}, create_app "
                f"{s['create_app_ms_all']})."
            ),
            "",
        ]
    heavy = r.get("heaviest_imports")
    if heavy:
        lines += [
            "Heaviest top-level imports of that (`python -X importtime`, cumulative ms; a package's figure "
            "includes what it imports): "
            + ", ".join(f"{h['package']} {_n(h['cumulative_ms'], '.0f')}" for h in heavy)
            + ".",
            "",
        ]
    return lines


def _reproduce(r: dict[str, Any]) -> list[str]:
    return [
        "## Reproduce",
        "",
        "```sh",
        ".venv/bin/pip install aiohttp psutil matplotlib pyinstrument   # the bench extra",
        r["plan"]["command"],
        "```",
        "",
        (
            "`--quick` is the CI smoke run (under a minute, small tables, one concurrency; exits 1 if any "
            "request failed). Raw results (`results.json`, every loadgen run, pyinstrument trees, server logs) "
            "are written to the folder printed at start (`/tmp/an-perf-<time>-<pid>/` unless `--raw-dir`)."
        ),
        "",
    ]


def write(results: dict[str, Any], report_path: Path, png_dir: Path) -> None:
    """Write the markdown report and its PNGs (PNG paths are relative to the report)."""
    report_path.parent.mkdir(parents=True, exist_ok=True)
    png_dir.mkdir(parents=True, exist_ok=True)
    png_throughput = plot_throughput(results["throughput"], png_dir / PNG_THROUGHPUT)
    png_scaling = False
    if len(results.get("scaling", [])) >= 2:
        plot_scaling(results["scaling"], png_dir / PNG_SCALING)
        png_scaling = True
    lines = (
        _header(results)
        + _failed_requests(results)
        + _summary(results)
        + _before_after(results)
        + _throughput(results, png_throughput)
        + _profiles(results)
        + _scaling(results, png_scaling)
        + _sweeper(results)
        + _footprint(results)
        + _reproduce(results)
    )
    report_path.write_text("\n".join(lines).rstrip() + "\n")

"""The report: ``docs/performance.md`` and its PNG plots, generated from one run's results.

Everything in the report is a figure of that run. Absolute numbers drift on a shared
machine, so the headline figures are ratios measured side by side in the same run
(service / ceiling, p50 at 10^6 / p50 at 10^3).
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import pgutil

REPO_DIR = Path(__file__).resolve().parents[2]
PACKAGES = ("flask", "flask-smorest", "marshmallow", "sqlalchemy", "psycopg2-binary", "boto3", "botocore",
            "pyjwt", "gunicorn", "moto", "aiohttp", "pyinstrument")
ENDPOINT_TITLES = {"create": "create (POST /api/audio-clips)",
                   "complete": "complete (POST .../complete)",
                   "playback": "playback (GET .../playback)",
                   "note_audio": "note audio (GET /api/notes/&lt;id&gt;/audio)",
                   "list": "list (GET /api/audio-clips?limit=20)"}
THROUGHPUT_TARGET = 0.8
P50_GROWTH_TARGET = 1.2
PNG_THROUGHPUT = "perf-throughput-vs-concurrency.png"
PNG_SCALING = "perf-p50-vs-table-size.png"


# -- machine --------------------------------------------------------------------------------------

def machine_info() -> dict[str, Any]:
    """nproc, CPU model, memory, versions, the measured code's commit, date and load average."""
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
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": len(os.sched_getaffinity(0)), "cpu_model": cpu, "memory_gib": round(mem_kib / 2**20, 1),
        "kernel": platform.release(), "python": platform.python_version(), "postgresql": pgutil.server_version(),
        "packages": versions, "commit": _git("rev-parse", "--short", "HEAD"),
        # Read-only (--no-optional-locks: never even refreshes the index): did the measured
        # code differ from the commit?
        "uncommitted_changes": bool(_git("--no-optional-locks", "status", "--porcelain", "--",
                                         "advanced_notes", "migrations", "wsgi.py")),
        "load_average_start": os.getloadavg(),
    }


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO_DIR, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


# -- formatting -----------------------------------------------------------------------------------

def _f(value: Any, digits: int = 1) -> str:
    if value is None:
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
    fig, axes = plt.subplots(1, len(endpoints), figsize=(4 * len(endpoints), 3.6), sharex=True)
    for ax, endpoint in zip(axes, endpoints):
        for app, style in (("ours", "o-"), ("ceiling", "s--")):
            ys = [throughput["by_level"][str(c)][endpoint].get(app, {}).get("rps") for c in levels]
            if any(y is not None for y in ys):
                ax.plot(levels, ys, style, label="service" if app == "ours" else "ceiling")
        ax.set_title(endpoint.replace("_", " "))
        ax.set_xscale("log", base=2)
        ax.set_xticks(levels, [str(c) for c in levels])
        ax.set_xlabel("concurrent connections")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("requests/s")
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
    return [
        "# Performance",
        "",
        "Generated by `bench/perf/run.py` from one run; every figure below is what that run measured.",
        "The machine is shared (other test suites may run at the same time), so absolute figures drift",
        "from run to run: the figures to quote are the **ratios**, measured side by side in the same run.",
        "",
        f"- **Command**: `{p['command']}` (from the repository root; {r['wall_s'] / 60:.1f} min end to end)",
        f"- **Date**: {m['date']}; code at commit `{m['commit']}`{dirty}",
        f"- **Machine**: {m['nproc']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB memory, Linux {m['kernel']}, "
        f"Python {m['python']}, {m['postgresql']}",
        f"- **Load average** (1/5/15 min) at start {_load(m['load_average_start'])}, at end "
        f"{_load(m.get('load_average_end'))}",
        f"- **Packages**: {pkgs}",
        f"- **Servers**: gunicorn `--workers {p['workers']} --threads {p['threads']} --worker-class gthread` "
        "for both apps, on loopback; PostgreSQL on 127.0.0.1; S3 is moto's server (`moto_server`) on loopback.",
        "- **Load**: a separate process (`loadgen.py`, aiohttp), closed loop: N connections each sending the "
        f"next request as soon as the previous answer arrived; {p['warmup_s']} s warm-up not recorded, "
        f"then {p['duration_s']} s measured per run. Latency is client-side, ms.",
        "",
    ]


def _load(values: Any) -> str:
    return "n/a" if not values else " / ".join(f"{v:.2f}" for v in values)


def _summary(r: dict[str, Any]) -> list[str]:
    t = r["throughput"]
    main = t["by_level"][str(t["main_concurrency"])]
    ratios = {e: main[e]["ratio"]["median"] for e in ("create", "playback", "note_audio") if "ratio" in main[e]}
    worst = min(ratios.values()) if ratios and None not in ratios.values() else None
    lines = ["## Summary", "", "| target | measured | verdict |", "|---|---|---|"]
    lines.append(f"| service / ceiling throughput >= {THROUGHPUT_TARGET} (each of create, playback, note audio, "
                 f"c={t['main_concurrency']}) | " + ", ".join(f"{e.replace('_', ' ')} {v:.2f}" for e, v in
                                                           ratios.items()) + f" | {_verdict(worst and worst >= THROUGHPUT_TARGET)} |")
    growth = _growth(r.get("scaling", []))
    if growth:
        for endpoint, g in growth.items():
            lines.append(f"| {endpoint.replace('_', ' ')} p50 at {_size(g['to'])} <= {P50_GROWTH_TARGET} x p50 at "
                         f"{_size(g['from'])} | {g['ours']:.2f}x ({g['p50_from']:.2f} -> {g['p50_to']:.2f} ms) | "
                         f"{_verdict(g['ours'] <= P50_GROWTH_TARGET)} |")
    sweeps = [(p["size"], p["sweeper"]) for p in r.get("scaling", []) if "sweeper" in p]
    if len(sweeps) >= 2:
        first, last = sweeps[0][1], sweeps[-1][1]
        flat = last["peak_rss_kib"] <= first["peak_rss_kib"] * 1.2
        lines.append(f"| sweeper peak RSS flat from {_size(sweeps[0][0])} to {_size(sweeps[-1][0])} rows | "
                     f"{first['peak_rss_kib'] / 1024:.0f} -> {last['peak_rss_kib'] / 1024:.0f} MiB | "
                     f"{_verdict(flat)} |")
    errors = sum(run["errors"] for run in r.get("load_runs", [])) + sum(
        run["errors"] for p in r.get("scaling", []) for run in p["runs"])
    lines.append(f"| no failed request | {errors} failed | {_verdict(errors == 0)} |")
    lines.append("")
    return lines


def _growth(points: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    if len(points) < 2:
        return {}
    first, last = points[0], points[-1]
    out = {}
    for endpoint in ("note_audio", "playback"):
        a, b = _scale_run(first, "ours", endpoint), _scale_run(last, "ours", endpoint)
        ca, cb = _scale_run(first, "ceiling", endpoint), _scale_run(last, "ceiling", endpoint)
        if a.get("p50_ms") and b.get("p50_ms"):
            out[endpoint] = {"from": first["size"], "to": last["size"], "p50_from": a["p50_ms"], "p50_to": b["p50_ms"],
                             "ours": b["p50_ms"] / a["p50_ms"],
                             "ceiling": cb["p50_ms"] / ca["p50_ms"] if ca.get("p50_ms") and cb.get("p50_ms") else None}
    return out


def _throughput(r: dict[str, Any], png: bool) -> list[str]:
    t = r["throughput"]
    c = t["main_concurrency"]
    main = t["by_level"][str(c)]
    rounds = r["plan"]["rounds"]
    lines = [f"## Throughput at concurrency {c}", "",
             f"{rounds} alternating round(s) per app (service first, then ceiling first, ...), "
             f"{r['plan']['duration_s']} s each; requests/s over all rounds, percentiles over every request. "
             "**ratio** is service / ceiling requests/s: the median of the per-round ratios, with their range. "
             "complete and list have no ceiling route (complete is bounded by moto, the store emulator: "
             f"at most {r['plan']['complete_cap']} clips per run, each a real `note.m4a` to verify).", ""]
    rows = []
    for endpoint in ENDPOINT_TITLES:
        row = main[endpoint]
        for app in ("ours", "ceiling"):
            if app not in row:
                continue
            m = row[app]
            ratio = row.get("ratio") if app == "ours" else None
            ratio_text = (f"**{ratio['median']:.2f}** ({ratio['min']:.2f}-{ratio['max']:.2f})"
                          if ratio and ratio["median"] is not None else "")
            rows.append([ENDPOINT_TITLES[endpoint] if app == "ours" else "", "service" if app == "ours" else "ceiling",
                         m["rps"], m["p50_ms"], m["p95_ms"], m["p99_ms"], m["count"], m["errors"], ratio_text,
                         f"{m['cpu_pct']:.0f}%"])
    lines += _table(["endpoint", "app", "requests/s", "p50 ms", "p95 ms", "p99 ms", "requests", "errors",
                     "ratio", "loadgen CPU"], rows)
    lines += ["", "loadgen CPU is the load generator's own CPU use (percent of one core); near 100% it, not the "
              "server, would be the limit. The load generator, PostgreSQL, moto and gunicorn share the same "
              f"{r['machine']['nproc']} CPUs.", ""]
    samples = [s for run in r.get("load_runs", []) for s in run["error_samples"]][:5]
    if samples:
        lines += ["Failed request samples:", "", "```", *samples, "```", ""]
    ready = r.get("completed_ready")
    if ready is not None:
        lines += [f"Clips complete was sent for, by final status: {ready} (each verified request made a clip "
                  "`ready` through HEAD + ranged GET + mutagen parse + compare-and-set UPDATE).", ""]
    if len(t["levels"]) > 1:
        lines += ["### Throughput vs concurrency", ""]
        if png:
            lines += [f"![requests/s vs concurrency]({PNG_THROUGHPUT})", ""]
        header = ["endpoint", "app"] + [f"c={lvl} req/s (p50 ms)" for lvl in t["levels"]] + \
                 [f"ratio c={lvl}" for lvl in t["levels"]]
        rows = []
        for endpoint in ENDPOINT_TITLES:
            for app in ("ours", "ceiling"):
                cells = []
                for lvl in t["levels"]:
                    m = t["by_level"][str(lvl)][endpoint].get(app)
                    cells.append(f"{m['rps']:,.0f} ({m['p50_ms']:.1f})" if m else "")
                if not any(cells):
                    continue
                ratios = [t["by_level"][str(lvl)][endpoint].get("ratio", {}).get("median") for lvl in t["levels"]] \
                    if app == "ours" else [None] * len(t["levels"])
                rows.append([endpoint.replace("_", " "), "service" if app == "ours" else "ceiling", *cells,
                             *[f"{x:.2f}" if x else "" for x in ratios]])
        lines += _table(header, rows) + [""]
    return lines


def _profiles(r: dict[str, Any]) -> list[str]:
    prof = r.get("profiles")
    if not prof:
        return []
    lines = ["## Where the time goes (profiles)", "",
             "In-process and single-threaded (`hotpaths.py`): each request's WSGI environ is built beforehand and "
             "the app is called as gunicorn would call it, so the figures are the app's own work without "
             "sockets or HTTP parsing; same database and store as the load runs. `ms/request` is wall time "
             "(CPU time in brackets) over unprofiled calls; the shares come from a pyinstrument profile "
             "(0.1 ms sampling), each sample attributed to the innermost library on its stack "
             "(psycopg2 = the driver *and* waiting for PostgreSQL's answer).", ""]
    endpoints = [e for e in ENDPOINT_TITLES if f"ours/{e}" in prof]
    rows = []
    for e in endpoints:
        o, c = prof[f"ours/{e}"], prof.get(f"ceiling/{e}")
        rows.append([e.replace("_", " "), f"{o['wall_ms_per_request']:.2f} ({o['cpu_ms_per_request']:.2f})",
                     f"{c['wall_ms_per_request']:.2f} ({c['cpu_ms_per_request']:.2f})" if c else "",
                     f"{c['wall_ms_per_request'] / o['wall_ms_per_request']:.2f}" if c else ""])
    lines += _table(["endpoint", "service ms/request", "ceiling ms/request", "ceiling / service time"], rows)
    lines += ["", "### Calls per request", "",
              "cProfile call counts divided by the number of requests: round trips to PostgreSQL (every "
              "`execute`, `commit` and `rollback`; psycopg2 also sends a `BEGIN` before the first statement of "
              "each transaction, which is not counted here), pool checkouts and pre-pings, signatures.", ""]
    labels = sorted({k for e in endpoints for app in ("ours", "ceiling") for k in
                     prof.get(f"{app}/{e}", {}).get("calls_per_request", {})})
    header = ["per request"] + [f"{e.replace('_', ' ')} service / ceiling" for e in endpoints]
    rows = []
    for label in labels:
        cells = []
        for e in endpoints:
            o = prof[f"ours/{e}"]["calls_per_request"].get(label, 0)
            c = prof.get(f"ceiling/{e}", {}).get("calls_per_request", {}).get(label, 0) if f"ceiling/{e}" in prof \
                else None
            cells.append(f"{o:g} / {c:g}" if c is not None else f"{o:g} / -")
        rows.append([label, *cells])
    lines += _table(header, rows) + [""]
    lines += ["### Shares of request time by library", ""]
    cats = []
    for e in endpoints:
        for app in ("ours", "ceiling"):
            if f"{app}/{e}" in prof:
                cats.append((f"{e.replace('_', ' ')} {'service' if app == 'ours' else 'ceiling'}",
                             {c["name"]: c for c in prof[f"{app}/{e}"]["categories"]}))
    names = sorted({n for _, cs in cats for n in cs}, key=lambda n: -max(cs.get(n, {}).get("ms_per_request", 0)
                                                                         for _, cs in cats))
    rows = [[n, *[f"{cs[n]['ms_per_request']:.3f} ({cs[n]['pct']:.0f}%)" if n in cs else "" for _, cs in cats]]
            for n in names]
    lines += ["ms per request (share of the profiled time):", ""]
    lines += _table(["library (innermost on the stack)", *[t for t, _ in cats]], rows) + [""]
    lines += ["### Time under notable functions", "", "Inclusive (the function and everything it calls), ms per "
              "request; each function counted once per stack.", ""]
    incl = [(t, {c["name"]: c for c in prof[key]["inclusive"]}) for t, key in
            [(f"{e.replace('_', ' ')} {'service' if a == 'ours' else 'ceiling'}", f"{a}/{e}")
             for e in endpoints for a in ("ours", "ceiling") if f"{a}/{e}" in prof]]
    names = sorted({n for _, cs in incl for n in cs})
    rows = [[n, *[f"{cs[n]['ms_per_request']:.3f}" if n in cs else "" for _, cs in incl]] for n in names]
    lines += _table(["function", *[t for t, _ in incl]], rows) + [""]
    lines += ["### Functions with the most self time (service)", ""]
    for e in endpoints:
        top = prof[f"ours/{e}"]["top_self"][:8]
        lines += [f"- **{e.replace('_', ' ')}**: " + "; ".join(f"`{t['name']}` {t['pct']:.0f}%" for t in top)]
    lines += ["", "Full pyinstrument trees: `profile-*.txt` in the raw results folder of the run.", ""]
    return lines


def _scaling(r: dict[str, Any], png: bool) -> list[str]:
    points = r.get("scaling", [])
    if not points:
        return []
    p = r["plan"]
    lines = ["## p50 vs table size", "",
             f"The table grows by COPY from {_size(points[0]['size'])} to {_size(points[-1]['size'])} clips "
             "(about 100 clips per owner over 20 notes, so growth adds owners; 85% ready, 4% pending, 3% rejected, "
             "8% expired; VACUUM ANALYZE after each load). At each size "
             f"{p['targets']} ready clips are drawn from the whole table; note audio and playback are measured "
             f"against them at concurrency {p['scale_concurrency']} for {p['scale_duration_s']} s after a "
             f"{p['warmup_s']} s warm-up, service and ceiling alternating. Playback and note audio only presign, "
             "so this table has no objects in the store.", ""]
    if png:
        lines += [f"![p50 vs table size]({PNG_SCALING})", ""]
    rows = []
    for point in points:
        row = [_size(point["size"]), f"{(point['table_bytes']['heap'] + point['table_bytes']['indexes']) / 2**20:,.0f}"]
        for endpoint in ("note_audio", "playback"):
            for app in ("ours", "ceiling"):
                run = _scale_run(point, app, endpoint)
                row.append(f"{run['p50_ms']:.2f} / {run['p99_ms']:.2f}" if run else "")
        row += [f"{point['explain'][e]['execution_ms']:.3f}" for e in ("note_audio", "playback")]
        rows.append(row)
    lines += _table(["clips", "table + indexes MiB", "note audio service p50 / p99 ms", "note audio ceiling",
                     "playback service", "playback ceiling", "note audio SQL exec ms", "playback SQL exec ms"], rows)
    growth = _growth(points)
    if growth:
        lines += ["", "Growth of p50 from the smallest to the largest table: " + "; ".join(
            f"{e.replace('_', ' ')}: service {g['ours']:.2f}x" + (f", ceiling {g['ceiling']:.2f}x" if g['ceiling']
                                                                  else "") for e, g in growth.items()) + "."]
    last = points[-1]
    lines += ["", f"### EXPLAIN (ANALYZE, BUFFERS) at {_size(last['size'])} clips", "",
              "The service's own statements, captured from the running app (SQLAlchemy `before_cursor_execute`) "
              "with their real parameters, explained on its connection (second execution; the first warms "
              "the caches).", ""]
    for endpoint, ex in last["explain"].items():
        used = ", ".join(f"`{i}`" for i in ex["indexes"]) or "none"
        lines += [f"**{endpoint.replace('_', ' ')}**: indexes used {used}; sequential scan: "
                  f"{'yes' if ex['seq_scan'] else 'no'}; execution {ex['execution_ms']} ms.", "",
                  "```sql", ex["sql"].strip(), "```", "", "```", ex["plan"], "```", ""]
    rows = [[_size(pt["size"]), *[", ".join(pt["explain"][e]["indexes"]) + (" + Seq Scan" if pt["explain"][e]["seq_scan"]
                                                                            else "") for e in pt["explain"]]]
            for pt in points]
    lines += ["Indexes used at every size:", ""]
    lines += _table(["clips", *[e.replace("_", " ") for e in last["explain"]]], rows) + [""]
    return lines


def _sweeper(r: dict[str, Any]) -> list[str]:
    sweeps = [(p["size"], p["sweeper"]) for p in r.get("scaling", []) if "sweeper" in p]
    if not sweeps:
        return []
    lines = ["## Sweeper at scale", "",
             "`Sweeper(db, storage, settings).run(apply=False)` (dry run: reads everything, changes nothing), each "
             "size in a fresh process (`sweepbench.py`). **The bucket listing is a stand-in**: moto lists ~1000 "
             "keys per XML request and would dominate the measurement at 10^6, so a subclass of `S3Storage` "
             "yields `ListedObject` pages generated from the table in key order through a server-side cursor: "
             "one object per clip except every 500th ready clip (a missing object), plus an orphan after every "
             "1000th clip. Everything else is the service's real code on PostgreSQL. Peak RSS is "
             "`getrusage(RUSAGE_SELF).ru_maxrss`, read before the sweep (after imports and the first "
             "connection) and after it.", ""]
    rows = [[_size(size), s["rows_scanned"], s["objects_scanned"], f"{s['seconds']:.1f}",
             f"{s['rows_scanned'] / s['seconds']:,.0f}" if s["seconds"] else "",
             f"{s['peak_rss_before_kib'] / 1024:.1f}", f"{s['peak_rss_kib'] / 1024:.1f}",
             f"{(s['peak_rss_kib'] - s['peak_rss_before_kib']) / 1024:.1f}",
             f"{s['would_expire']:,} / {s['orphans']:,} / {s['missing_objects']:,} / {s['late_objects']:,}"]
            for size, s in sweeps]
    lines += _table(["clips", "rows scanned", "objects scanned", "seconds", "rows/s", "peak RSS before MiB",
                     "peak RSS after MiB", "growth MiB", "would expire / orphans / missing / late"], rows) + [""]
    return lines


def _footprint(r: dict[str, Any]) -> list[str]:
    lines = ["## Footprint", ""]
    mem = r.get("memory")
    if mem:
        lines += ["gunicorn workers after the throughput runs (warm: pools filled, every route used), MiB. "
                  "USS is the memory a worker does not share with others (what one more worker costs).", ""]
        rows = [[("service" if app == "ours" else "ceiling"), w["pid"], w["rss_mib"], w["uss_mib"]]
                for app in ("ours", "ceiling") for w in mem[app]]
        lines += _table(["app", "worker pid", "RSS MiB", "USS MiB"], rows) + [""]
    s = r.get("startup")
    if s:
        lines += [f"`import advanced_notes` and `create_app()` in a fresh interpreter, median of {s['runs']} runs: "
                  f"import **{s['import_ms_median']:.0f} ms**, create_app **{s['create_app_ms_median']:.0f} ms**, "
                  f"total **{s['total_ms_median']:.0f} ms** (all runs: import {s['import_ms_all']}, create_app "
                  f"{s['create_app_ms_all']}).", ""]
    heavy = r.get("heaviest_imports")
    if heavy:
        lines += ["Heaviest top-level imports of that (`python -X importtime`, cumulative ms; a package's figure "
                  "includes what it imports): " + ", ".join(f"{h['package']} {h['cumulative_ms']:.0f}"
                                                          for h in heavy) + ".", ""]
    return lines


def _reproduce(r: dict[str, Any]) -> list[str]:
    return ["## Reproduce", "", "```sh",
            ".venv/bin/pip install aiohttp psutil matplotlib pyinstrument   # the bench extra",
            r["plan"]["command"], "```", "",
            "`--quick` is the CI smoke run (under a minute, small tables, one concurrency; exits 1 if any "
            "request failed). Raw results (`results.json`, every loadgen run, pyinstrument trees, server logs) "
            f"are written to the folder printed at start (this run: `{r['plan']['raw_dir']}`).", ""]


def write(results: dict[str, Any], report_path: Path, png_dir: Path) -> None:
    """Write the markdown report and its PNGs (PNG paths are relative to the report)."""
    report_path.parent.mkdir(parents=True, exist_ok=True)
    png_dir.mkdir(parents=True, exist_ok=True)
    png_throughput = plot_throughput(results["throughput"], png_dir / PNG_THROUGHPUT)
    png_scaling = False
    if len(results.get("scaling", [])) >= 2:
        plot_scaling(results["scaling"], png_dir / PNG_SCALING)
        png_scaling = True
    lines = (_header(results) + _summary(results) + _throughput(results, png_throughput) + _profiles(results)
             + _scaling(results, png_scaling) + _sweeper(results) + _footprint(results) + _reproduce(results))
    report_path.write_text("\n".join(lines).rstrip() + "\n")

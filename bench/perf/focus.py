"""Two focused measurements with the harness's pieces, each in a few minutes instead of a full run.

    .venv/bin/python bench/perf/focus.py create  [--rounds 5] [--duration 6] [--concurrency 16]
    .venv/bin/python bench/perf/focus.py hostile [--rounds 3] [--per-run 500] [--concurrency 16]

``create``: the service's create against the ceiling's (ceiling.py, the same route as bare
Flask), alternating who goes first each round, on the same gunicorn, PostgreSQL and moto
as ``run.py``; prints each round's requests/s, p50/p99 and ratio, and the median ratio
(the figure the target is about: >= 0.8).

``hostile``: complete on the service alone, a clean run (the real recordings of every
container in turn: M4A, MP3, WAV, Ogg, WebM, FLAC, so that each web worker has run every
parser before a crafted file comes) against a mixed run where 1% of the objects are the crafted files of
``testkit/crafted_audio.py`` (the five cases in turn, spread evenly through the requests,
each declared with its real type and size so verification reaches the parser), rounds
alternating; prints both runs' p50/p99, the answers by status, and each web worker's RSS
now and its peak (``VmHWM``) after the runs (targets: p50 and p99 within 2x of the clean
run; worker RSS within 100 MiB).

Databases, processes and the store are the harness's own (``run.Run``): everything is
stopped and dropped at the end, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import statistics
import sys
from pathlib import Path
from typing import Any

import footprint
import run as harness
import seed
import stats

REPO_DIR = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_DIR))

# The repository root is on the path only now.
from advanced_notes.domain.mime import mime_type_for_filename
from testkit.crafted_audio import BUILDERS
from testkit.paths import AUDIO_FILES, FIXTURES

#: Share of the mixed run's objects that are crafted: one in a hundred.
CRAFTED_EVERY = 100


def worker_status(master_pid: int) -> list[dict[str, float]]:
    """Each gunicorn worker's RSS now and its peak (``VmHWM``), MiB, from /proc."""
    rows = []
    for worker in footprint.worker_memory(master_pid):
        fields = {}
        with open(f"/proc/{worker['pid']}/status") as f:
            for line in f:
                name, _, value = line.partition(":")
                if name in ("VmRSS", "VmHWM"):
                    fields[name] = round(int(value.split()[0]) / 1024, 1)
        rows.append({"pid": worker["pid"], "rss_mib": fields["VmRSS"], "peak_rss_mib": fields["VmHWM"]})
    return rows


def crafted_durations(raw_dir: Path, kinds: dict[str, str]) -> dict[str, list[float]]:
    """The service's own duration (ms, from its request log line) of each crafted complete, by kind."""
    found: dict[str, list[float]] = {}
    for log in raw_dir.glob("gunicorn-ours-*.log"):
        for line in log.read_text(errors="replace").splitlines():
            if '"advanced_notes.request"' not in line:
                continue
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                clip_id = entry.get("path", "").split("/")[3:4]
                if clip_id and clip_id[0] in kinds:
                    found.setdefault(kinds[clip_id[0]], []).append(entry["duration_ms"])
    return found


def spec(name: str, url: str, requests: list[list[Any]], concurrency: int, duration_s: float, once: bool) -> dict:
    """A loadgen run; ``once`` runs have no warm-up so that every request (and every crafted one) is recorded."""
    return {
        "name": name,
        "base_url": url,
        "concurrency": concurrency,
        "duration_s": duration_s,
        "warmup_s": 0.0 if once else 1.0,
        "mode": "once" if once else "cycle",
        "expect": 200 if once else 201,
        "max_requests": None,
        "requests": requests,
    }


def create_rounds(r: harness.Run, args: argparse.Namespace) -> dict[str, Any]:
    db = r.new_database("focus")
    r.copy_clips(db, 0, 2_000)
    targets = seed.sample_targets(db, 200)
    reqs = [harness.request_for("create", t, r.token(t.owner_id)) for t in targets]
    pair = r.start_pair(db)
    runs = []
    for round_no in range(args.rounds):
        order = ("ours", "ceiling") if round_no % 2 == 0 else ("ceiling", "ours")
        for app in order:
            runs.append(spec(f"{app}/create/r{round_no}", pair.url(app), reqs, args.concurrency, args.duration, False))
    measured = r.loadgen(runs, "focus-create")
    r.stop_pair(pair)
    rounds = []
    for round_no in range(args.rounds):
        by_app = {m["name"].split("/")[0]: m for m in measured if m["name"].endswith(f"/r{round_no}")}
        ours, ceiling = by_app["ours"], by_app["ceiling"]
        rounds.append(
            {
                "round": round_no,
                "ours_rps": ours["rps"],
                "ceiling_rps": ceiling["rps"],
                "ratio": round(ours["rps"] / ceiling["rps"], 3),
                "ours_p50_p99": [stats.percentile(ours["latencies_ms"], q) for q in (0.5, 0.99)],
                "ceiling_p50_p99": [stats.percentile(ceiling["latencies_ms"], q) for q in (0.5, 0.99)],
                "errors": ours["errors"] + ceiling["errors"],
            }
        )
    ours_all = stats.merge(m for m in measured if m["name"].startswith("ours/"))
    ceiling_all = stats.merge(m for m in measured if m["name"].startswith("ceiling/"))
    return {
        "rounds": rounds,
        "median_ratio": round(statistics.median(x["ratio"] for x in rounds), 3),
        "ours": {k: ours_all[k] for k in ("rps", "p50_ms", "p99_ms", "errors")},
        "ceiling": {k: ceiling_all[k] for k in ("rps", "p50_ms", "p99_ms", "errors")},
    }


def clean_rows(r: harness.Run, db: str, owners: list[str], count: int) -> list[tuple[str, str, str]]:
    """``count`` pending clips of the real recordings, the containers in turn, each object stored."""
    per_file = []
    for i, name in enumerate(AUDIO_FILES):
        path, ext, mime = FIXTURES / name, name.rsplit(".", 1)[-1], mime_type_for_filename(name)
        assert mime is not None, name
        rows = seed.copy_pending_for_complete(
            db,
            owners,
            -(-count // len(AUDIO_FILES)),
            harness.KEY_PREFIX,
            seed=10 + i,
            mime=mime,
            size=path.stat().st_size,
            ext=ext,
        )
        seed.upload_fixture(r.s3, harness.BUCKET, [key for _, _, key in rows], path=path, mime=mime)
        per_file.append(rows)
    return [rows[j] for j in range(len(per_file[0])) for rows in per_file][:count]


def hostile_rounds(r: harness.Run, args: argparse.Namespace) -> dict[str, Any]:
    db = r.new_database("focus")
    r.copy_clips(db, 0, 1_000)
    owners = sorted({t.owner_id for t in seed.sample_targets(db, 50)})
    # --clean-only: the control, both runs clean (what the workers' RSS does without crafted files).
    n_crafted = 0 if args.clean_only else args.per_run // CRAFTED_EVERY
    clean_count = args.rounds * (args.per_run + args.per_run - n_crafted)
    clean = clean_rows(r, db, owners, clean_count)
    cases = [(name, build(args.crafted_bytes), mime) for name, (build, mime) in BUILDERS.items()]
    crafted: list[tuple[str, str, str]] = []
    for i in range(args.rounds * n_crafted):
        name, data, mime = cases[i % len(cases)]
        row = seed.copy_pending_for_complete(
            db, owners, 1, harness.KEY_PREFIX, seed=1000 + i, mime=mime, size=len(data), ext=name.split(".")[-1]
        )[0]
        r.s3.put_object(Bucket=harness.BUCKET, Key=row[2], Body=data, ContentType=mime)
        crafted.append(row)

    def request(row: tuple[str, str, str]) -> list[Any]:
        owner, clip_id, _key = row
        return ["POST", f"/api/audio-clips/{clip_id}/complete", harness.auth(r.token(owner)), None]

    pair = r.start_pair(db)
    clean_iter, crafted_iter = iter(clean), iter(crafted)
    measured: list[dict[str, Any]] = []
    workers_clean: list[dict[str, float]] = []
    for round_no in range(args.rounds):
        batch_clean = [request(next(clean_iter)) for _ in range(args.per_run)]
        mixed = [request(next(clean_iter)) for _ in range(args.per_run - n_crafted)]
        for j in range(n_crafted):  # evenly spread: one in every CRAFTED_EVERY requests
            mixed.insert(j * CRAFTED_EVERY + CRAFTED_EVERY // 2, request(next(crafted_iter)))
        kinds = (("clean", batch_clean), ("mixed", mixed))
        for kind, batch in kinds if round_no % 2 == 0 else reversed(kinds):
            run = spec(f"{kind}/complete/r{round_no}", pair.ours_url, batch, args.concurrency, 120.0, True)
            measured += r.loadgen([run], f"focus-hostile-{kind}-{round_no}")
            if not workers_clean:  # the first run is clean: the workers before any crafted file
                workers_clean = worker_status(pair.ours.pid)
    workers = worker_status(pair.ours.pid)
    r.stop_pair(pair)
    out: dict[str, Any] = {
        "crafted_per_run": n_crafted,
        "requests_per_run": args.per_run,
        "workers_after_first_clean_run": workers_clean,
        "workers": workers,
        "crafted_ms": crafted_durations(r.plan.raw_dir, {row[1]: row[2].rsplit(".", 1)[-1] for row in crafted}),
    }
    for kind in ("clean", "mixed"):
        merged = stats.merge(m for m in measured if m["name"].startswith(f"{kind}/"))
        out[kind] = {k: merged[k] for k in ("count", "rps", "p50_ms", "p99_ms", "status_counts")}
    out["p50_x"] = round(out["mixed"]["p50_ms"] / out["clean"]["p50_ms"], 2)
    out["p99_x"] = round(out["mixed"]["p99_ms"] / out["clean"]["p99_ms"], 2)
    out["max_worker_rss_mib_after_first_clean_run"] = max(w["rss_mib"] for w in workers_clean)
    out["max_worker_rss_mib"] = max(w["rss_mib"] for w in workers)
    out["max_worker_peak_rss_mib"] = max(w["peak_rss_mib"] for w in workers)
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("create", "hostile"))
    parser.add_argument("--rounds", type=int, help="alternating rounds (create 5, hostile 3)")
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per create run (6)")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent connections (16)")
    parser.add_argument("--per-run", type=int, default=500, help="completes per hostile run (500)")
    parser.add_argument("--crafted-bytes", type=int, default=7_300_000, help="size of each crafted file")
    parser.add_argument("--clean-only", action="store_true", help="hostile: the control, no crafted files at all")
    parser.add_argument("--raw-dir", type=Path, help="raw results (a new folder under /tmp)")
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (5 if args.what == "create" else 3)
    plan = harness.parse_plan(["--quick"] + (["--raw-dir", str(args.raw_dir)] if args.raw_dir else []))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    r = harness.Run(plan)
    r.log(f"focus {args.what}: raw results in {plan.raw_dir}")
    try:
        r.start_store()
        result = create_rounds(r, args) if args.what == "create" else hostile_rounds(r, args)
    finally:
        r.cleanup()
    (plan.raw_dir / f"focus-{args.what}.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

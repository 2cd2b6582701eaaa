"""Performance benchmark of the audio-clips service, side by side with the stack ceiling.

    .venv/bin/python bench/perf/run.py            # full run, ~15 min: writes docs/performance.md + docs/perf-*.png
    .venv/bin/python bench/perf/run.py --quick    # CI smoke, < 60 s: exit status 1 if any request failed

Options: ``--workers N --threads N`` (gunicorn, both apps), ``--concurrency N`` (the
stated concurrency of the main table), ``--duration S`` (seconds per measured run),
``--rounds N``, ``--sweep 1,4,64``, ``--sizes 1000,...``, ``--report PATH``, ``--raw-dir DIR``.

One run, everything on loopback and in its own resources:

1. creates fresh PostgreSQL databases ``an_perf_<run id>_*`` and migrates them with the
   service's Alembic revisions; starts ``moto_server`` and creates the bucket;
2. throughput: bulk-loads clips with COPY, uploads the real ``note.m4a`` where requests
   need objects, starts the service (``gunicorn wsgi:app``) and the ceiling
   (``gunicorn ceiling:app``, see ceiling.py) with the same settings, and drives both from
   a separate aiohttp process (loadgen.py), alternating which app goes first each round;
3. profiles the hot paths in-process (hotpaths.py) and reads worker memory;
4. scaling: grows a second table 10^3 -> 10^6 clips with COPY, measuring note-audio and
   playback p50 and EXPLAIN (ANALYZE) plans of the service's own SQL at each size, and the
   sweeper's time and peak RSS at 10^4..10^6 in fresh processes (sweepbench.py);
5. times ``import advanced_notes`` + ``create_app()`` in fresh interpreters;
6. writes the report (report.py). Every process started here is stopped and every
   database dropped at the end, also on Ctrl-C or an error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import secrets
import signal
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import footprint
import jwt
import pgutil
import report
import seed
import stats
from botocore.config import Config
from procs import Children, free_port, run_checked, wait_for_http

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parents[1]
VENV_BIN = REPO_DIR / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
KEY_PREFIX = "perf"
BUCKET = "an-perf"
ENDPOINTS = ("create", "complete", "playback", "note_audio", "list")
CEILING_ENDPOINTS = ("create", "complete", "playback", "note_audio")
SCALING_ENDPOINTS = ("note_audio", "playback")
EXPECT = {"create": 201, "complete": 200, "playback": 200, "note_audio": 200, "list": 200}
#: Service settings that differ from the defaults, and why. Both checks still run on
#: every request (their cost is measured); they just never trip.
BENCH_OVERRIDES = {
    # 300/min per owner would turn a load test from a few hundred synthetic owners into 429s.
    "RATELIMIT_DEFAULT": "1000000 per minute",
    # Every create leaves a pending clip: the default 20 per owner would 429 within a second.
    "MAX_PENDING_UPLOADS_PER_OWNER": "1000000",
}
#: Settings not (yet) in .env.example that must not leak in from the caller's environment.
EXTRA_SETTINGS = (
    "OWNER_QUOTA_BYTES",
    "RATELIMIT_STORAGE_URI",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "ENV",
    "FLASK_ENV",
    "S3_BUCKET_NAME",
    "S3_REGION",
    "S3_ACCESS_KEY",
    "S3_SECRET_KEY",
)
#: AWS variables botocore reads itself: removed, not blanked (an empty AWS_PROFILE is an error).
AWS_REMOVED = (
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
)


@dataclass
class Plan:
    """What a run measures. Durations in seconds; sizes in clips (rows)."""

    quick: bool
    workers: int
    threads: int
    worker_class: str
    concurrency: int
    duration_s: float
    warmup_s: float
    rounds: int
    sweep: list[int]
    sizes: list[int]
    sweeper_sizes: list[int]
    scale_duration_s: float
    scale_concurrency: int
    scale_ceiling: bool
    load_rows: int
    targets: int
    complete_cap: int
    profile_n: int
    profile_n_complete: int
    profile_warmup: int
    startup_runs: int
    report_path: Path
    png_dir: Path
    raw_dir: Path
    command: str
    run_id: str = field(default_factory=lambda: f"{os.getpid()}_{secrets.token_hex(3)}")


def parse_plan(argv: list[str]) -> Plan:
    """The run's Plan from the command line (``--quick`` changes the defaults)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke run (< 60 s), exit 1 on any failed request")
    # Defaults follow the README's production command (`gunicorn -w 4 wsgi:app`: sync workers).
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers of both apps (default 4)")
    parser.add_argument("--threads", type=int, default=1, help="gunicorn threads per worker (default 1)")
    parser.add_argument(
        "--worker-class",
        choices=("sync", "gthread"),
        help="gunicorn worker class (default: sync with 1 thread, gthread with more, as gunicorn)",
    )
    parser.add_argument("--concurrency", type=int, help="concurrent connections of the main table (16; quick 8)")
    parser.add_argument("--duration", type=float, help="seconds measured per run (6; quick 2)")
    parser.add_argument("--rounds", type=int, help="alternating rounds at the main concurrency (3; quick 1)")
    parser.add_argument("--sweep", help="other concurrencies for the throughput plot (1,4,64; quick none)")
    parser.add_argument("--sizes", help="table sizes of the scaling test (1000,10000,100000,1000000; quick 1000,10000)")
    parser.add_argument("--report", type=Path, help="markdown report (docs/performance.md; quick: in --raw-dir)")
    parser.add_argument("--raw-dir", type=Path, help="raw results, logs, profiles (a new folder under /tmp)")
    args = parser.parse_args(argv)

    quick = args.quick
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    raw_dir = args.raw_dir or Path(f"/tmp/an-perf-{stamp}-{os.getpid()}")
    report_path = args.report or (raw_dir / "performance.md" if quick else REPO_DIR / "docs" / "performance.md")
    sizes = _ints(args.sizes) if args.sizes else ([1_000, 10_000] if quick else [1_000, 10_000, 100_000, 1_000_000])
    concurrency = args.concurrency or (8 if quick else 16)
    sweep = _ints(args.sweep) if args.sweep is not None else ([] if quick else [1, 4, 64])
    return Plan(
        quick=quick,
        workers=args.workers,
        threads=args.threads,
        worker_class=args.worker_class or ("gthread" if args.threads > 1 else "sync"),
        concurrency=concurrency,
        duration_s=args.duration or (1.0 if quick else 6.0),
        warmup_s=0.3 if quick else 1.0,
        rounds=args.rounds or (1 if quick else 3),
        sweep=[c for c in sweep if c != concurrency],
        sizes=sizes,
        sweeper_sizes=[s for s in sizes if s >= 10_000],
        scale_duration_s=0.7 if quick else 4.0,
        scale_concurrency=1,
        scale_ceiling=not quick,
        load_rows=1_000 if quick else 10_000,
        targets=50 if quick else 200,
        complete_cap=60 if quick else 500,
        profile_n=10 if quick else 300,
        profile_n_complete=5 if quick else 60,
        profile_warmup=3 if quick else 20,
        startup_runs=2 if quick else 7,
        report_path=report_path,
        png_dir=report_path.parent if not quick else raw_dir,
        raw_dir=raw_dir,
        command=".venv/bin/python bench/perf/run.py" + ("" if not argv else " " + " ".join(argv)),
    )


def _ints(text: str) -> list[int]:
    return [int(float(part)) for part in text.split(",") if part.strip()]


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def request_for(endpoint: str, target: seed.Target, token: str) -> list[Any]:
    """A loadgen request ``[method, path, headers, json]`` of ``endpoint`` for ``target``."""
    if endpoint == "create":
        return [
            "POST",
            "/api/audio-clips",
            auth(token),
            {"mime_type": seed.FIXTURE_MIME, "bytes": seed.FIXTURE_BYTES, "note_id": target.note_id},
        ]
    if endpoint == "playback":
        return ["GET", f"/api/audio-clips/{target.clip_id}/playback", auth(token), None]
    if endpoint == "note_audio":
        return ["GET", f"/api/notes/{quote(target.note_id, safe='')}/audio", auth(token), None]
    if endpoint == "list":
        return ["GET", "/api/audio-clips?limit=20", auth(token), None]
    raise ValueError(endpoint)


class Completes:
    """Complete requests, each for its own pending clip, handed out once (a complete consumes its clip)."""

    def __init__(self, requests: list[list[Any]]):
        self._requests = requests
        self._next = 0

    def take(self, n: int) -> list[list[Any]]:
        batch = self._requests[self._next : self._next + n]
        self._next += n
        return batch


@dataclass
class Pair:
    """The service and the ceiling, served by gunicorn with the same settings."""

    ours_url: str
    ceiling_url: str
    ours: Any
    ceiling: Any

    def url(self, app: str) -> str:
        return self.ours_url if app == "ours" else self.ceiling_url


class Run:
    """One benchmark run: its processes, databases, store and results."""

    def __init__(self, plan: Plan):
        self.plan = plan
        plan.raw_dir.mkdir(parents=True, exist_ok=True)
        self.children = Children(plan.raw_dir)
        self.databases: list[str] = []
        self.secret = secrets.token_urlsafe(48)
        self.s3_endpoint = ""
        self.s3 = None
        self.results: dict[str, Any] = {
            "plan": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(plan).items()},
            "overrides": BENCH_OVERRIDES,
            # The "before" of the report's before/after table, kept with the run's figures.
            "baseline": report.load_baseline(),
        }
        self._tokens: dict[str, str] = {}

    # -- resources -------------------------------------------------------------------------

    def log(self, message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)

    def new_database(self, suffix: str) -> str:
        """Create and migrate ``an_perf_<run id>_<suffix>`` (dropped by :meth:`cleanup`)."""
        name = f"{pgutil.NAME_PREFIX}{self.plan.run_id}_{suffix}"
        pgutil.create_database(name)
        self.databases.append(name)
        # Alembic runs in a child process, for the same reason as the COPY loads.
        run_checked(
            [
                PYTHON,
                "-c",
                "import sys; from advanced_notes.adapters.migrate import upgrade; upgrade(sys.argv[1])",
                pgutil.sqlalchemy_url(name),
            ],
            None,
            120,
            f"migration of {name}",
            self.children,
            f"migrate-{suffix}",
        )
        return name

    def drop_database(self, name: str) -> None:
        pgutil.drop_database(name)
        if name in self.databases:
            self.databases.remove(name)

    def start_store(self) -> None:
        """moto's S3 server on a loopback port, and the bucket."""
        port = free_port()
        child = self.children.start("moto", [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)])
        self.s3_endpoint = f"http://127.0.0.1:{port}"
        wait_for_http(self.s3_endpoint + "/", child)
        self.s3 = boto3.session.Session(
            aws_access_key_id="perf", aws_secret_access_key="perf", region_name="us-east-1"
        ).client(
            "s3",
            endpoint_url=self.s3_endpoint,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, max_pool_connections=16),
        )
        self.s3.create_bucket(Bucket=BUCKET)

    def service_env(self, dbname: str) -> dict[str, str]:
        """The environment of both apps: every service setting explicit.

        Settings of .env.example that are not set here are set to "" (= default), so
        neither the caller's environment nor a developer's .env file (which wsgi.py
        loads without overriding) can change what is measured.
        """
        env = dict(os.environ)
        for line in (REPO_DIR / ".env.example").read_text().splitlines():
            name, eq, _ = line.partition("=")
            if eq and name.strip().isidentifier() and not line.startswith("#"):
                env[name.strip()] = ""
        env.update(dict.fromkeys(EXTRA_SETTINGS, ""))
        for name in AWS_REMOVED:
            env.pop(name, None)
        env.update(BENCH_OVERRIDES)
        env.update(
            {
                "APP_ENV": KEY_PREFIX,
                "S3_KEY_PREFIX": KEY_PREFIX,
                "DATABASE_URL": pgutil.sqlalchemy_url(dbname),
                "S3_ENDPOINT_URL": self.s3_endpoint,
                "S3_BUCKET": BUCKET,
                "AWS_REGION": "us-east-1",
                "AWS_ACCESS_KEY_ID": "perf",
                "AWS_SECRET_ACCESS_KEY": "perf",
                "S3_ADDRESSING_STYLE": "path",
                "AUTH_JWT_SECRET": self.secret,
                "AWS_EC2_METADATA_DISABLED": "true",
                "CEILING_POOL_MAX": str(self.plan.threads),
                "PYTHONDONTWRITEBYTECODE": "1",
            }
        )
        return env

    def token(self, owner: str) -> str:
        """An HS256 token for ``owner`` (2 h), with the claims of the service's ``mint_token``.

        Minted here with PyJWT rather than by importing the service: the harness stays small
        (see :meth:`copy_clips`), and what the apps verify is the same either way.
        """
        if owner not in self._tokens:
            now = int(time.time())
            self._tokens[owner] = jwt.encode(
                {"sub": owner, "iat": now, "exp": now + 7200}, self.secret, algorithm="HS256"
            )
        return self._tokens[owner]

    def start_pair(self, dbname: str) -> Pair:
        """Start the service and the ceiling on ``dbname`` with identical gunicorn settings."""
        env = self.service_env(dbname)
        common = [
            "--workers",
            str(self.plan.workers),
            "--threads",
            str(self.plan.threads),
            "--worker-class",
            self.plan.worker_class,
            "--backlog",
            "2048",
            "--keep-alive",
            "5",
            "--log-level",
            "warning",
            "--worker-tmp-dir",
            "/dev/shm",
            "--graceful-timeout",
            "5",
        ]
        ports = free_port(), free_port()
        ours = self.children.start(
            f"gunicorn-ours-{dbname[-5:]}",
            [
                str(VENV_BIN / "gunicorn"),
                *common,
                "--bind",
                f"127.0.0.1:{ports[0]}",
                "--chdir",
                str(REPO_DIR),
                "wsgi:app",
            ],
            env,
        )
        ceiling = self.children.start(
            f"gunicorn-ceiling-{dbname[-5:]}",
            [
                str(VENV_BIN / "gunicorn"),
                *common,
                "--bind",
                f"127.0.0.1:{ports[1]}",
                "--chdir",
                str(BENCH_DIR),
                "ceiling:app",
            ],
            env,
        )
        pair = Pair(f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}", ours, ceiling)
        wait_for_http(pair.ours_url + "/healthz", ours)
        wait_for_http(pair.ceiling_url + "/healthz", ceiling)
        return pair

    def stop_pair(self, pair: Pair) -> None:
        self.children.stop(pair.ours)
        self.children.stop(pair.ceiling)

    def cleanup(self) -> None:
        """Stop every process started by this run and drop its databases (also after errors)."""
        # A second Ctrl-C must not cut the cleanup short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        self.children.stop_all()
        for name in list(self.databases):
            try:
                self.drop_database(name)
            except Exception as exc:
                print(f"warning: could not drop database {name}: {exc}", file=sys.stderr)

    # -- helpers that run processes ------------------------------------------------------------

    def loadgen(self, runs: list[dict[str, Any]], tag: str) -> list[dict[str, Any]]:
        """Run the load generator in its own process over ``runs``; its per-run results."""
        plan_path, out_path = self.plan.raw_dir / f"loadgen-{tag}-plan.json", self.plan.raw_dir / f"loadgen-{tag}.json"
        plan_path.write_text(json.dumps({"runs": runs}))
        budget = sum(r["warmup_s"] + r["duration_s"] + 35 for r in runs) + 30
        run_checked(
            [PYTHON, str(BENCH_DIR / "loadgen.py"), str(plan_path), str(out_path)],
            None,
            budget,
            f"load generator ({tag})",
            self.children,
            f"loadgen-{tag}",
        )
        return json.loads(out_path.read_text())["runs"]

    def copy_clips(self, db: str, start: int, stop: int) -> None:
        """Bulk-load clips ``start..stop-1`` with COPY in a child process.

        The harness keeps heavy work (COPY text, Alembic, the service's imports) in child
        processes so its own peak RSS stays below the sweeper's: on Linux a child's
        ``ru_maxrss`` starts at its parent's peak, and the sweeper is the harness's child.
        """
        run_checked(
            [PYTHON, str(BENCH_DIR / "seed.py"), "copy", db, str(start), str(stop), KEY_PREFIX],
            None,
            900,
            f"COPY of {stop - start} clips",
            self.children,
            f"seed-{db[-5:]}-{stop}",
        )

    def helper(self, script: str, spec: dict[str, Any], tag: str, timeout_s: float) -> Any:
        """Run ``bench/perf/<script> SPEC OUT`` in a fresh process; its JSON output."""
        spec_path, out_path = self.plan.raw_dir / f"{tag}-spec.json", self.plan.raw_dir / f"{tag}.json"
        spec_path.write_text(json.dumps(spec))
        run_checked(
            [PYTHON, str(BENCH_DIR / script), str(spec_path), str(out_path)],
            spec.get("env"),
            timeout_s,
            tag,
            self.children,
            tag,
        )
        return json.loads(out_path.read_text())

    def run_spec(
        self,
        name: str,
        url: str,
        requests: list[list[Any]],
        concurrency: int,
        duration_s: float,
        expect: int,
        once: bool = False,
        max_requests: int | None = None,
    ) -> dict[str, Any]:
        return {
            "name": name,
            "base_url": url,
            "concurrency": concurrency,
            "duration_s": duration_s,
            "warmup_s": self.plan.warmup_s,
            "mode": "once" if once else "cycle",
            "expect": expect,
            "max_requests": max_requests,
            "requests": requests,
        }

    # -- phases --------------------------------------------------------------------------------

    def throughput(self) -> None:
        """Main table, throughput vs concurrency, worker memory, then the in-process profiles."""
        plan = self.plan
        db = self.new_database("load")
        targets, completes = self.seed_load_table(db)
        reqs = {e: [request_for(e, t, self.token(t.owner_id)) for t in targets] for e in ENDPOINTS if e != "complete"}
        pair = self.start_pair(db)
        self.results["sanity"] = self.sanity_check(pair, targets[0], completes.take(2))
        runs = self.throughput_runs(pair, reqs, completes)
        self.log(
            f"throughput: {len(runs)} runs of {plan.duration_s:.0f} s at concurrency {[plan.concurrency, *plan.sweep]}"
        )
        watch = footprint.OtherLoad()
        raw_runs = self.loadgen(runs, "throughput")
        self.results["other_load"] = {"throughput": watch.stop()}
        self.results["load_runs"] = [_brief(r) for r in raw_runs]
        self.results["throughput"] = summarize_throughput(raw_runs, plan)
        self.results["complete_outcomes"] = {
            app: self.complete_outcomes(
                db,
                [
                    r[1].split("/")[3]
                    for run in runs
                    if run["mode"] == "once" and run["name"].startswith(f"{app}/")
                    for r in run["requests"]
                ],
            )
            for app in ("ours", "ceiling")
        }
        self.results["memory"] = {
            "ours": footprint.worker_memory(pair.ours.pid),
            "ceiling": footprint.worker_memory(pair.ceiling.pid),
        }
        self.stop_pair(pair)

        self.log("profiling hot paths in-process")
        profile_reqs = {e: reqs[e] for e in ("create", "playback", "note_audio", "list")}
        # measure() makes warm-up + 3 passes of n calls, and each complete consumes its clip:
        # each app gets its own batch.
        per_profile = plan.profile_warmup + 3 * plan.profile_n_complete
        profile_reqs["complete"] = completes.take(per_profile)
        self.results["profiles"] = self.helper(
            "hotpaths.py",
            {
                "env": self.service_env(db),
                "n": plan.profile_n,
                "n_complete": plan.profile_n_complete,
                "warmup": plan.profile_warmup,
                "requests": profile_reqs,
                "app_requests": {"ceiling/complete": completes.take(per_profile)},
                "ceiling_endpoints": list(CEILING_ENDPOINTS),
                "expect": EXPECT,
                "raw_dir": str(plan.raw_dir),
            },
            "hotpaths",
            600,
        )
        self.drop_database(db)

    def seed_load_table(self, db: str) -> tuple[list[seed.Target], Completes]:
        """Clips by COPY, targets drawn from them, pending clips for complete, objects in the store."""
        plan = self.plan
        self.copy_clips(db, 0, plan.load_rows)
        targets = seed.sample_targets(db, plan.targets)
        owners = sorted({t.owner_id for t in targets})
        # Every complete consumes a pending clip: per app (service and ceiling), one batch per
        # complete run plus the profiles' warm-up and three passes; and one each for the sanity check.
        runs = plan.rounds + len(plan.sweep)
        per_app = plan.complete_cap * runs + plan.profile_warmup + 3 * plan.profile_n_complete
        count = 2 * per_app + 2
        pending = seed.copy_pending_for_complete(db, owners, count, KEY_PREFIX)
        pgutil.vacuum_analyze(db)
        self.log(
            f"load table: {pgutil.count_clips(db)} clips, {len(targets)} targets; uploading "
            f"{len(targets) + len(pending)} objects"
        )
        seed.upload_fixture(self.s3, BUCKET, [t.storage_key for t in targets] + [key for _, _, key in pending])
        return targets, Completes(
            [
                ["POST", f"/api/audio-clips/{clip_id}/complete", auth(self.token(owner)), None]
                for owner, clip_id, _ in pending
            ]
        )

    def throughput_runs(self, pair: Pair, reqs: dict[str, list[list[Any]]], completes: Completes) -> list[dict]:
        """The load runs: ``rounds`` at the main concurrency, one at each sweep level, apps alternating."""
        plan = self.plan
        runs: list[dict[str, Any]] = []
        for level_index, (level, rounds) in enumerate([(plan.concurrency, plan.rounds)] + [(c, 1) for c in plan.sweep]):
            for round_no in range(rounds):
                # Alternate who goes first, so drift on a shared machine hits both apps alike.
                order = ("ours", "ceiling") if (round_no + level_index) % 2 == 0 else ("ceiling", "ours")
                for endpoint in ENDPOINTS:
                    for app in order:
                        if app == "ceiling" and endpoint not in CEILING_ENDPOINTS:
                            continue
                        name = f"{app}/{endpoint}/c{level}/r{round_no}"
                        if endpoint == "complete":
                            runs.append(
                                self.run_spec(
                                    name,
                                    pair.url(app),
                                    completes.take(plan.complete_cap),
                                    level,
                                    plan.duration_s,
                                    200,
                                    once=True,
                                )
                            )
                        else:
                            runs.append(
                                self.run_spec(
                                    name, pair.url(app), reqs[endpoint], level, plan.duration_s, EXPECT[endpoint]
                                )
                            )
        return runs

    def sanity_check(self, pair: Pair, target: seed.Target, completes: list[list[Any]]) -> dict[str, Any]:
        """Both apps serve what they claim before anything is measured.

        Playback: each app's playback answer, asked twice, gives URLs that fetch the real
        fixture bytes. The two URLs may be identical (a service that caches signed URLs in
        process answers the same URL until it nears expiry): only what they serve counts.

        Complete: one pending clip each, seeded alike with copies of the same object; both
        answer 200 with a ready clip of the same fields, the same values but for the id, key
        and times (so the same ETag, stored size and measured duration: the ceiling runs the
        service's parser), and times in the same format.
        """
        fixture = seed.FIXTURE.read_bytes()
        headers = auth(self.token(target.owner_id))
        path = f"/api/audio-clips/{target.clip_id}/playback"
        playback: dict[str, bool] = {}
        distinct: dict[str, int] = {}
        for app in ("ours", "ceiling"):
            urls = [_http_json("GET", pair.url(app) + path, headers)["url"] for _ in range(2)]
            served = {}
            for url in dict.fromkeys(urls):  # each distinct URL once: identical URLs are fine
                with urllib.request.urlopen(url, timeout=10) as response:
                    served[url] = response.read() == fixture
            playback[app], distinct[app] = all(served.values()), len(served)
        if not all(playback.values()):
            raise RuntimeError(f"playback URLs do not serve the uploaded fixture: {playback}")

        clips = {}
        for app, (method, path, req_headers, _body) in zip(("ours", "ceiling"), completes, strict=True):
            clips[app] = _http_json(method, pair.url(app) + path, req_headers)["clip"]
        ours, ceiling = clips["ours"], clips["ceiling"]
        complete = {
            app: {"status": c.get("status"), "measured_duration_ms": c.get("measured_duration_ms")}
            for app, c in clips.items()
        }
        problems = []
        if set(ours) != set(ceiling):
            problems.append(f"fields differ: {sorted(set(ours) ^ set(ceiling))}")
        if ours.get("status") != "ready" or ceiling.get("status") != "ready":
            problems.append(f"statuses {ours.get('status')!r} / {ceiling.get('status')!r}")
        for name in sorted(set(ours) & set(ceiling)):
            a, b = ours[name], ceiling[name]
            if name.endswith("_at"):  # the times differ, their format must not (2026-11-21T08:06:31.123Z)
                if (a is None) != (b is None) or (a is not None and (len(a) != len(b) or a[-1] != b[-1])):
                    problems.append(f"{name} formats {a!r} / {b!r}")
            elif name not in ("id", "storage_key") and a != b:
                problems.append(f"{name} {a!r} / {b!r}")
        if problems:
            raise RuntimeError(f"the ceiling's complete does not answer as the service's: {'; '.join(problems)}")
        return {"playback": playback, "playback_distinct_urls": distinct, "complete": complete}

    def complete_outcomes(self, db: str, clip_ids: list[str]) -> dict[str, Any]:
        """What became of the clips one app's complete runs were handed: status and measured duration counts."""
        with pgutil.connect(db) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT status, measured_duration_ms, count(*) FROM audio_clips WHERE id = ANY(%s::uuid[]) "
                "GROUP BY status, measured_duration_ms",
                (clip_ids,),
            )
            rows = cur.fetchall()
        statuses: dict[str, int] = {}
        durations: dict[str, int] = {}
        for status, duration, count in rows:
            statuses[status] = statuses.get(status, 0) + count
            if duration is not None:
                durations[str(duration)] = durations.get(str(duration), 0) + count
        return {"statuses": statuses, "measured_duration_ms": durations}

    def scaling(self) -> None:
        """p50 of note audio and playback, EXPLAIN plans and the sweeper as the table grows."""
        plan = self.plan
        db = self.new_database("scale")
        pair = self.start_pair(db)
        points, previous = [], 0
        for size in plan.sizes:
            t0 = time.perf_counter()
            self.copy_clips(db, previous, size)
            copy_s = time.perf_counter() - t0
            pgutil.vacuum_analyze(db)
            previous = size
            targets = seed.sample_targets(db, plan.targets)
            self.log(f"scaling: {size} clips (COPY {copy_s:.1f} s); measuring")
            watch = footprint.OtherLoad()
            measured = self.scale_runs(pair, size, targets)
            other = watch.stop()
            explain = self.helper(
                "explain.py",
                {
                    "env": self.service_env(db),
                    "requests": {
                        e: [request_for(e, targets[0], self.token(targets[0].owner_id)), EXPECT[e]]
                        for e in ("note_audio", "playback", "list", "create")
                    },
                },
                f"explain-{size}",
                120,
            )
            point = {
                "size": size,
                "copy_s": round(copy_s, 2),
                "table_bytes": pgutil.table_bytes(db),
                "other_load": other,
                "runs": measured,
                "explain": explain,
            }
            if size in plan.sweeper_sizes:
                self.log(f"sweeper over {size} clips (fresh process)")
                point["sweeper"] = self.helper(
                    "sweepbench.py", {"env": self.service_env(db), "dsn": pgutil.dsn(db)}, f"sweeper-{size}", 900
                )
                # A child's ru_maxrss starts at the parent's peak (Linux keeps it across fork
                # and exec): recorded so the report can show the sweeper's figure is its own.
                point["sweeper"]["harness_peak_rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            points.append(point)
        self.results["scaling"] = points
        self.stop_pair(pair)
        self.drop_database(db)

    def scale_runs(self, pair: Pair, size: int, targets: list[seed.Target]) -> list[dict[str, Any]]:
        """Note audio and playback at the scaling concurrency, per app merged over alternating rounds.

        Two rounds of half the time each, in the order service, ceiling, ceiling, service, so a
        drift during the measurement of one size weighs on both apps alike.
        """
        plan = self.plan
        apps = ("ours", "ceiling") if plan.scale_ceiling else ("ours",)
        rounds = 2 if plan.scale_ceiling else 1
        runs = []
        for endpoint in SCALING_ENDPOINTS:
            reqs = [request_for(endpoint, t, self.token(t.owner_id)) for t in targets]
            for round_no in range(rounds):
                for app in apps if round_no % 2 == 0 else tuple(reversed(apps)):
                    runs.append(
                        self.run_spec(
                            f"{app}/{endpoint}/n{size}/r{round_no}",
                            pair.url(app),
                            reqs,
                            plan.scale_concurrency,
                            plan.scale_duration_s / rounds,
                            200,
                        )
                    )
        measured = self.loadgen(runs, f"scale-{size}")
        merged = []
        for endpoint in SCALING_ENDPOINTS:
            for app in apps:
                prefix = f"{app}/{endpoint}/n{size}/"
                merged.append(
                    {
                        "name": prefix.rstrip("/"),
                        "concurrency": plan.scale_concurrency,
                        **stats.merge(r for r in measured if r["name"].startswith(prefix)),
                    }
                )
        return merged

    def startup(self) -> None:
        """Import + create_app times (fresh interpreters) and the heaviest imports."""
        env = self.service_env("an_perf_unused")  # create_app does not connect
        self.results["startup"] = footprint.startup_times(PYTHON, env, str(REPO_DIR), self.plan.startup_runs)
        if not self.plan.quick:
            self.results["heaviest_imports"] = footprint.heaviest_imports(PYTHON, env, str(REPO_DIR))


def _http_json(method: str, url: str, headers: dict[str, str]) -> dict[str, Any]:
    """One request to an app; its JSON answer (an HTTP error status raises)."""
    req = urllib.request.Request(url, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=10) as response:
        return json.load(response)


def _brief(run: dict[str, Any]) -> dict[str, Any]:
    """A loadgen run without its latency list, with its percentiles (ms)."""
    ordered = run["latencies_ms"]
    return {k: v for k, v in run.items() if k != "latencies_ms"} | {
        "p50_ms": stats.percentile(ordered, 0.5),
        "p95_ms": stats.percentile(ordered, 0.95),
        "p99_ms": stats.percentile(ordered, 0.99),
    }


def summarize_throughput(runs: list[dict[str, Any]], plan: Plan) -> dict[str, Any]:
    """Per concurrency level and endpoint: each app's merged figures and the ours/ceiling ratio."""
    grouped: dict[tuple[int, str, str], list[dict[str, Any]]] = {}
    for run in runs:
        app, endpoint, level, _round = run["name"].split("/")
        grouped.setdefault((int(level[1:]), endpoint, app), []).append(run)
    levels = sorted({level for level, _, _ in grouped})
    table: dict[str, Any] = {}
    for level in levels:
        rows = {}
        for endpoint in ENDPOINTS:
            ours = grouped.get((level, endpoint, "ours"), [])
            ceiling = grouped.get((level, endpoint, "ceiling"), [])
            row = {"ours": stats.merge(ours)}
            if ceiling:
                row["ceiling"] = stats.merge(ceiling)
                row["ratio"] = stats.ratio_summary([r["rps"] for r in ours], [r["rps"] for r in ceiling])
            rows[endpoint] = row
        table[str(level)] = rows
    return {"main_concurrency": plan.concurrency, "levels": levels, "by_level": table}


def total_errors(results: dict[str, Any]) -> int:
    """Failed requests over every load run of the run."""
    count = sum(r["errors"] for r in results.get("load_runs", []))
    for point in results.get("scaling", []):
        count += sum(r["errors"] for r in point["runs"])
    return count


def main(argv: list[str] | None = None) -> int:
    plan = parse_plan(sys.argv[1:] if argv is None else argv)
    # SIGTERM (CI cancelling, kill) unwinds like Ctrl-C, so cleanup always runs.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.time()
    run = Run(plan)
    run.results["machine"] = report.machine_info()
    run.log(f"run {plan.run_id}: raw results in {plan.raw_dir}")
    phases = run.results.setdefault("phase_s", {})
    try:
        for name, phase in (
            ("store", run.start_store),
            ("throughput", run.throughput),
            ("scaling", run.scaling),
            ("startup", run.startup),
        ):
            t0 = time.perf_counter()
            phase()
            phases[name] = round(time.perf_counter() - t0, 1)
    finally:
        run.cleanup()
    run.results["machine"].update(
        load_average_end=os.getloadavg(),
        code_fingerprint_end=report.code_fingerprint(),
        commit_end=report.git_output("rev-parse", "--short", "HEAD"),
    )
    run.results["wall_s"] = round(time.time() - started, 1)
    (plan.raw_dir / "results.json").write_text(json.dumps(run.results, indent=1, default=str))
    report.write(run.results, plan.report_path, plan.png_dir)
    errors = total_errors(run.results)
    run.log(f"done in {run.results['wall_s']:.0f} s: report {plan.report_path}; {errors} failed requests")
    return 1 if errors else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # cleanup already ran in main's finally
        print("interrupted: every process started was stopped and the databases dropped", file=sys.stderr)
        sys.exit(130)

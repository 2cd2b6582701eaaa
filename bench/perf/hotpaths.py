"""Where a request's time goes: in-process profiles of the service and the ceiling.

    python hotpaths.py SPEC.json OUT.json

SPEC: ``{"env": {...service settings...}, "n": 300, "n_complete": 60, "warmup": 20,
"requests": {endpoint: [loadgen request, ...]}, "app_requests": {"app/endpoint": [...]},
"ceiling_endpoints": [...], "expect": {endpoint: status}, "raw_dir": "..."}``.
``app_requests`` overrides ``requests`` for one app: complete consumes its clip, so the
ceiling gets a batch of its own.

For each app and endpoint, single-threaded, after ``warmup`` unmeasured calls:

1. ``wall_ms_per_request``/``cpu_ms_per_request`` over ``n`` unprofiled calls, the
   PostgreSQL round trips they made with the time spent in them (dbtiming.py), and the
   store API calls by operation (HEAD, GET) with their time and the presigns made
   (storecalls.py);
2. ``calls_per_request``: cProfile call counts per request (pool checkouts, pre-pings,
   token decodes, marshmallow dumps/loads), with the presigns and store calls of step 1;
3. a pyinstrument profile, summarised as ``categories`` (each sample goes to the
   innermost library on its stack; a PostgreSQL round trip is its own category),
   ``inclusive`` (time under notable functions, each counted once per stack) and
   ``top_self`` (functions that themselves spend the most). Shares are of the profiled
   time; ``ms_per_request`` applies them to the unprofiled wall time, so the profiler's
   own overhead does not inflate them. The text profile goes to ``raw_dir``.
"""

from __future__ import annotations

import cProfile
import json
import pstats
import sys
import time
from pathlib import Path
from typing import Any

import dbtiming
import storecalls
from inproc import call, make_environ, setup_environment

#: pyinstrument's sampling interval, seconds. Finer sampling slows the profiled code
#: down more (0.1 ms roughly doubles a 3 ms request), skewing shares toward small calls.
SAMPLE_INTERVAL_S = 0.0005
#: Unmeasured calls per app and endpoint before timing (pools, caches, lazy imports).
WARMUP_CALLS = 20

DB_CATEGORY = "PostgreSQL round trips (psycopg2 calls)"
#: (path fragment, category): the innermost matching frame of a sample decides its category.
CATEGORIES = (
    ("bench/perf/dbtiming.py", DB_CATEGORY),
    ("/psycopg2/", "psycopg2 (Python side)"),
    ("/sqlalchemy/", "SQLAlchemy (ORM, Core, pool)"),
    ("/marshmallow/", "marshmallow"),
    ("/webargs/", "flask-smorest / webargs"),
    ("/flask_smorest/", "flask-smorest / webargs"),
    ("/apispec/", "flask-smorest / webargs"),
    ("/urllib3/", "HTTP to the store (urllib3)"),
    ("/botocore/", "boto3 / botocore"),
    ("/boto3/", "boto3 / botocore"),
    ("/jwt/", "PyJWT"),
    ("/mutagen/", "audio sniff + parse"),
    ("/puremagic/", "audio sniff + parse"),
    ("/enzyme/", "audio sniff + parse"),
    # The service's pure audio code, which the ceiling's complete runs too.
    ("advanced_notes/domain/audio.py", "audio sniff + parse"),
    ("advanced_notes/domain/rangeio.py", "audio sniff + parse"),
    ("advanced_notes/api/ratelimit.py", "rate limiter (limits)"),
    ("/limits/", "rate limiter (limits)"),
    ("/pythonjsonlogger/", "logging"),
    ("/logging/", "logging"),
    ("/json/", "json encode/decode"),
    ("/flask/", "Flask / Werkzeug"),
    ("/werkzeug/", "Flask / Werkzeug"),
    ("/advanced_notes/", "service code (advanced_notes)"),
    ("bench/perf/ceiling.py", "ceiling code"),
)
PRESIGN_LABEL = "presign (presign_get/presign_put, generate_presigned_url)"
#: (function name, path fragment, label): time spent under these, once per stack.
INCLUSIVE = (
    ("verify", "advanced_notes/api/auth.py", "token check (TokenVerifier.verify)"),
    ("authenticate", "bench/perf/ceiling.py", "token check (jwt.decode)"),
    # Getting a presigned URL: the adapter's methods (with any cache of signed URLs they keep)
    # or the ceiling's, and botocore's client method wherever else it is called. One label,
    # so nested matches count once.
    ("presign_get", "advanced_notes/adapters/storage/objects.py", PRESIGN_LABEL),
    ("presign_put", "advanced_notes/adapters/storage/objects.py", PRESIGN_LABEL),
    ("_presign_get", "bench/perf/ceiling.py", PRESIGN_LABEL),
    ("generate_presigned_url", "botocore/signers.py", PRESIGN_LABEL),
    ("_checkout", "sqlalchemy/pool/base.py", "pool checkout (incl. pre-ping)"),
    ("do_ping", "sqlalchemy/", "pre-ping SELECT 1"),
    ("getconn", "psycopg2/pool.py", "pool checkout (psycopg2 pool)"),
    ("close", "sqlalchemy/orm/session.py", "Session.close (rollback + check-in)"),
    ("commit", "sqlalchemy/orm/session.py", "Session.commit (flush + COMMIT)"),
    ("execute", "sqlalchemy/orm/session.py", "Session.execute (statement + rows)"),
    ("flush", "sqlalchemy/orm/session.py", "ORM flush (INSERT)"),
    ("load", "marshmallow/schema.py", "marshmallow load (request body/args)"),
    ("dump", "marshmallow/schema.py", "marshmallow dump (response)"),
    ("head", "advanced_notes/adapters/storage/objects.py", "store HEAD"),
    ("verify_audio", "advanced_notes/services/verification.py", "ranged GET + sniff + parse"),
    ("_make_api_call", "botocore/client.py", "store API calls (HEAD, GET)"),
    ("sniff_container", "advanced_notes/domain/audio.py", "audio sniff (sniff_container)"),
    ("measure_duration_ms", "advanced_notes/domain/audio.py", "audio parse (measure_duration_ms)"),
    ("check", "advanced_notes/api/ratelimit.py", "rate limit check (incl. the token check it triggers)"),
    ("_finish_request", "advanced_notes/api/logs.py", "request log line (_finish_request)"),
    ("_insert_within_quotas", "advanced_notes/services/uploads.py", "quota check + INSERT (one statement)"),
    ("transaction", "advanced_notes/adapters/db.py", "Database.transaction (BEGIN ... COMMIT)"),
    ("statement", "advanced_notes/adapters/db.py", "Database.statement (Core, autocommit)"),
    # Per-request work that does not depend on the request (could be done once):
    ("__eq__", "sqlalchemy/sql/operators.py", "building the query's expressions (==, desc)"),
    ("desc", "sqlalchemy/sql/operators.py", "building the query's expressions (==, desc)"),
    ("_generate_cache_key", "sqlalchemy/sql/cache_key.py", "SQLAlchemy statement cache key"),
    ("prepare_key", "jwt/algorithms.py", "PyJWT HMAC key checks (PEM/DER/JWK sniffing of the secret)"),
    ("incr", "advanced_notes/api/ratelimit.py", "rate-limit counter increment"),
)
#: cProfile entries counted per request: (file fragment, function fragment, label).
COUNTED = (
    ("sqlalchemy/pool/base.py", "_checkout", "SQLAlchemy pool checkouts"),
    ("sqlalchemy/engine/default.py", "_do_ping_w_event", "pre-pings (SELECT 1)"),
    ("psycopg2/pool.py", "_getconn", "psycopg2 pool checkouts"),
    ("jwt/api_jwt.py", "decode_complete", "JWT decodes"),
    ("jwt/api_jws.py", "get_unverified_header", "JWT header parses"),
    ("marshmallow/schema.py", "_serialize", "marshmallow serializations (each nested schema too)"),
    ("marshmallow/schema.py", "_do_load", "marshmallow loads"),
)
#: Store operations as the report names them (storecalls.py counts them by botocore's name).
STORE_OPERATIONS = {"HeadObject": "HEAD", "GetObject": "GET"}


def _short(path: str) -> str:
    # The repository's own files are shown relative to its root, wherever it is checked out.
    for marker in ("site-packages/", "/lib/python3.11/", str(Path(__file__).resolve().parents[2]) + "/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def _profile_summary(session: Any, wall_ms: float) -> dict[str, Any]:
    root = session.root_frame()
    total = root.time or 1e-12
    categories: dict[str, float] = {}
    inclusive: dict[str, float] = {}
    selfs: dict[str, float] = {}

    def walk(frame: Any, category: str, active: frozenset[str]) -> None:
        # pyinstrument also lists a frame's self time as synthetic "[self]" children, and
        # the real frame's total_self_time already includes them: count them once.
        if frame.is_synthetic:
            return
        path = frame.file_path or ""
        for fragment, name in CATEGORIES:
            if fragment in path:
                category = name
                break
        for function, fragment, label in INCLUSIVE:
            if frame.function == function and fragment in path and label not in active:
                inclusive[label] = inclusive.get(label, 0.0) + frame.time
                active = active | {label}
        categories[category] = categories.get(category, 0.0) + frame.total_self_time
        if frame.total_self_time > 0:
            key = f"{frame.function} ({_short(path)}:{frame.line_no})"
            selfs[key] = selfs.get(key, 0.0) + frame.total_self_time
        for child in frame.children:
            walk(child, category, active)

    walk(root, "other (stdlib, harness)", frozenset())

    def shares(values: dict[str, float], limit: int | None = None) -> list[dict[str, Any]]:
        ordered = sorted(values.items(), key=lambda kv: -kv[1])[:limit]
        return [
            {"name": k, "pct": round(100 * v / total, 1), "ms_per_request": round(wall_ms * v / total, 3)}
            for k, v in ordered
        ]

    return {"categories": shares(categories), "inclusive": shares(inclusive), "top_self": shares(selfs, 15)}


def _counts(stats: pstats.Stats, calls: int) -> dict[str, float]:
    found: dict[str, float] = {label: 0.0 for _, _, label in COUNTED}
    for (filename, _line, function), (_cc, ncalls, *_rest) in stats.stats.items():  # type: ignore[attr-defined]
        for file_fragment, function_fragment, label in COUNTED:
            if file_fragment in filename and function_fragment in function:
                found[label] += ncalls
    return {label: round(n / calls, 2) for label, n in found.items() if n}


def measure(
    app: Any, requests: list[list[Any]], n: int, expect: int, name: str, raw_dir: str, warmup: int
) -> dict[str, Any]:
    """Warm up, then time, count and profile ``n`` calls each of ``requests`` (cycled) on ``app``."""
    from pyinstrument import Profiler

    cursor = {"i": 0}

    def environs(count: int) -> list[dict[str, Any]]:
        out = []
        for _ in range(count):
            out.append(make_environ(requests[cursor["i"] % len(requests)]))
            cursor["i"] += 1
        return out

    def run(batch: list[dict[str, Any]]) -> None:
        for environ in batch:
            status = call(app, environ)
            if status != expect:
                raise RuntimeError(f"{name}: status {status}, expected {expect}")

    run(environs(warmup))
    batch = environs(n)
    dbtiming.reset()
    storecalls.reset()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    run(batch)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    db, kinds = dict(dbtiming.STATS), dict(dbtiming.KINDS)
    store, store_kinds = dict(storecalls.STATS), dict(storecalls.KINDS)
    wall_ms = 1000 * wall / n

    batch = environs(n)
    profiler = cProfile.Profile()
    profiler.enable()
    run(batch)
    profiler.disable()
    counts = _counts(pstats.Stats(profiler), n)
    # Presigns and store calls as storecalls.py counted them in the timed pass (zeros omitted, as above).
    if store["presigns"]:
        counts["presigns"] = round(store["presigns"] / n, 2)
    for operation, count in store_kinds.items():
        counts[f"store {STORE_OPERATIONS.get(operation, operation)} calls"] = round(count / n, 2)

    batch = environs(n)
    sampler = Profiler(interval=SAMPLE_INTERVAL_S)
    sampler.start()
    run(batch)
    sampler.stop()
    with open(f"{raw_dir}/profile-{name.replace('/', '-')}.txt", "w") as f:
        f.write(sampler.output_text(unicode=True, color=False, show_all=False))
    return {
        "n": n,
        "wall_ms_per_request": round(wall_ms, 3),
        "cpu_ms_per_request": round(1000 * cpu / n, 3),
        "db_round_trips_per_request": round(db["round_trips"] / n, 2),
        "db_ms_per_request": round(1000 * db["seconds"] / n, 3),
        "db_round_trips_by_kind": {k: round(v / n, 2) for k, v in kinds.items()},
        "store_calls_per_request": round(store["calls"] / n, 2),
        "store_ms_per_request": round(1000 * store["seconds"] / n, 3),
        "store_calls_by_kind": {k: round(v / n, 2) for k, v in store_kinds.items()},
        "presigns_per_request": round(store["presigns"] / n, 3),
        "calls_per_request": counts,
        **_profile_summary(sampler.last_session, wall_ms),
    }


def main(argv: list[str]) -> int:
    with open(argv[1]) as f:
        spec = json.load(f)
    setup_environment(spec["env"])
    dbtiming.install()  # before any app opens a connection
    storecalls.install()
    # No logging setup here: create_app configures it as in a gunicorn worker (one JSON
    # line per request to stderr, which goes to this process's log file), so its cost counts.
    from advanced_notes.app import create_app

    apps = {"ours": create_app()}
    import ceiling

    apps["ceiling"] = ceiling.app
    results: dict[str, Any] = {}
    app_requests = spec.get("app_requests", {})
    for endpoint, shared in spec["requests"].items():
        for app_name, app in apps.items():
            if app_name == "ceiling" and endpoint not in spec["ceiling_endpoints"]:
                continue
            n = spec["n_complete"] if endpoint == "complete" else spec["n"]
            key = f"{app_name}/{endpoint}"
            requests = app_requests.get(key, shared)
            results[key] = measure(
                app, requests, n, spec["expect"][endpoint], key, spec["raw_dir"], spec.get("warmup", WARMUP_CALLS)
            )
            print(f"profiled {key}: {results[key]['wall_ms_per_request']} ms/request", file=sys.stderr)
    with open(argv[2], "w") as f:
        json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""Where a request's time goes: in-process profiles of the service and the ceiling.

    python hotpaths.py SPEC.json OUT.json

SPEC: ``{"env": {...service settings...}, "n": 200, "requests": {endpoint: [loadgen request, ...]},
"ceiling_endpoints": [...], "expect": {endpoint: status}, "raw_dir": "..."}``.

For each app and endpoint, single-threaded, after a warm-up:

1. ``ms_per_request``: wall and CPU milliseconds per request over ``n`` unprofiled calls;
2. ``calls_per_request``: cProfile call counts per request of what costs round trips
   or signatures (psycopg2 ``execute``/``commit``/``rollback``, pool checkouts,
   pre-pings, presigns, token decodes, marshmallow dumps/loads);
3. a pyinstrument profile (0.1 ms sampling) summarised three ways: ``categories`` (each
   sample goes to the innermost library on its stack: psycopg2 = driver + waiting for
   PostgreSQL, sqlalchemy = ORM/Core/pool, marshmallow, ...), ``inclusive`` (time under
   notable functions, each counted once per stack) and ``top_self`` (the functions
   that themselves spend the most). The full text profile goes to ``raw_dir``.

Percentages are of the profiled time, so they compare across apps and endpoints.
"""

from __future__ import annotations

import cProfile
import json
import pstats
import sys
import time
from typing import Any

from inproc import call, make_environ, setup_environment

#: Sampling interval of pyinstrument, seconds.
SAMPLE_INTERVAL_S = 0.0001
WARMUP_CALLS = 20

#: (path fragment, category): the innermost matching frame of a sample decides its category.
CATEGORIES = (
    ("/psycopg2/", "psycopg2 + PostgreSQL wait"),
    ("/sqlalchemy/", "SQLAlchemy (ORM, Core, pool)"),
    ("/marshmallow/", "marshmallow"),
    ("/webargs/", "flask-smorest / webargs"),
    ("/flask_smorest/", "flask-smorest / webargs"),
    ("/urllib3/", "HTTP to the store (urllib3)"),
    ("/botocore/", "boto3 / botocore"),
    ("/boto3/", "boto3 / botocore"),
    ("/jwt/", "PyJWT"),
    ("/mutagen/", "audio sniff + parse"),
    ("/puremagic/", "audio sniff + parse"),
    ("/enzyme/", "audio sniff + parse"),
    ("/logging/", "logging"),
    ("/pythonjsonlogger/", "logging"),
    ("/flask_limiter/", "flask-limiter (rate limit)"),
    ("/limits/", "flask-limiter (rate limit)"),
    ("/json/", "json encode/decode"),
    ("/flask/", "Flask / Werkzeug"),
    ("/werkzeug/", "Flask / Werkzeug"),
    ("/advanced_notes/", "service code (advanced_notes)"),
    ("ceiling.py", "ceiling code"),
)
#: (function name, path fragment, label): time spent under these, once per stack.
INCLUSIVE = (
    ("verify", "advanced_notes/auth.py", "token check (TokenVerifier.verify)"),
    ("authenticate", "ceiling.py", "token check (jwt.decode)"),
    ("generate_presigned_url", "botocore/signers.py", "presign (generate_presigned_url)"),
    ("_checkout", "sqlalchemy/pool/base.py", "pool checkout (incl. pre-ping)"),
    ("do_ping", "sqlalchemy/engine/default.py", "pre-ping SELECT 1"),
    ("getconn", "psycopg2/pool.py", "pool checkout (psycopg2 pool)"),
    ("close", "sqlalchemy/orm/session.py", "Session.close (rollback + check-in)"),
    ("commit", "sqlalchemy/orm/session.py", "Session.commit (flush + COMMIT)"),
    ("execute", "sqlalchemy/orm/session.py", "Session.execute (statement + rows)"),
    ("flush", "sqlalchemy/orm/session.py", "ORM flush"),
    ("load", "marshmallow/schema.py", "marshmallow load (request body/args)"),
    ("dump", "marshmallow/schema.py", "marshmallow dump (response)"),
    ("head", "advanced_notes/storage.py", "store HEAD"),
    ("verify_audio", "advanced_notes/services/verification.py", "ranged GET + sniff + parse"),
    ("_check_request_limit", "flask_limiter/_extension.py", "rate limit check (flask-limiter)"),
    ("_finish_request", "advanced_notes/logs.py", "request log line (_finish_request)"),
    ("_check_quotas", "advanced_notes/services/clips.py", "quota check (count of pending clips)"),
    ("transaction", "advanced_notes/db.py", "Database.transaction (BEGIN, lock, COMMIT)"),
)
#: cProfile entries counted per request: (file fragment or "~", function fragment, label).
COUNTED = (
    ("~", "'execute' of 'psycopg2.extensions.cursor'", "psycopg2 execute (SQL statements)"),
    ("~", "'commit' of 'psycopg2.extensions.connection'", "psycopg2 commit"),
    ("~", "'rollback' of 'psycopg2.extensions.connection'", "psycopg2 rollback"),
    ("sqlalchemy/pool/base.py", "_checkout", "SQLAlchemy pool checkouts"),
    ("sqlalchemy/engine/default.py", "do_ping", "pre-pings"),
    ("psycopg2/pool.py", "_getconn", "psycopg2 pool checkouts"),
    ("botocore/signers.py", "generate_presigned_url", "presigns"),
    ("jwt/api_jwt.py", "decode_complete", "JWT decodes"),
    ("jwt/api_jws.py", "get_unverified_header", "JWT header parses"),
    ("marshmallow/schema.py", "_serialize", "marshmallow schema serializations"),
    ("marshmallow/schema.py", "_do_load", "marshmallow schema loads"),
    ("botocore/client.py", "_make_api_call", "store API calls (HEAD/GET)"),
)


def _profile_summary(session: Any, calls: int) -> dict[str, Any]:
    root = session.root_frame()
    total = root.time or 1e-12
    categories: dict[str, float] = {}
    inclusive: dict[str, float] = {}
    selfs: dict[str, float] = {}

    def walk(frame: Any, category: str, active: frozenset[str]) -> None:
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
        if frame.total_self_time > 0 and path:
            key = f"{frame.function} ({_short(path)}:{frame.line_no})"
            selfs[key] = selfs.get(key, 0.0) + frame.total_self_time
        for child in frame.children:
            walk(child, category, active)

    walk(root, "other (stdlib, harness)", frozenset())
    per_call_ms = 1000.0 * total / calls

    def shares(values: dict[str, float], limit: int | None = None) -> list[dict[str, Any]]:
        ordered = sorted(values.items(), key=lambda kv: -kv[1])[:limit]
        return [{"name": k, "pct": round(100 * v / total, 1), "ms_per_request": round(1000 * v / calls, 3)}
                for k, v in ordered]

    return {"profiled_ms_per_request": round(per_call_ms, 3), "categories": shares(categories),
            "inclusive": shares(inclusive), "top_self": shares(selfs, 15)}


def _short(path: str) -> str:
    for marker in ("site-packages/", "/lib/python3.11/", "/work/main/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def _counts(stats: pstats.Stats, calls: int) -> dict[str, float]:
    found: dict[str, float] = {label: 0.0 for _, _, label in COUNTED}
    for (filename, _line, function), (_cc, ncalls, *_rest) in stats.stats.items():  # type: ignore[attr-defined]
        for file_fragment, function_fragment, label in COUNTED:
            if (file_fragment == "~" and filename == "~" or file_fragment != "~" and file_fragment in filename) \
                    and function_fragment in function:
                found[label] += ncalls
    return {label: round(n / calls, 2) for label, n in found.items() if n}


def measure(app: Any, requests: list[list[Any]], n: int, expect: int, name: str, raw_dir: str) -> dict[str, Any]:
    """Warm up, time, count and profile ``n`` calls each of ``requests`` (cycled) on ``app``."""
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

    run(environs(WARMUP_CALLS))
    batch = environs(n)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    run(batch)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0

    batch = environs(n)
    profiler = cProfile.Profile()
    profiler.enable()
    run(batch)
    profiler.disable()
    counts = _counts(pstats.Stats(profiler), n)

    batch = environs(n)
    sampler = Profiler(interval=SAMPLE_INTERVAL_S)
    sampler.start()
    run(batch)
    sampler.stop()
    with open(f"{raw_dir}/profile-{name.replace('/', '-')}.txt", "w") as f:
        f.write(sampler.output_text(unicode=True, color=False, show_all=False))
    return {"wall_ms_per_request": round(1000 * wall / n, 3), "cpu_ms_per_request": round(1000 * cpu / n, 3),
            "calls_per_request": counts, **_profile_summary(sampler.last_session, n)}


def main(argv: list[str]) -> int:
    with open(argv[1]) as f:
        spec = json.load(f)
    setup_environment(spec["env"])
    # No logging setup here: create_app configures it as in a gunicorn worker (one JSON
    # line per request to stderr, which goes to this process's log file), so its cost counts.
    from advanced_notes import create_app

    apps = {"ours": create_app()}
    import ceiling

    apps["ceiling"] = ceiling.app
    results: dict[str, Any] = {}
    for endpoint, requests in spec["requests"].items():
        for app_name, app in apps.items():
            if app_name == "ceiling" and endpoint not in spec["ceiling_endpoints"]:
                continue
            n = spec["n_complete"] if endpoint == "complete" else spec["n"]
            key = f"{app_name}/{endpoint}"
            results[key] = measure(app, requests, n, spec["expect"][endpoint], key, spec["raw_dir"])
            print(f"profiled {key}: {results[key]['wall_ms_per_request']} ms/request", file=sys.stderr)
    with open(argv[2], "w") as f:
        json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

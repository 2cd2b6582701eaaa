"""How many requests one owner gets through gunicorn with several workers, per counter storage.

Starts moto's S3 server and a fresh SQLite database (or ``--database-url``), then, for each
storage asked for, the real ``gunicorn -c gunicorn.conf.py wsgi:app`` with ``--workers``
workers on loopback, ``APP_ENV=production`` and ``RATELIMIT_DEFAULT=<limit> per minute``;
sends ``--requests`` (default 2 x the limit) ``GET /api/audio-clips`` for one owner from
``--threads`` threads, inside one clock-aligned minute, and prints the 2xx and 429 counts
and the effective limit as a share of the setting. With memory counters each worker counts
alone (up to workers x the limit); with Redis the limit holds.

    python bench/ratelimit_workers.py                      # 4 workers, 300/min, memory and redis
    python bench/ratelimit_workers.py --storage redis --limit 40 --workers 4

Redis: ``--redis-url`` (default redis://127.0.0.1:6379/5); each run uses a fresh owner, so
its keys collide with nothing.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # testkit, when run as a script

import jwt
import requests

from advanced_notes.adapters import migrate
from testkit.servers import gunicorn_serving, moto_server

SECRET = "ratelimit-bench-" + "s" * 40


def run_one(settings: dict[str, str], workers: int, limit: int, total: int, threads: int) -> collections.Counter[int]:
    """Serve with gunicorn, send ``total`` requests for one fresh owner; status -> count."""
    log_path = Path(tempfile.mkdtemp(prefix="ratelimit-bench-")) / "gunicorn.log"
    server_env = {
        "GUNICORN_WORKERS": str(workers),
        "GUNICORN_THREADS": "4",
        "RATELIMIT_DEFAULT": f"{limit} per minute",
    }
    with log_path.open("wb") as log, gunicorn_serving(settings, log, startup_seconds=90, **server_env) as (base, _):
        time.sleep(2)  # let every worker finish booting
        token = jwt.encode({"sub": f"bench-{uuid.uuid4().hex}", "exp": int(time.time()) + 600}, SECRET, "HS256")
        headers = {"Authorization": f"Bearer {token}"}

        def one(_: int) -> int:
            return requests.get(f"{base}/api/audio-clips", headers=headers, timeout=30).status_code

        if time.time() % 60 > 40:  # the windows are clock-aligned minutes: start well inside one
            time.sleep(60 - time.time() % 60 + 0.5)
        started = time.time()
        with ThreadPoolExecutor(threads) as pool:
            statuses = collections.Counter(pool.map(one, range(total)))
        if int(started // 60) != int(time.time() // 60):
            print("  (the requests straddled a minute boundary: two windows were counted)")
    warned = "rate limits do not hold across workers" in log_path.read_text(errors="replace")
    print(f"  startup warning about per-process counters: {'yes' if warned else 'no'}")
    return statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--limit", type=int, default=300, help="RATELIMIT_DEFAULT, requests per minute")
    parser.add_argument("--requests", type=int, default=None, help="default: 2 x the limit")
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--storage", choices=("memory", "redis", "both"), default="both")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/5")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()
    total = args.requests or 2 * args.limit

    with moto_server() as s3_endpoint:
        database_url = args.database_url or f"sqlite:///{tempfile.mkdtemp()}/ratelimit.sqlite"
        migrate.upgrade(database_url)
        base = {
            "APP_ENV": "production",
            "DATABASE_URL": database_url,
            "S3_BUCKET": "ratelimit-bench",
            "S3_ENDPOINT_URL": s3_endpoint,
            "S3_ADDRESSING_STYLE": "path",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench-secret",
            "AUTH_JWT_SECRET": SECRET,
            "MAX_PENDING_UPLOADS_PER_OWNER": "0",
        }
        storages = ("memory", "redis") if args.storage == "both" else (args.storage,)
        print(
            f"{args.workers} gunicorn workers, RATELIMIT_DEFAULT={args.limit} per minute, "
            f"{total} requests for one owner from {args.threads} threads"
        )
        for storage in storages:
            settings = dict(base)
            if storage == "redis":
                settings["RATELIMIT_STORAGE_URI"] = args.redis_url
            print(f"{storage}:")
            statuses = run_one(settings, args.workers, args.limit, total, args.threads)
            ok = sum(n for status, n in statuses.items() if 200 <= status < 300)
            other = {s: n for s, n in statuses.items() if not (200 <= s < 300 or s == 429)}
            print(
                f"  2xx {ok}, 429 {statuses[429]}, other {other or 0}; "
                f"effective limit {ok / args.limit:.2f} x the setting"
            )


if __name__ == "__main__":
    main()

"""The frequent sweep's cost against the number of stored clips: it should be flat.

    .venv/bin/python -m bench.sweep_scale [--sizes 10000,100000,1000000] [--pending 100]
        [--backends sqlite,postgresql] [--reconcile-max 100000] [--out figures.json]

For each backend and size: a fresh database (SQLite file, or a PostgreSQL database created
and dropped; ``BENCH_DATABASE_URL``, default postgresql+psycopg2://postgres@127.0.0.1:5432/postgres)
migrated with Alembic, ``size`` ready clips bulk-inserted with one ``INSERT ... SELECT``,
and ``--pending`` pending clips: a tenth uploaded (a real Ogg file in moto: finished
``ready``), the rest without an object, half of them stale (expired, URLs long dead)
and half young (left pending). Then the real ``Sweeper.run(apply=True)`` (``sweep
--apply``) against moto's threaded server on loopback, measured:

- seconds (wall time of the run);
- store requests, by operation, counted with botocore's ``before-call`` event on the
  adapter's client (every request passes it);
- SQL rows the sweep's scans read (``SweepReport.rows_scanned``) and SQL statements sent
  (SQLAlchemy's ``before_cursor_execute`` event).

For comparison, the work every run did before the frequent/nightly split: the two-way
reconcile (``run(apply=False, reconcile=True)``), which lists the whole folder and reads
every row. Stored objects of the ready clips are not written to moto (10^6 PUTs); the
listing is generated from the table in key order, one 1000-key page at a time (as
bench/perf/sweepbench.py does), and its pages are counted as the LIST requests a store
would answer. Run up to ``--reconcile-max`` clips.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from testkit.paths import FIXTURES as AUDIO_FIXTURES

FIXTURE = AUDIO_FIXTURES / "note.ogg"
PREFIX = "bench"


def _bulk_ready(conn: Any, dialect: str, size: int) -> None:
    """``size`` ready clips in one statement (the quota triggers run per statement or row)."""
    from sqlalchemy import text

    if dialect == "postgresql":
        conn.execute(
            text(
                "INSERT INTO audio_clips (id, owner_id, status, mime_type, bytes, storage_key, created_at, updated_at, "
                "completed_at) SELECT u, 'owner-' || (i % 1000), 'ready', 'audio/ogg', 1000, "
                f"'{PREFIX}/audio-clips/' || u || '.ogg', now() - i * interval '1 second', now(), "
                "now() - i * interval '1 second' FROM (SELECT gen_random_uuid() AS u, i "
                "FROM generate_series(1, :n) AS i) AS s"
            ),
            {"n": size},
        )
        conn.execute(text("ANALYZE audio_clips"))
    else:
        # SQLAlchemy stores a UUID in SQLite as 32 hex digits; keys use the same text.
        conn.execute(
            text(
                "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < :n), "
                "u(i, id) AS (SELECT i, lower(hex(randomblob(16))) FROM s) "
                "INSERT INTO audio_clips (id, owner_id, status, mime_type, bytes, storage_key, created_at, "
                "updated_at, completed_at) SELECT id, 'owner-' || (i % 1000), 'ready', 'audio/ogg', 1000, "
                f"'{PREFIX}/audio-clips/' || id || '.ogg', datetime('now', '-' || i || ' seconds'), "
                "datetime('now'), datetime('now', '-' || i || ' seconds') FROM u"
            ),
            {"n": size},
        )
        conn.execute(text("ANALYZE"))


def _pending(db: Any, storage: Any, count: int) -> None:
    """``count`` pending clips: a tenth uploaded, half the rest stale with dead URLs, half young."""
    from advanced_notes.adapters.models import AudioClip

    now = dt.datetime.now(dt.UTC)
    data = FIXTURE.read_bytes()
    uploaded = max(count // 10, 1)
    with db.transaction() as session:
        for n in range(count):
            clip_id = uuid.uuid4()
            key = f"{PREFIX}/audio-clips/{clip_id}.ogg"
            stale = n >= uploaded and n % 2 == 0
            created = now - (dt.timedelta(days=2) if stale else dt.timedelta(minutes=10))
            session.add(
                AudioClip(
                    id=clip_id,
                    owner_id=f"owner-{n}",
                    status="pending",
                    mime_type="audio/ogg",
                    bytes=len(data),
                    storage_key=key,
                    created_at=created,
                    updated_at=created,
                    upload_expires_at=created + dt.timedelta(minutes=15),
                )
            )
            if n < uploaded:
                storage.put_object(key, data, "audio/ogg")


def _table_listing(db: Any, batch: int = 1000) -> Iterator[list[Any]]:
    """The objects the bucket would hold for the rows (one per clip, its key), in key order, by page."""
    from sqlalchemy import select

    from advanced_notes.adapters.models import AudioClip
    from advanced_notes.adapters.storage import ListedObject

    after = ""
    while True:
        with db.read() as session:
            rows = session.execute(
                select(AudioClip.storage_key, AudioClip.bytes, AudioClip.created_at)
                .where(AudioClip.storage_key > after)
                .order_by(AudioClip.storage_key)
                .limit(batch)
            ).all()
        if not rows:
            return
        after = rows[-1][0]
        yield [ListedObject(key, size, created) for key, size, created in rows]


def measure(backend: str, size: int, pending: int, reconcile: bool, endpoint: str) -> dict[str, Any]:
    """One fresh database of ``size`` ready + ``pending`` pending clips; the sweep's figures."""
    from sqlalchemy import create_engine, event, text
    from sqlalchemy.engine import make_url

    from advanced_notes.adapters import migrate
    from advanced_notes.adapters.db import Database
    from advanced_notes.adapters.storage import S3Storage
    from advanced_notes.services.sweeper import Sweeper
    from advanced_notes.settings import load_settings

    scratch = tempfile.TemporaryDirectory(prefix="sweep-scale-")
    admin = None
    if backend == "postgresql":
        base = make_url(os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"))
        name = f"an_sweep_{uuid.uuid4().hex[:10]}"
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = base.set(database=name).render_as_string(hide_password=False)
    else:
        url = f"sqlite:///{scratch.name}/bench.db"
    try:
        migrate.upgrade(url)
        logging.getLogger("alembic").setLevel(logging.WARNING)  # its per-revision lines, once per size
        settings = load_settings(
            {
                "APP_ENV": "bench",
                "DATABASE_URL": url,
                "S3_BUCKET": f"sweep-{uuid.uuid4().hex[:8]}",
                "S3_KEY_PREFIX": PREFIX,
                "AWS_ACCESS_KEY_ID": "AKIABENCH",
                "AWS_SECRET_ACCESS_KEY": "bench-secret",
                "S3_ENDPOINT_URL": endpoint,
                "S3_ADDRESSING_STYLE": "path",
                "AUTH_JWT_SECRET": "bench-" + "x" * 40,
                "SWEEP_COMPLETE_GRACE_SECONDS": "0",
                "UPLOAD_RESERVATION_SECONDS": "86400",
            }
        )
        db = Database(settings.database_url)
        storage = S3Storage(settings)
        storage.ensure_bucket()
        started = time.perf_counter()
        with db.engine.begin() as conn:
            _bulk_ready(conn, db.engine.dialect.name, size)
        _pending(db, storage, pending)
        seeded = round(time.perf_counter() - started, 1)

        calls: Counter[str] = Counter()
        statements = Counter[str]()
        storage._client.meta.events.register("before-call.s3", lambda model, **_: calls.update([model.name]))
        event.listen(db.engine, "before_cursor_execute", lambda *a, **k: statements.update(["sql"]))

        def run(**kw: Any) -> dict[str, Any]:
            calls.clear()
            statements.clear()
            began = time.perf_counter()
            report = Sweeper(db, storage, settings).run(**kw)
            return {
                "seconds": round(time.perf_counter() - began, 3),
                "store_requests": sum(calls.values()),
                "by_operation": dict(calls),
                "rows_read": report.rows_scanned,
                "sql_statements": statements["sql"],
                "objects_listed": report.objects_scanned,
                "finished": report.finished_ready + report.finished_rejected,
                "expired": report.expired,
                "pending_checked": report.pending_checked,
            }

        figures: dict[str, Any] = {"backend": backend, "stored": size, "pending": pending, "seed_seconds": seeded}
        figures["frequent"] = run(apply=True)
        if reconcile:
            # The listing of every stored object, from the table (see the module doc); pages counted.
            pages = Counter[str]()

            def listed(prefix: str, page_size: int = 1000) -> Iterator[list[Any]]:
                for page in _table_listing(db, page_size):
                    pages.update(["ListObjectsV2"])
                    yield page

            storage.list_objects = listed  # type: ignore[method-assign]
            figures["reconcile"] = run(apply=False, reconcile=True)
            figures["reconcile"]["store_requests"] += pages["ListObjectsV2"]
            figures["reconcile"]["by_operation"]["ListObjectsV2 (pages)"] = pages["ListObjectsV2"]
        db.dispose()
        return figures
    finally:
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
        scratch.cleanup()


def table(results: list[dict[str, Any]]) -> str:
    """The figures as a Markdown table (one row per backend and size)."""
    lines = [
        "| backend | stored clips | pending | frequent: seconds | store requests | SQL rows read | SQL statements "
        "| reconcile (every run before): seconds | LIST pages + other requests | SQL rows read |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        f, c = r["frequent"], r.get("reconcile")
        old = (
            f"{c['seconds']} | {c['by_operation'].get('ListObjectsV2 (pages)', 0)} + "
            f"{c['store_requests'] - c['by_operation'].get('ListObjectsV2 (pages)', 0)} | {c['rows_read']}"
            if c
            else "not run | | "
        )
        lines.append(
            f"| {r['backend']} | {r['stored']:,} | {r['pending']} | {f['seconds']} | {f['store_requests']} "
            f"| {f['rows_read']} | {f['sql_statements']} | {old} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--pending", type=int, default=100)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--reconcile-max", type=int, default=100_000)
    parser.add_argument("--out", default=None, help="Write the figures as JSON here too.")
    args = parser.parse_args()

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    results = []
    try:
        for backend in args.backends.split(","):
            for size in (int(s) for s in args.sizes.split(",")):
                figures = measure(backend, size, args.pending, size <= args.reconcile_max, f"http://{host}:{port}")
                print(json.dumps(figures), flush=True)
                results.append(figures)
    finally:
        server.stop()
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A sweep over 10^5 pending clips (issue 11): what finishing uploads without the client costs.

    .venv/bin/python bench/sweep_pending.py [--clips 100000] [--with-objects 50] [--live-urls 1000]

Real parts: PostgreSQL (a fresh database, migrated with Alembic, dropped at the end; set
BENCH_DATABASE_URL, default postgresql+psycopg2://postgres@127.0.0.1:5432/postgres),
moto's threaded S3 server on loopback, the real Sweeper, ClipCompleter and fixtures.
Rows are seeded with COPY; objects are few (``--with-objects`` real audio uploads),
which is the expensive case for a per-clip HEAD design and the cheap one for a listing.

Three sweeps (``--apply``), each timed, with the store's requests counted by kind:

1. ``fresh``: every clip pending and young (nothing to expire): the listing + row merge.
2. ``stale``: every clip pending past UPLOAD_RESERVATION_SECONDS; ``--with-objects`` of
   them have their object (finished: ready), ``--live-urls`` have a PUT URL that was
   still valid when the listing started (HEADed before expiry), the rest expire.
3. for comparison, the per-clip design this replaces: one HEAD per pending clip,
   timed over 1000 HEADs against the same server and projected to ``--clips``.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import os
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from testkit.paths import FIXTURES as AUDIO_FIXTURES

FIXTURE = AUDIO_FIXTURES / "note.ogg"


def seed(dsn: str, prefix: str, count: int, created_at: dt.datetime, live_urls: int) -> list[tuple[str, str]]:
    """COPY ``count`` pending clips; returns (id, key) of all, in insertion order."""
    import psycopg2

    rows, buf = [], io.StringIO()
    writer = csv.writer(buf)
    now = dt.datetime.now(dt.UTC)
    size = FIXTURE.stat().st_size
    for n in range(count):
        clip_id = uuid.uuid4()
        key = f"{prefix}/audio-clips/{clip_id}.ogg"
        # Most URLs expired long ago; ``live_urls`` were re-signed recently (refresh).
        expires = now + dt.timedelta(minutes=10) if n < live_urls else created_at - dt.timedelta(hours=1)
        # Clips arrive over time: one every 10 ms before ``created_at`` (distinct keyset values).
        at = created_at - dt.timedelta(milliseconds=10 * n)
        writer.writerow(
            [clip_id, f"owner-{n % 1000}", "", "pending", "audio/ogg", size, "", key, "", "", "", "", at, at, "",
             expires, ""]
        )  # fmt: skip
        rows.append((str(clip_id), key))
    buf.seek(0)
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:
        cur.copy_expert(
            "COPY audio_clips (id, owner_id, note_id, status, mime_type, bytes, duration_ms, storage_key, "
            "checksum_sha256, etag, stored_bytes, measured_duration_ms, created_at, updated_at, completed_at, "
            "upload_expires_at, idempotency_key) FROM STDIN WITH (FORMAT csv, NULL '')",
            buf,
        )
        cur.execute("ANALYZE audio_clips")
    conn.close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=100_000)
    parser.add_argument("--with-objects", type=int, default=50)
    parser.add_argument("--live-urls", type=int, default=1000)
    parser.add_argument("--out", default=None, help="Write the figures as JSON here too.")
    args = parser.parse_args()

    import logging

    from moto.server import ThreadedMotoServer
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from advanced_notes.adapters import migrate
    from advanced_notes.adapters.db import Database
    from advanced_notes.adapters.storage import S3Storage
    from advanced_notes.services.sweeper import Sweeper
    from advanced_notes.settings import load_settings

    base = make_url(os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"))
    name = f"an_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name)
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    figures: dict[str, object] = {"clips": args.clips, "with_objects": args.with_objects, "live_urls": args.live_urls}
    try:
        migrate.upgrade(url.render_as_string(hide_password=False))
        env = {
            "APP_ENV": "bench",
            "DATABASE_URL": url.render_as_string(hide_password=False),
            "S3_BUCKET": "bench",
            "AWS_ACCESS_KEY_ID": "AKIABENCH",
            "AWS_SECRET_ACCESS_KEY": "bench-secret",
            "S3_ENDPOINT_URL": f"http://{host}:{port}",
            "S3_ADDRESSING_STYLE": "path",
            "AUTH_JWT_SECRET": "bench-" + "x" * 40,
            "UPLOAD_RESERVATION_SECONDS": "86400",
            "SWEEP_COMPLETE_GRACE_SECONDS": "0",
        }
        settings = load_settings(env)
        db = Database(settings.database_url)

        class CountingStorage(S3Storage):
            """The real adapter, counting the store requests the sweep makes."""

            requests: dict[str, int]

            def reset(self) -> None:
                self.requests = {"list_pages": 0, "head": 0, "get_range": 0, "delete": 0}

            def list_objects(self, prefix: str, page_size: int = 1000):
                for page in super().list_objects(prefix, page_size):
                    self.requests["list_pages"] += 1
                    yield page

            def head(self, key: str, with_checksum: bool = False):
                self.requests["head"] += 1
                return super().head(key, with_checksum)

            def get_range(self, key: str, start: int, end: int) -> bytes:
                self.requests["get_range"] += 1
                return super().get_range(key, start, end)

            def delete(self, key: str) -> None:
                self.requests["delete"] += 1
                super().delete(key)

        class TimedSweeper(Sweeper):
            """The real Sweeper, timing its three phases (seconds)."""

            phases: dict[str, float]

            def _timed(self, name: str, method, *a, **kw):
                started = time.perf_counter()
                try:
                    return method(*a, **kw)
                finally:
                    self.phases[name] = round(time.perf_counter() - started, 2)

            def reconcile(self, *a, **kw):
                return self._timed("reconcile_and_finish", super().reconcile, *a, **kw)

            def expire_stale(self, *a, **kw):
                return self._timed("expire", super().expire_stale, *a, **kw)

            def retry_deletions(self, *a, **kw):
                return self._timed("recorded_deletions", super().retry_deletions, *a, **kw)

        storage = CountingStorage(settings)
        storage.ensure_bucket()
        data = FIXTURE.read_bytes()

        def run(label: str) -> None:
            storage.reset()
            sweeper = TimedSweeper(db, storage, settings)
            sweeper.phases = {}
            started = time.perf_counter()
            report = sweeper.run(apply=True)
            seconds = time.perf_counter() - started
            figures[label] = {
                "seconds": round(seconds, 2),
                "phases_seconds": sweeper.phases,
                "rows_scanned": report.rows_scanned,
                "objects_scanned": report.objects_scanned,
                "finished_ready": report.finished_ready,
                "finished_rejected": report.finished_rejected,
                "expired": report.expired,
                "store_requests": dict(storage.requests),
            }
            print(label, json.dumps(figures[label]), flush=True)

        # 1. fresh: everything young.
        now = dt.datetime.now(dt.UTC)
        rows = seed(dsn, settings.key_prefix, args.clips, now - dt.timedelta(minutes=5), 0)
        for _, key in rows[: args.with_objects]:
            storage.put_object(key, data, "audio/ogg")
        run("fresh")
        with db.transaction() as session:
            session.execute(text("DELETE FROM audio_clips"))
            session.execute(text("DELETE FROM pending_deletions"))

        # 2. stale: everything past the reservation.
        rows = seed(dsn, settings.key_prefix, args.clips, now - dt.timedelta(days=2), args.live_urls)
        for _, key in rows[-args.with_objects :]:
            storage.put_object(key, data, "audio/ogg")
        run("stale")

        # 3. the per-clip HEAD design, projected from 1000 HEADs.
        started = time.perf_counter()
        for _, key in rows[:1000]:
            storage.head(key)
        per_head = (time.perf_counter() - started) / 1000
        figures["head_every_pending_clip_projected_seconds"] = round(per_head * args.clips, 1)
        figures["seconds_per_head"] = round(per_head, 5)
        print("head per clip (projected)", figures["head_every_pending_clip_projected_seconds"], "s", flush=True)
        db.dispose()
    finally:
        server.stop()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=1))
    print(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

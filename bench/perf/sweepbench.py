"""The sweeper over a large table, in a fresh process: time (seconds) and peak RSS (KiB).

    python sweepbench.py SPEC.json OUT.json

SPEC: ``{"env": {...service settings...}, "dsn": "libpq dsn of the same database"}``.

Runs ``Sweeper(db, storage, settings).run(apply=False, reconcile=True)`` (the nightly
two-way reconcile as a dry run: it reads everything and changes nothing) with the
service's real Sweeper and Database. Only the bucket listing is a stand-in: moto lists
about a thousand keys per request through XML and would take far longer than the
sweeper itself at 10^6 objects, so
:class:`TableListedStorage` lists the objects the bucket would hold, generated from
the table in key order, one page at a time through a server-side cursor:

* one object per clip (``<prefix>/audio-clips/<id>.<ext>``, the clip's size), except
  every 500th ready clip, whose object is missing (the sweeper reports it);
* after every 1000th clip an orphan object no row knows (the clip's UUID + 1, which
  sorts right after it).

So the object count matches the row count, and reconcile does its real work: the
merge, orphan checks against ``pending_deletions``, missing and late objects.
Peak RSS is ``getrusage(RUSAGE_SELF).ru_maxrss`` (KiB on Linux), read before and after,
with ``VmHWM`` from /proc/self/status as a cross-check.
"""

from __future__ import annotations

import json
import resource
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

from inproc import setup_environment

MISSING_EVERY = 500
ORPHAN_EVERY = 1000


def _peak_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _vm_hwm_kib() -> int:
    """Peak RSS of this process image alone (``VmHWM``): unlike ``ru_maxrss`` it does not
    start at the parent's peak, so it cross-checks the figure above."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def main(argv: list[str]) -> int:
    with open(argv[1]) as f:
        spec = json.load(f)
    setup_environment(spec["env"])
    import os

    import psycopg2

    from advanced_notes.adapters.db import Database
    from advanced_notes.adapters.storage import ListedObject, S3Storage
    from advanced_notes.services.sweeper import Sweeper
    from advanced_notes.settings import load_settings

    class TableListedStorage(S3Storage):
        """S3Storage whose listing is generated from the table (see the module docstring)."""

        def __init__(self, settings: Any, dsn: str):
            super().__init__(settings)
            self.dsn = dsn
            self.listed = 0

        def list_objects(self, prefix: str, page_size: int = 1000) -> Iterator[list[ListedObject]]:
            conn = psycopg2.connect(self.dsn)
            try:
                # A named (server-side) cursor streams rows: the stand-in holds one page,
                # like a real S3 listing, so it does not inflate the RSS being measured.
                with conn.cursor(name="listing") as cur:
                    cur.itersize = page_size
                    cur.execute(
                        "SELECT id, storage_key, bytes, status, created_at FROM audio_clips "
                        "WHERE storage_key LIKE %s ORDER BY id",
                        (prefix + "%",),
                    )
                    page: list[ListedObject] = []
                    for n, (clip_id, key, size, status, created_at) in enumerate(cur, 1):
                        if not (status == "ready" and n % MISSING_EVERY == 0):
                            page.append(ListedObject(key, size, created_at))
                        if n % ORPHAN_EVERY == 0:
                            orphan = uuid.UUID(int=(uuid.UUID(clip_id).int + 1) % 2**128)
                            page.append(ListedObject(f"{prefix}{orphan}.m4a", 1000, created_at))
                        if len(page) >= page_size:
                            self.listed += len(page)
                            yield page
                            page = []
                    if page:
                        self.listed += len(page)
                        yield page
            finally:
                conn.close()

    settings = load_settings(os.environ)
    db = Database(settings.database_url)
    storage = TableListedStorage(settings, spec["dsn"])
    db.ping()
    rss_before, hwm_before = _peak_rss_kib(), _vm_hwm_kib()
    started = time.perf_counter()
    report = Sweeper(db, storage, settings).run(apply=False, reconcile=True)
    seconds = time.perf_counter() - started
    out = {
        "seconds": round(seconds, 3),
        "peak_rss_before_kib": rss_before,
        "peak_rss_kib": _peak_rss_kib(),
        "vm_hwm_before_kib": hwm_before,
        "vm_hwm_kib": _vm_hwm_kib(),
        "rows_scanned": report.rows_scanned,
        "objects_scanned": report.objects_scanned,
        "objects_listed": storage.listed,
        "would_expire": report.expired,
        "orphans": report.orphans.count,
        "missing_objects": report.missing_objects.count,
        "late_objects": report.late_objects.count,
    }
    db.dispose()
    with open(argv[2], "w") as f:
        json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

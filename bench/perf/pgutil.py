"""The benchmark's own PostgreSQL databases: create, vacuum, inspect, drop (run.py migrates them).

Only databases whose name starts with ``an_perf_`` are ever created or dropped here,
and each run names its databases after its own run id, so two runs (or a test suite
using other databases on the same server) never touch each other's data.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2
from psycopg2 import sql

#: Server of the benchmark databases (trust auth on loopback).
PG_HOST = os.environ.get("AN_PERF_PGHOST", "127.0.0.1")
PG_PORT = int(os.environ.get("AN_PERF_PGPORT", "5432"))
PG_USER = os.environ.get("AN_PERF_PGUSER", "postgres")
NAME_PREFIX = "an_perf_"
_SAFE_NAME = re.compile(r"^an_perf_[a-z0-9_]{1,50}$")


def dsn(dbname: str) -> str:
    """libpq connection string of ``dbname``."""
    return f"host={PG_HOST} port={PG_PORT} user={PG_USER} dbname={dbname}"


def sqlalchemy_url(dbname: str) -> str:
    """The service's ``DATABASE_URL`` for ``dbname``."""
    return f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{dbname}"


def _check_name(dbname: str) -> None:
    if not _SAFE_NAME.match(dbname):
        raise ValueError(f"refusing to manage database {dbname!r}: only {NAME_PREFIX}* names are ours")


@contextmanager
def connect(dbname: str, autocommit: bool = True) -> Iterator[psycopg2.extensions.connection]:
    """A psycopg2 connection to ``dbname`` (autocommit by default), closed on exit."""
    conn = psycopg2.connect(dsn(dbname), connect_timeout=5)
    conn.autocommit = autocommit
    try:
        yield conn
    finally:
        conn.close()


def create_database(dbname: str) -> None:
    """Create the empty database ``dbname`` (must be an ``an_perf_*`` name)."""
    _check_name(dbname)
    with connect("postgres") as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))


def drop_database(dbname: str) -> None:
    """Drop ``dbname`` if it exists, ending its remaining sessions (PostgreSQL >= 13)."""
    _check_name(dbname)
    with connect("postgres") as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))


def vacuum_analyze(dbname: str) -> None:
    """VACUUM ANALYZE: fresh planner statistics and visibility map after a bulk load.

    Without it the planner judges a freshly COPYed table by stale estimates, and index-only
    scans must visit the heap; production tables get this from autovacuum.
    """
    with connect(dbname) as conn, conn.cursor() as cur:
        cur.execute("VACUUM (ANALYZE) audio_clips")
        cur.execute("VACUUM (ANALYZE) pending_deletions")


def count_clips(dbname: str) -> int:
    """Rows in ``audio_clips``."""
    with connect(dbname) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM audio_clips")
        return int(cur.fetchone()[0])


def table_bytes(dbname: str) -> dict[str, int]:
    """Sizes in bytes: ``heap`` (table), ``indexes`` (all its indexes)."""
    with connect(dbname) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_table_size('audio_clips'), pg_indexes_size('audio_clips')")
        heap, indexes = cur.fetchone()
        return {"heap": int(heap), "indexes": int(indexes)}


def server_version() -> str:
    """``SELECT version()`` of the server, shortened to its first comma."""
    with connect("postgres") as conn, conn.cursor() as cur:
        cur.execute("SHOW server_version")
        version = cur.fetchone()[0]
        cur.execute("SHOW shared_buffers")
        return f"PostgreSQL {version} (shared_buffers {cur.fetchone()[0]})"

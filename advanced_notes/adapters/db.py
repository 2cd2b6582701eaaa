"""Database engine, session factory and declarative base.

One :class:`Database` per app (one engine and pool per process). Services open a
session per unit of work and own the transaction; nothing here is request-scoped.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeAlias

from sqlalchemy import DateTime, MetaData, create_engine, event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

#: What the adapters' statement functions take: a connection of :meth:`Database.statement`
#: or the session of :meth:`Database.transaction`.
Executor: TypeAlias = Connection | Session
#: The session of :meth:`Database.transaction`, as services name it (outbox writers take it).
Transaction: TypeAlias = Session

#: Constraint names are fixed from the first revision so later migrations can drop
#: and alter them by name on every backend (SQLite batch mode needs names).
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC timestamp on every backend.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so values are written
    as UTC and read back with ``tzinfo=UTC``. Naive datetimes are refused on write:
    they are the classic source of off-by-hours bugs.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware UTC datetime")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # We emit BEGIN ourselves (below); pysqlite's own implicit BEGIN is turned off.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        # WAL lets readers run while one writer commits; busy_timeout makes concurrent
        # writers wait instead of failing with "database is locked".
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=5000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Write transactions take the write lock up front (BEGIN IMMEDIATE): a deferred
        # transaction that reads, then writes after another writer committed, fails at
        # once with SQLITE_BUSY_SNAPSHOT, which busy_timeout cannot wait out.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")


_WRITE = "advanced_notes_write"
APPLICATION_NAME = "advanced-notes"


def make_engine(url: str) -> Engine:
    """Create the engine for ``url`` with pool and timeout settings fit for a web process.

    PostgreSQL: idle connections are pinged before use (see :func:`_ping_idle_connections`),
    a 3 s connect timeout and a 5 s pool wait so an outage answers 503 quickly. Its
    connections are in autocommit by default (the hot paths' single statements; see
    :class:`Database`), so checking one out and in toggles nothing.
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 5})
        _configure_sqlite(engine)
        return engine
    connect_args: dict[str, Any] = {}
    if url.startswith("postgresql"):
        # application_name: operators (and the soak test) can see the pool in pg_stat_activity.
        connect_args.update(connect_timeout=3, application_name=APPLICATION_NAME)
    options: dict[str, Any] = {"isolation_level": "AUTOCOMMIT"} if url.startswith("postgresql") else {}
    engine = create_engine(
        url, pool_size=5, max_overflow=10, pool_timeout=5, pool_recycle=1800, connect_args=connect_args, **options
    )
    _ping_idle_connections(engine)
    return engine


#: A pooled connection idle longer than this is pinged before use (seconds).
PING_AFTER_IDLE_SECONDS = 10.0


def _ping_idle_connections(engine: Engine) -> None:
    """Ping a pooled connection at checkout only if it sat idle (SQLAlchemy's custom
    pessimistic-disconnect recipe).

    ``pool_pre_ping`` pings on every checkout: a round trip per request (about 0.45 ms,
    a seventh of a playback). Connections that were just used are alive; the ones a
    database restart, failover or idle firewall kills are those that waited. A dead
    connection found while in use raises a disconnect error, which invalidates the
    whole pool: one 503 per worker, then fresh connections.
    """

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get("checked_in_at", 0.0) > PING_AFTER_IDLE_SECONDS:
            try:
                engine.dialect.do_ping(dbapi_conn)
            except Exception as exc:  # the pool then retries with a new connection
                raise DisconnectionError(f"stale pooled connection: {exc}") from exc


class Database:
    """Engine plus session factory for one database URL.

    Args:
        url: a SQLAlchemy URL (``postgresql+psycopg2://...`` or ``sqlite:///...``).
    """

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        # PostgreSQL connections are in autocommit unless a transaction asks otherwise:
        # reads and the hot paths' single statements send no BEGIN/COMMIT/ROLLBACK round
        # trips and check connections out and in without switching their mode (a switch per
        # request is a measurable share of a playback: docs/benchmarks.md). Transactions
        # switch to READ COMMITTED for their own duration; the pool switches the connection
        # back when it returns.
        # SQLite keeps the explicit BEGIN of _configure_sqlite (its round trips are calls).
        self._postgresql = self.engine.dialect.name == "postgresql"
        transactional = (
            self.engine.execution_options(isolation_level="READ COMMITTED") if self._postgresql else self.engine
        )
        self._sessions = sessionmaker(transactional, expire_on_commit=False)
        self._read_sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session inside one write transaction: committed on success, rolled back on error."""
        with self._sessions() as session, session.begin():
            session.connection(execution_options={_WRITE: True})
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reads (each statement sees committed data; nothing is written)."""
        with self._read_sessions() as session:
            yield session

    @contextmanager
    def statement(self, *, write: bool = False) -> Iterator[Connection]:
        """A Core connection for statements that are each atomic by themselves (the hot paths).

        PostgreSQL: autocommit, so each statement is one round trip (no BEGIN, no COMMIT)
        and its own transaction. SQLite: one transaction around the block, ``BEGIN
        IMMEDIATE`` when ``write`` (its round trips are function calls), committed on exit.
        Use :meth:`transaction` when several statements must commit together.

        Args:
            write: the block writes (SQLite takes the write lock up front).
        """
        if self._postgresql:  # the engine's connections are in autocommit
            with self.engine.connect() as conn:
                yield conn
            return
        with self.engine.connect() as conn:
            if write:
                conn.execution_options(**{_WRITE: True})
            with conn.begin():
                yield conn

    def ping(self) -> None:
        """Run ``SELECT 1``; raises SQLAlchemy's OperationalError when unreachable."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        """Close every pooled connection (tests, and after fork)."""
        self.engine.dispose()


def transient_database_error(exc: BaseException) -> bool:
    """True for a database failure that the same work can get past later.

    The database unreachable or busy (OperationalError, InterfaceError, a pool timeout, a
    dropped connection) and a unique-key race with a concurrent writer (IntegrityError: a
    retry finds the winner's row) are transient; anything else fails the same way again.
    """
    if isinstance(exc, (OperationalError, InterfaceError, IntegrityError, PoolTimeout)):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated

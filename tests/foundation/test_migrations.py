"""Alembic owns the schema: upgrade from empty, downgrade to base, and models == migrations."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from advanced_notes.adapters import migrate
from advanced_notes.adapters.db import Base
from advanced_notes.api.context import services_of
from tests.helpers import run_cli


def _diff(url: str) -> list:
    engine = create_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    engine.dispose()
    return diff


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_downgrade_and_models_match(empty_database_url):
    url = empty_database_url()
    assert _tables(url) == set()
    migrate.upgrade(url)
    assert {"audio_clips", "alembic_version"} <= _tables(url)
    assert _diff(url) == []
    engine = create_engine(url)
    indexes = {ix["name"]: ix["column_names"] for ix in inspect(engine).get_indexes("audio_clips")}
    engine.dispose()
    assert indexes["ix_audio_clips_owner_note_status_created"] == ["owner_id", "note_id", "status", "created_at", "id"]
    assert indexes["ix_audio_clips_status_created"] == ["status", "created_at"]
    # The quota reads owner_usage (revision 0007), not a count over this index.
    assert "ix_audio_clips_owner_status_bytes" not in indexes
    assert "owner_usage" in _tables(url)
    migrate.downgrade(url, "base")
    assert _tables(url) <= {"alembic_version"}
    migrate.upgrade(url)
    assert _diff(url) == []


def test_db_cli_upgrade(empty_database_url, base_config):
    from advanced_notes.app import create_app

    url = empty_database_url()
    app = create_app({**base_config, "DATABASE_URL": url})
    result = run_cli(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "audio_clips" in _tables(url)
    services_of(app).db.dispose()


def test_hot_queries_use_their_indexes(empty_database_url):
    """On PostgreSQL: note audio is one index scan with no sort; a bulk insert keeps owner_usage exact."""
    url = empty_database_url()
    if not url.startswith("postgresql"):
        import pytest

        pytest.skip("plans are PostgreSQL's; .ci/run runs this on PostgreSQL")
    from sqlalchemy import text

    migrate.upgrade(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO audio_clips (id, owner_id, note_id, status, mime_type, bytes, storage_key, created_at, "
                "updated_at) SELECT gen_random_uuid(), 'o' || (i % 500), 'n' || (i % 5000), "
                "(ARRAY['ready','pending','rejected'])[1 + i % 3], 'audio/ogg', 10, 'k/' || i, "
                "now() - i * interval '1 second', now() FROM generate_series(1, 20000) AS i"
            )
        )
        conn.execute(text("ANALYZE audio_clips"))
        plan = "\n".join(
            conn.execute(
                text(
                    "EXPLAIN SELECT * FROM audio_clips WHERE owner_id = 'o7' AND note_id = 'n7' AND status = 'ready' "
                    "ORDER BY created_at DESC, id DESC LIMIT 1"
                )
            ).scalars()
        )
        # One INSERT ... SELECT of 20,000 rows: the statement trigger added each owner's figures once.
        usage = conn.execute(text("SELECT pending_uploads, used_bytes FROM owner_usage WHERE owner_id = 'o7'")).one()
        counted = conn.execute(
            text(
                "SELECT count(*) FILTER (WHERE status = 'pending'), "
                "sum(bytes) FILTER (WHERE status IN ('pending', 'ready')) FROM audio_clips WHERE owner_id = 'o7'"
            )
        ).one()
    engine.dispose()
    assert "ix_audio_clips_owner_note_status_created" in plan and "Sort" not in plan, plan
    assert tuple(usage) == tuple(counted) and usage[0] > 0, (usage, counted)


def test_processing_jobs_are_written_by_the_database(empty_database_url):
    """Revision 0009: ready clips of before get a job; pending -> ready writes one; DELETE removes it.

    On SQLite the downgrade drops the columns in place, so revision 0007's owner_usage
    triggers still count after it.
    """
    import datetime as dt
    import uuid

    from sqlalchemy import text

    from advanced_notes.adapters.clip_sql import MARK_READY
    from advanced_notes.adapters.db import Database

    url = empty_database_url()
    migrate.upgrade(url, "0008")
    old_ready, old_pending, fresh = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    engine = create_engine(url)
    insert = text(
        "INSERT INTO audio_clips (id, owner_id, status, mime_type, bytes, storage_key, created_at, updated_at) "
        "VALUES (:id, 'o', :status, 'audio/ogg', 10, :key, :now, :now)"
    )
    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    with engine.begin() as conn:
        for clip_id, status in ((old_ready, "ready"), (old_pending, "pending")):
            conn.execute(
                insert,
                {
                    "id": clip_id.hex if "sqlite" in url else clip_id,
                    "status": status,
                    "key": f"k/{clip_id}",
                    "now": now,
                },
            )
    engine.dispose()
    migrate.upgrade(url)

    db = Database(url)
    with db.statement() as conn:
        assert conn.execute(text("SELECT count(*) FROM processing_jobs")).scalar() == 1
        statuses = dict(conn.execute(text("SELECT status, processing_status FROM audio_clips")).all())
    assert statuses == {"ready": "queued", "pending": None}
    later = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)
    with db.statement(write=True) as conn:
        conn.execute(
            text(
                "INSERT INTO audio_clips (id, owner_id, status, mime_type, bytes, storage_key, created_at, updated_at)"
                " VALUES (:id, 'o', 'pending', 'audio/ogg', 10, 'k/fresh', :now, :now)"
            ).bindparams(),
            {"id": fresh.hex if "sqlite" in url else fresh, "now": now},
        )
    params = {"etag": None, "stored_bytes": 10, "measured_duration_ms": 1, "completed_at": later, "updated_at": later}
    with db.statement(write=True) as conn:
        ready = conn.execute(MARK_READY, {"clip_id": fresh, **params}).one()
    assert ready.processing_status == "queued"
    with db.statement(write=True) as conn:  # a second CAS does nothing
        assert conn.execute(MARK_READY, {"clip_id": fresh, **params}).first() is None
    from advanced_notes.adapters.models import ProcessingJob

    with db.read() as session:
        jobs = {job.clip_id: job for job in session.query(ProcessingJob)}
    assert set(jobs) == {old_ready, fresh}
    assert jobs[fresh].next_attempt_at == later and jobs[fresh].attempts == 0
    with db.statement(write=True) as conn:
        conn.execute(text("DELETE FROM audio_clips WHERE storage_key = 'k/fresh'"))
        assert conn.execute(text("SELECT count(*) FROM processing_jobs")).scalar() == 1
    db.dispose()

    migrate.downgrade(url, "0008")
    assert "processing_jobs" not in _tables(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audio_clips SET status = 'rejected' WHERE status = 'pending'"))
        assert conn.execute(text("SELECT pending_uploads FROM owner_usage WHERE owner_id = 'o'")).scalar() == 0
    engine.dispose()

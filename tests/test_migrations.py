"""Alembic owns the schema: upgrade from empty, downgrade to base, and models == migrations."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from advanced_notes.adapters import migrate
from advanced_notes.adapters.db import Base
from advanced_notes.api.context import services_of

from .conftest import run_cli


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

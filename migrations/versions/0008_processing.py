"""processing: the clip's processing state and the outbox of processing jobs

Every clip that becomes ``ready`` is processed off the web workers (DESIGN §3,
"Processing after ready", docs/processing.md):

- ``audio_clips.processing_status``: NULL until the clip is ready, then ``queued``,
  ``running``, ``done`` or ``failed``; ``audio_clips.processing``: the worker's results
  (JSON text) at done or failed.
- ``processing_jobs``: one row per clip to process, the outbox the relay publishes from.
  It is written by a trigger when a clip goes from ``pending`` to ``ready`` (whichever path
  does it), in the same statement, so complete stays one statement on PostgreSQL and a
  broker outage can delay processing but never skip it. Its row goes with the clip
  (ON DELETE CASCADE; SQLite's connections enable foreign keys, ``adapters/db.py``).
- Clips already ready before this revision become ``queued`` with a job, so they are
  processed too.

SQLite: columns are added with ALTER TABLE ADD COLUMN (no ``batch_alter_table``, which
re-creates ``audio_clips`` and drops revision 0007's triggers).

Revision ID: 0008p
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0008p"
down_revision = "0008"
branch_labels = None
depends_on = None

_INSERT_JOB = (
    "INSERT INTO processing_jobs (clip_id, attempts, next_attempt_at, created_at) "
    "VALUES (NEW.id, 0, NEW.updated_at, NEW.updated_at)"
)

_PG_FUNCTION = f"""
CREATE FUNCTION audio_clips_processing_job() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {_INSERT_JOB} ON CONFLICT (clip_id) DO NOTHING;
    RETURN NULL;
END
$$
"""

# Row-level with a WHEN clause: only the pending -> ready transition calls the function;
# bulk expiries and note changes do not.
_PG_TRIGGER = (
    "CREATE TRIGGER audio_clips_processing_job AFTER UPDATE OF status ON audio_clips FOR EACH ROW "
    "WHEN (OLD.status = 'pending' AND NEW.status = 'ready') EXECUTE FUNCTION audio_clips_processing_job()"
)

_SQLITE_TRIGGER = (
    "CREATE TRIGGER audio_clips_processing_job AFTER UPDATE OF status ON audio_clips "
    "WHEN OLD.status = 'pending' AND NEW.status = 'ready' "
    f"BEGIN {_INSERT_JOB.replace('INSERT INTO', 'INSERT OR IGNORE INTO')}; END"
)


def upgrade() -> None:
    op.add_column("audio_clips", sa.Column("processing_status", sa.String(length=16), nullable=True))
    op.add_column("audio_clips", sa.Column("processing", sa.Text(), nullable=True))
    op.create_table(
        "processing_jobs",
        sa.Column("clip_id", sa.Uuid(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["clip_id"],
            ["audio_clips.id"],
            name=op.f("fk_processing_jobs_clip_id_audio_clips"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("clip_id", name=op.f("pk_processing_jobs")),
    )
    op.create_index("ix_processing_jobs_next_attempt_at", "processing_jobs", ["next_attempt_at"])
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        # No clip becomes ready between the backfill and the trigger.
        op.execute("LOCK TABLE audio_clips IN SHARE ROW EXCLUSIVE MODE")
    now = dt.datetime.now(dt.UTC)
    bind = op.get_bind()
    bind.execute(
        sa.text(
            "INSERT INTO processing_jobs (clip_id, attempts, next_attempt_at, created_at) "
            "SELECT id, 0, :now, :now FROM audio_clips WHERE status = 'ready'"
        ).bindparams(sa.bindparam("now", now, type_=sa.DateTime(timezone=True)))
    )
    op.execute("UPDATE audio_clips SET processing_status = 'queued' WHERE status = 'ready'")
    if postgresql:
        op.execute(_PG_FUNCTION)
        op.execute(_PG_TRIGGER)
    else:
        op.execute(_SQLITE_TRIGGER)


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.execute("DROP TRIGGER IF EXISTS audio_clips_processing_job" + (" ON audio_clips" if postgresql else ""))
    if postgresql:
        op.execute("DROP FUNCTION IF EXISTS audio_clips_processing_job()")
    op.drop_index("ix_processing_jobs_next_attempt_at", table_name="processing_jobs")
    op.drop_table("processing_jobs")
    # SQLite >= 3.35 drops a column in place (ALTER TABLE DROP COLUMN): revision 0007's
    # triggers stay.
    op.drop_column("audio_clips", "processing")
    op.drop_column("audio_clips", "processing_status")

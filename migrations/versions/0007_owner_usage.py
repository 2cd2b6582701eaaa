"""owner usage: per-owner pending uploads and bytes, kept by the database

The quota check at create used to lock the owner (advisory lock), count the pending
clips and sum their bytes: five round trips per create. ``owner_usage`` holds those
two figures per owner, maintained by triggers on ``audio_clips`` for every INSERT,
UPDATE and DELETE (also COPY and any script), so they are the table's truth by
construction; create then checks and inserts in one statement (see
``advanced_notes/adapters/clip_sql.py``).

PostgreSQL: statement-level triggers with transition tables, one upsert per statement
and owner (a sweep that expires 10^5 clips writes each owner's row once, in owner
order, so concurrent bulk statements cannot deadlock on them). SQLite: row triggers.

Note for later SQLite migrations: ``batch_alter_table`` on ``audio_clips`` re-creates
the table and drops its triggers; re-create them (``_SQLITE_TRIGGERS``) after it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# What a clip adds to its owner's usage: 1 pending upload while pending; its declared
# bytes while pending or ready (the bytes quota, OWNER_QUOTA_BYTES).
_PENDING = "CASE WHEN {r}.status = 'pending' THEN 1 ELSE 0 END"
_BYTES = "CASE WHEN {r}.status IN ('pending', 'ready') THEN {r}.bytes ELSE 0 END"

_PG_FUNCTION = """
CREATE FUNCTION audio_clips_owner_usage() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO owner_usage AS u (owner_id, pending_uploads, used_bytes)
        SELECT r.owner_id, sum({pending_r}), sum({bytes_r})
        FROM new_rows r GROUP BY r.owner_id ORDER BY r.owner_id
        ON CONFLICT (owner_id) DO UPDATE SET
            pending_uploads = u.pending_uploads + excluded.pending_uploads,
            used_bytes = u.used_bytes + excluded.used_bytes;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE owner_usage AS u SET pending_uploads = u.pending_uploads - d.pending, used_bytes = u.used_bytes - d.used
        FROM (SELECT r.owner_id, sum({pending_r}) AS pending, sum({bytes_r}) AS used
              FROM old_rows r GROUP BY r.owner_id ORDER BY r.owner_id) d
        WHERE u.owner_id = d.owner_id AND (d.pending <> 0 OR d.used <> 0);
    ELSE
        -- Only owners whose figures changed are written: attaching a clip to a note or
        -- extending its upload expiry does not touch owner_usage.
        INSERT INTO owner_usage AS u (owner_id, pending_uploads, used_bytes)
        SELECT c.owner_id, sum(c.pending), sum(c.used) FROM (
            SELECT r.owner_id, {pending_r} AS pending, {bytes_r} AS used FROM new_rows r
            UNION ALL
            SELECT r.owner_id, -({pending_r}), -({bytes_r}) FROM old_rows r
        ) c GROUP BY c.owner_id HAVING sum(c.pending) <> 0 OR sum(c.used) <> 0 ORDER BY c.owner_id
        ON CONFLICT (owner_id) DO UPDATE SET
            pending_uploads = u.pending_uploads + excluded.pending_uploads,
            used_bytes = u.used_bytes + excluded.used_bytes;
    END IF;
    RETURN NULL;
END
$$
""".format(pending_r=_PENDING.format(r="r"), bytes_r=_BYTES.format(r="r"))

_PG_TRIGGERS = (
    "CREATE TRIGGER audio_clips_usage_insert AFTER INSERT ON audio_clips REFERENCING NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION audio_clips_owner_usage()",
    "CREATE TRIGGER audio_clips_usage_update AFTER UPDATE ON audio_clips "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION audio_clips_owner_usage()",
    "CREATE TRIGGER audio_clips_usage_delete AFTER DELETE ON audio_clips REFERENCING OLD TABLE AS old_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION audio_clips_owner_usage()",
)


def _sqlite_add(row: str, sign: str) -> str:
    return (
        "INSERT INTO owner_usage (owner_id, pending_uploads, used_bytes) "
        f"VALUES ({row}.owner_id, {sign}({_PENDING.format(r=row)}), {sign}({_BYTES.format(r=row)})) "
        "ON CONFLICT (owner_id) DO UPDATE SET pending_uploads = pending_uploads + excluded.pending_uploads, "
        "used_bytes = used_bytes + excluded.used_bytes;"
    )


_SQLITE_TRIGGERS = (
    f"CREATE TRIGGER audio_clips_usage_insert AFTER INSERT ON audio_clips BEGIN {_sqlite_add('NEW', '+')} END",
    "CREATE TRIGGER audio_clips_usage_update AFTER UPDATE OF owner_id, status, bytes ON audio_clips "
    f"BEGIN {_sqlite_add('OLD', '-')} {_sqlite_add('NEW', '+')} END",
    f"CREATE TRIGGER audio_clips_usage_delete AFTER DELETE ON audio_clips BEGIN {_sqlite_add('OLD', '-')} END",
)

_BACKFILL = f"""
INSERT INTO owner_usage (owner_id, pending_uploads, used_bytes)
SELECT r.owner_id, sum({_PENDING.format(r="r")}), sum({_BYTES.format(r="r")})
FROM audio_clips r GROUP BY r.owner_id
"""


def upgrade() -> None:
    op.create_table(
        "owner_usage",
        sa.Column("owner_id", sa.String(length=255), nullable=False),
        sa.Column("pending_uploads", sa.Integer(), nullable=False),
        sa.Column("used_bytes", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("owner_id", name=op.f("pk_owner_usage")),
    )
    postgresql = _is_postgresql()
    if postgresql:
        # Writers of audio_clips wait while the figures are counted and the triggers made,
        # so no clip is created, changed or deleted between the two.
        op.execute("LOCK TABLE audio_clips IN SHARE ROW EXCLUSIVE MODE")
    op.execute(_BACKFILL)
    if postgresql:
        op.execute(_PG_FUNCTION)
        for statement in _PG_TRIGGERS:
            op.execute(statement)
    else:
        for statement in _SQLITE_TRIGGERS:
            op.execute(statement)
    # The quota check no longer counts clips per owner and status.
    op.drop_index("ix_audio_clips_owner_status_bytes", table_name="audio_clips")


def downgrade() -> None:
    op.create_index("ix_audio_clips_owner_status_bytes", "audio_clips", ["owner_id", "status", "bytes"])
    postgresql = _is_postgresql()
    for name in ("audio_clips_usage_insert", "audio_clips_usage_update", "audio_clips_usage_delete"):
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + (" ON audio_clips" if postgresql else ""))
    if postgresql:
        op.execute("DROP FUNCTION IF EXISTS audio_clips_owner_usage()")
    op.drop_table("owner_usage")


def _is_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"

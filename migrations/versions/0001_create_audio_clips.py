"""create audio_clips

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audio_clips",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.String(length=255), nullable=False),
        sa.Column("note_id", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("mime_type", sa.String(length=64), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("storage_key", sa.String(length=1024), nullable=False),
        sa.Column("checksum_sha256", sa.String(length=44), nullable=True),
        sa.Column("etag", sa.String(length=255), nullable=True),
        sa.Column("stored_bytes", sa.BigInteger(), nullable=True),
        sa.Column("measured_duration_ms", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'ready', 'rejected', 'expired')", name=op.f("ck_audio_clips_status_valid")
        ),
        sa.CheckConstraint("bytes > 0", name=op.f("ck_audio_clips_bytes_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audio_clips")),
        sa.UniqueConstraint("storage_key", name=op.f("uq_audio_clips_storage_key")),
    )
    op.create_index(
        "ix_audio_clips_owner_note_status_created", "audio_clips", ["owner_id", "note_id", "status", "created_at"]
    )
    op.create_index("ix_audio_clips_owner_created", "audio_clips", ["owner_id", "created_at", "id"])
    op.create_index("ix_audio_clips_status_created", "audio_clips", ["status", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_audio_clips_status_created", table_name="audio_clips")
    op.drop_index("ix_audio_clips_owner_created", table_name="audio_clips")
    op.drop_index("ix_audio_clips_owner_note_status_created", table_name="audio_clips")
    op.drop_table("audio_clips")

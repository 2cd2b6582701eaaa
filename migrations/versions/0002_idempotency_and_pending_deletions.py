"""idempotency keys, upload URL expiry, pending deletions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audio_clips") as batch:
        batch.add_column(sa.Column("upload_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("idempotency_key", sa.String(length=255), nullable=True))
        batch.create_unique_constraint(op.f("uq_audio_clips_owner_id_idempotency_key"), ["owner_id", "idempotency_key"])
    op.create_table(
        "pending_deletions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("clip_id", sa.Uuid(), nullable=False),
        sa.Column("storage_key", sa.String(length=1024), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recheck_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_deletions")),
    )
    op.create_index("ix_pending_deletions_next_attempt_at", "pending_deletions", ["next_attempt_at"])
    op.create_index("ix_pending_deletions_clip_id", "pending_deletions", ["clip_id"])


def downgrade() -> None:
    op.drop_index("ix_pending_deletions_clip_id", table_name="pending_deletions")
    op.drop_index("ix_pending_deletions_next_attempt_at", table_name="pending_deletions")
    op.drop_table("pending_deletions")
    with op.batch_alter_table("audio_clips") as batch:
        batch.drop_constraint(op.f("uq_audio_clips_owner_id_idempotency_key"), type_="unique")
        batch.drop_column("idempotency_key")
        batch.drop_column("upload_expires_at")

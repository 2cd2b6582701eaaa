"""index for the per-owner quota check

create counts the owner's pending clips and sums the bytes of pending and ready ones
(MAX_PENDING_UPLOADS_PER_OWNER, OWNER_QUOTA_BYTES). No index started with
(owner_id, status), so both scanned every entry of the owner: a cost that grew with
the owner's history. With (owner_id, status, bytes) both are index-only range scans.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_audio_clips_owner_status_bytes", "audio_clips", ["owner_id", "status", "bytes"])


def downgrade() -> None:
    op.drop_index("ix_audio_clips_owner_status_bytes", table_name="audio_clips")

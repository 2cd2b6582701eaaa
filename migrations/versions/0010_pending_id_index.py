"""pending clips by id: a partial index

The frequent sweep reads only pending clips. By creation time it uses
``ix_audio_clips_status_created``; when many clips are pending it lists the folder and
merges the listing with the pending rows in ``id`` order, which this index gives
without reading any other row: it holds the pending clips only (``WHERE status =
'pending'``), so it stays as small as the pending set however many clips are stored.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    op.create_index("ix_audio_clips_pending_id", "audio_clips", ["id"], postgresql_where=PENDING, sqlite_where=PENDING)


def downgrade() -> None:
    op.drop_index("ix_audio_clips_pending_id", table_name="audio_clips")

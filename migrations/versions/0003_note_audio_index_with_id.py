"""note audio index ends with id

The note's primary clip is ``ORDER BY created_at DESC, id DESC LIMIT 1``: with ``id`` in
the index, one backward index scan answers it, with no sort of the note's ready clips.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

OLD = ["owner_id", "note_id", "status", "created_at"]


def upgrade() -> None:
    op.drop_index("ix_audio_clips_owner_note_status_created", table_name="audio_clips")
    op.create_index("ix_audio_clips_owner_note_status_created", "audio_clips", [*OLD, "id"])


def downgrade() -> None:
    op.drop_index("ix_audio_clips_owner_note_status_created", table_name="audio_clips")
    op.create_index("ix_audio_clips_owner_note_status_created", "audio_clips", OLD)

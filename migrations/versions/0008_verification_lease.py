"""verification lease and stored rejection

``verification_lease_until``: while a verification of a pending clip runs, the time until
which it holds the clip. complete, bucket events and the sweeper take it by
compare-and-set before verifying, so one verification runs per clip at a time; the
others wait for its verdict, or take over once it has expired (the holder died).

``rejection``: the reason and message of a rejected clip's verdict (JSON), so a complete
that waited on the verification answers the same 422 as the one that ran it, and a later
complete says why the clip was rejected.

Both are plain ``ADD COLUMN``\\s (no ``batch_alter_table``): on SQLite a batch re-creates
``audio_clips`` and would drop the triggers of revision 0007.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("audio_clips", sa.Column("verification_lease_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column("audio_clips", sa.Column("rejection", sa.JSON(), nullable=True))


def downgrade() -> None:
    # SQLite >= 3.35 drops a column in place (no table re-creation, the triggers stay).
    op.drop_column("audio_clips", "rejection")
    op.drop_column("audio_clips", "verification_lease_until")

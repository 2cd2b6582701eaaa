"""multipart upload sessions

A clip may be uploaded in parts (S3 multipart upload): the clip keeps S3's UploadId and
the part size/count chosen at creation; the deletion outbox keeps the UploadId so an
unfinished upload is aborted (its parts are billed) before the object is deleted.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audio_clips") as batch:
        batch.add_column(sa.Column("multipart_upload_id", sa.String(1024), nullable=True))
        batch.add_column(sa.Column("part_size", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("part_count", sa.Integer(), nullable=True))
    with op.batch_alter_table("pending_deletions") as batch:
        batch.add_column(sa.Column("multipart_upload_id", sa.String(1024), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pending_deletions") as batch:
        batch.drop_column("multipart_upload_id")
    with op.batch_alter_table("audio_clips") as batch:
        batch.drop_column("part_count")
        batch.drop_column("part_size")
        batch.drop_column("multipart_upload_id")

"""owner_usage (revision 0007) stays equal to a recount of audio_clips through every kind of write.

The quotas read these figures instead of counting, so any write path the triggers
missed would let an owner past a quota (or lock them out). Runs on the real database
(PostgreSQL's statement triggers, SQLite's row triggers) with moto as the store.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from advanced_notes.adapters import clip_sql
from advanced_notes.api.context import services_of
from advanced_notes.domain.errors import QuotaExceeded, UploadRejected
from advanced_notes.services.lifecycle import EXPIRED

RECOUNT = """
SELECT owner_id,
       sum(CASE WHEN status = 'pending' THEN 1 ELSE 0 END),
       sum(CASE WHEN status IN ('pending', 'ready') THEN bytes ELSE 0 END)
FROM audio_clips WHERE owner_id LIKE :prefix GROUP BY owner_id
"""


def _figures(db, prefix: str) -> tuple[dict, dict]:
    with db.engine.connect() as conn:
        recount = {row[0]: (int(row[1]), int(row[2])) for row in conn.execute(text(RECOUNT), {"prefix": prefix + "%"})}
        stored = {
            row[0]: (row[1], row[2])
            for row in conn.execute(
                text("SELECT owner_id, pending_uploads, used_bytes FROM owner_usage WHERE owner_id LIKE :prefix"),
                {"prefix": prefix + "%"},
            )
        }
    # Owners whose clips are all gone keep a row of zeros.
    return recount, {owner: figures for owner, figures in stored.items() if figures != (0, 0) or owner in recount}


def test_owner_usage_equals_a_recount_after_every_kind_of_write(app, audio):
    services = services_of(app)
    prefix = f"usage-{uuid.uuid4().hex[:6]}-"
    alice, bob = prefix + "alice", prefix + "bob"
    note = audio["note.ogg"]
    made = {
        owner: [services.uploads.create(owner, mime_type=note.mime_type, bytes=note.size) for _ in range(4)]
        for owner in (alice, bob)
    }
    assert _figures(services.db, prefix)[1] == {alice: (4, 4 * note.size), bob: (4, 4 * note.size)}

    # ready (pending -1, bytes kept), rejected (both -1 clip), expired, deleted, detached.
    first = made[alice][0].clip
    services.storage.put_object(first.storage_key, note.data, note.mime_type)
    services.uploads.complete(alice, first.id)
    impostor = made[alice][1].clip
    # An HTML page of the declared size and type: complete rejects it as not_audio.
    services.storage.put_object(impostor.storage_key, b"<html>" + b"x" * (note.size - 6), note.mime_type)
    with pytest.raises(UploadRejected):
        services.uploads.complete(alice, impostor.id)
    with services.db.transaction() as session:
        clip_sql.update_if_pending(conn=session, clip_ids=[made[bob][0].clip.id], values={"status": EXPIRED})
    services.clips.delete(bob, made[bob][1].clip.id)
    services.clips.delete(alice, first.id)  # a ready clip's bytes go too
    services.clips.set_note(bob, made[bob][2].clip.id, "a-note")
    services.clips.set_note(bob, made[bob][3].clip.id, "a-note")
    assert services.clips.delete_note_audio(bob, "a-note") == 2

    recount, stored = _figures(services.db, prefix)
    assert stored == recount
    assert stored[alice] == (2, 2 * note.size) and stored[bob] == (0, 0)


def test_a_refused_create_writes_nothing_and_reports_the_stored_figures(app_with_limits, audio):
    services = services_of(app_with_limits(MAX_PENDING_UPLOADS_PER_OWNER="2", OWNER_QUOTA_BYTES="1000"))
    owner = f"usage-{uuid.uuid4().hex[:6]}"
    services.uploads.create(owner, mime_type="audio/ogg", bytes=400)
    with pytest.raises(QuotaExceeded) as bytes_refusal:
        services.uploads.create(owner, mime_type="audio/ogg", bytes=601)
    assert bytes_refusal.value.details == {"quota": "owner_bytes", "limit": 1000, "current": 400, "requested": 601}
    services.uploads.create(owner, mime_type="audio/ogg", bytes=600)  # exactly at the quota
    with pytest.raises(QuotaExceeded) as pending_refusal:
        services.uploads.create(owner, mime_type="audio/ogg", bytes=1)
    assert pending_refusal.value.details == {"quota": "pending_uploads", "limit": 2, "current": 2}
    assert len(services.clips.list(owner).clips) == 2
    recount, stored = _figures(services.db, owner)
    assert stored == recount == {owner: (2, 1000)}


@pytest.fixture
def app_with_limits(base_config):
    from advanced_notes.app import create_app

    def make(**overrides: str):
        return create_app({**base_config, **overrides})

    return make

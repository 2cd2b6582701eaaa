"""Races between the paths that change a clip, and answers that say what really happened:
a URL refresh racing DELETE, complete racing DELETE, database faults after a commit."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from advanced_notes.api.context import services_of
from advanced_notes.app import create_app
from advanced_notes.domain.errors import NotFound
from advanced_notes.services.deletions import CLOCK_SKEW
from testkit.live import put_upload
from tests.helpers import assert_error, pending_deletions


def test_refresh_racing_delete_records_the_refreshed_expiry(base_config, app):
    """The DELETE pauses just before it runs while an upload-url commits a later expiry.

    Before the fix, delete() had read the row first and recorded the deletion with the
    expiry it read: the object a PUT with the new URL stored was never deleted. On
    SQLite the interleaving cannot happen (write transactions take the lock at BEGIN
    IMMEDIATE, so the refresh waits for the delete); the test then checks the outcome
    of the serialized order.
    """
    services = services_of(app)
    # A second process of the same deployment whose PUT URLs live longer: its refresh
    # moves the expiry by ~45 minutes, far beyond any timestamp rounding.
    longer = services_of(create_app({**base_config, "S3_PRESIGN_PUT_EXPIRES_SECONDS": "3600"}))
    created = services.uploads.create("race-owner", mime_type="audio/ogg", bytes=10)
    clip_id = created.clip.id
    paused, refreshed = threading.Event(), threading.Event()
    deleter = {}
    postgres = services.db.engine.dialect.name == "postgresql"

    @event.listens_for(services.db.engine, "before_cursor_execute")
    def pause_the_delete(conn, cursor, statement, parameters, context, executemany):
        if threading.get_ident() == deleter.get("ident") and statement.lstrip().upper().startswith(
            "DELETE FROM AUDIO_CLIPS"
        ):
            paused.set()
            refreshed.wait(10)

    def delete():
        deleter["ident"] = threading.get_ident()
        services.clips.delete("race-owner", clip_id)

    try:
        thread = threading.Thread(target=delete)
        thread.start()
        if postgres:
            assert paused.wait(10)
            new_upload = longer.uploads.refresh_upload("race-owner", clip_id).upload
            refreshed.set()
        else:
            refreshed.set()
            new_upload = None
        thread.join(10)
        assert not thread.is_alive()
    finally:
        refreshed.set()
        event.remove(services.db.engine, "before_cursor_execute", pause_the_delete)
    (record,) = pending_deletions(app, clip_id)
    if new_upload is not None:
        assert record.recheck_until >= new_upload.expires_at + CLOCK_SKEW
    with pytest.raises(NotFound):  # and no URL is minted once the row is gone
        longer.uploads.refresh_upload("race-owner", clip_id)


def test_refresh_computes_the_later_expiry_in_sql(base_config, app):
    """A refresh by a process with shorter URLs never moves the stored expiry backwards."""
    services = services_of(app)
    longer = services_of(create_app({**base_config, "S3_PRESIGN_PUT_EXPIRES_SECONDS": "3600"}))
    clip_id = services.uploads.create("expiry-owner", mime_type="audio/ogg", bytes=10).clip.id
    long_expiry = longer.uploads.refresh_upload("expiry-owner", clip_id).upload.expires_at
    services.uploads.refresh_upload("expiry-owner", clip_id)
    assert services.clips.get("expiry-owner", clip_id).upload_expires_at >= long_expiry


def test_complete_racing_delete_is_404_not_503(app, client, auth, audio, monkeypatch):
    """The clip is deleted (row and object, by the real service) right after complete's HEAD."""
    services = services_of(app)
    f = audio["note.ogg"]
    created = client.post("/api/audio-clips", json={"mime_type": f.mime_type, "bytes": f.size}, headers=auth).get_json()
    assert put_upload(created["upload"], f.data).status_code == 200
    clip_id = created["clip"]["id"]
    real_head = services.storage.head

    def head_then_delete(key, **kw):
        info = real_head(key, **kw)
        assert client.delete(f"/api/audio-clips/{clip_id}", headers=auth).status_code == 204
        return info

    monkeypatch.setattr(services.storage, "head", head_then_delete)
    assert_error(client.post(f"/api/audio-clips/{clip_id}/complete", headers=auth), 404, "not_found")


def test_a_database_fault_after_the_delete_committed_is_still_204(app, client, auth, monkeypatch):
    """The outbox bookkeeping after the commit fails (a stand-in OperationalError: a real
    outage between two statements of one request cannot be arranged); the answer must
    say what happened: the clip is gone."""
    services = services_of(app)
    clip_id = client.post("/api/audio-clips", json={"mime_type": "audio/ogg", "bytes": 10}, headers=auth).get_json()[
        "clip"
    ]["id"]

    def database_gone(*args, **kw):
        raise OperationalError("UPDATE pending_deletions", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(services.clips.deletions, "_update", database_gone)
    assert client.delete(f"/api/audio-clips/{clip_id}", headers=auth).status_code == 204
    assert_error(client.get(f"/api/audio-clips/{clip_id}", headers=auth), 404, "not_found")
    assert len(pending_deletions(app, clip_id)) == 1  # the sweeper finishes it


def test_an_impostors_rejection_survives_a_database_fault_after_commit(app, client, auth, audio, monkeypatch):
    services = services_of(app)
    html = audio["impostor-html.m4a"]
    created = client.post("/api/audio-clips", json={"mime_type": "audio/mp4", "bytes": html.size}, headers=auth)
    created = created.get_json()
    put_upload(created["upload"], html.data)

    def database_gone(*args, **kw):
        raise OperationalError("UPDATE pending_deletions", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(services.clips.deletions, "_update", database_gone)
    response = client.post(f"/api/audio-clips/{created['clip']['id']}/complete", headers=auth)
    assert assert_error(response, 422, "upload_rejected")["details"]["reason"] == "not_audio"

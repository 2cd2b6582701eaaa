"""The race paths of the upload services, reached directly and deterministically.

On the real database (PostgreSQL or SQLite) and moto's server: instead of hoping that
threads interleave, each test makes the other party act at exactly the point where the
race is decided.
"""

from __future__ import annotations

import uuid

import pytest

from advanced_notes.api.context import services_of
from advanced_notes.services import completion as completion_module
from advanced_notes.services.lifecycle import READY


@pytest.fixture
def services(app):
    return services_of(app)


def test_an_idempotent_repeat_that_loses_the_insert_race_answers_with_the_winner(services, audio, monkeypatch):
    f = audio["note.ogg"]
    declared = {"mime_type": f.mime_type, "bytes": f.size}
    first = services.uploads.create("racer", idempotency_key="key-1", **declared)

    # The repeat looked the key up before the first request committed: it saw nothing,
    # so it inserts too, and the unique index decides.
    original = services.uploads._by_idempotency_key
    calls = []

    def not_yet_visible(owner_id, key):
        calls.append(key)
        return None if len(calls) == 1 else original(owner_id, key)

    monkeypatch.setattr(services.uploads, "_by_idempotency_key", not_yet_visible)
    repeat = services.uploads.create("racer", idempotency_key="key-1", **declared)

    assert len(calls) == 2, "the repeat did not reach the insert race"
    assert repeat.replayed and repeat.clip.id == first.clip.id
    assert repeat.upload is not None and repeat.upload.url  # still pending: a fresh PUT URL
    assert [c.id for c in services.clips.list("racer").clips] == [first.clip.id]


def test_a_complete_that_loses_its_compare_and_set_answers_with_the_winners_state(services, audio, monkeypatch):
    f = audio["note.ogg"]
    session = services.uploads.create("racer", mime_type=f.mime_type, bytes=f.size)
    services.storage.put_object(session.clip.storage_key, f.data, f.mime_type)

    # While this complete verifies the object, another complete finishes the clip.
    original_verify = completion_module.verify_audio
    winner: dict = {}

    def verify_then_lose(*args, **kwargs):
        result = original_verify(*args, **kwargs)
        if "started" not in winner:  # the other complete verifies through this spy too
            winner["started"] = True
            winner["clip"] = services.uploads.complete("racer", session.clip.id)
        return result

    monkeypatch.setattr(completion_module, "verify_audio", verify_then_lose)
    loser = services.uploads.complete("racer", session.clip.id)

    assert winner["clip"].status == READY
    assert loser.status == READY and loser.completed_at == winner["clip"].completed_at


def test_a_complete_of_a_clip_deleted_meanwhile_is_not_found(services, audio, monkeypatch):
    from advanced_notes.domain.errors import NotFound

    f = audio["note.ogg"]
    session = services.uploads.create("racer", mime_type=f.mime_type, bytes=f.size)
    services.storage.put_object(session.clip.storage_key, f.data, f.mime_type)
    original_verify = completion_module.verify_audio

    def verify_then_vanish(*args, **kwargs):
        result = original_verify(*args, **kwargs)
        services.clips.delete("racer", session.clip.id)
        return result

    monkeypatch.setattr(completion_module, "verify_audio", verify_then_vanish)
    with pytest.raises(NotFound):
        services.uploads.complete("racer", session.clip.id)
    with pytest.raises(NotFound):
        services.clips.get("racer", uuid.UUID(str(session.clip.id)))

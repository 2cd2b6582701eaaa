"""Rejections say what is wrong with the file in the uploader's terms, never the parser's.

Malformed inputs (the truncated.m4a fixture, every real fixture cut short at several
points, the fuzz crashers, junk behind a container's magic bytes) go through the API:
create, PUT to moto's server with the signed headers, complete. Property: no rejection
message quotes an exception class, a Python repr or a parser's name; the parser's
exception is in the log instead, with the clip id.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from advanced_notes.domain.audio import UnreadableAudio, unreadable_message
from advanced_notes.domain.errors import NEW_UPLOAD_SESSION
from advanced_notes.domain.mime import CONTAINERS, mime_type_for_filename
from testkit.live import put_upload
from testkit.paths import FIXTURES
from tests.helpers import assert_error, create, upload_ready

CRASHERS = sorted((Path(__file__).resolve().parents[1] / "fixtures" / "audio-crashers").iterdir())


def declared_type(name: str) -> str:
    """The type a client would declare for ``name``; the HTML impostor claims to be M4A."""
    return mime_type_for_filename(name) or "audio/mp4"


#: What a message quoting Python or parser internals looks like.
INTERNALS = re.compile(
    r"\b\w*(Error|Exception|Warning)\b|NoneType|has no attribute|Traceback|object at 0x|"
    r"\bmutagen\b|\benzyme\b|\bpuremagic\b|EBML|cannot parse|\bstruct\b|\bunpack\b|[<>{}]|\\x[0-9a-f]{2}",
    re.IGNORECASE,
)


def malformed_inputs() -> list[tuple[str, str, bytes]]:
    """(label, declared MIME type, bytes) of every malformed input this test provokes."""
    inputs = [("truncated.m4a", "audio/mp4", (FIXTURES / "truncated.m4a").read_bytes())]
    for name in ("note.m4a", "note.mp3", "note.wav", "note.ogg", "note.webm", "note.flac"):
        data = (FIXTURES / name).read_bytes()
        mime = declared_type(name)
        for cut in (12, 40, 200, 1000, len(data) // 3):
            inputs.append((f"{name}[:{cut}]", mime, data[:cut]))
        # the container's first bytes, then garbage
        inputs.append((f"{name} head+junk", mime, data[:64] + bytes(range(256)) * 8))
    for path in CRASHERS:
        inputs.append((path.name, declared_type(path.name), path.read_bytes()))
    not_audio = (FIXTURES / "not-audio.html").read_bytes()
    inputs.append(("not-audio.html", "audio/mp4", not_audio))
    inputs.append(("note.ogg declared mp4", "audio/mp4", (FIXTURES / "note.ogg").read_bytes()))
    return inputs


def test_unreadable_message_names_the_container_in_a_users_terms():
    assert unreadable_message("mp4") == (
        "The file is not a readable MP4/M4A audio file: it may be truncated or damaged; export it again."
    )
    for container, known in CONTAINERS.items():
        assert known.label in unreadable_message(container)
        assert "no audio in it" in unreadable_message(container, UnreadableAudio("x", no_audio=True))
    assert not INTERNALS.search(unreadable_message("unknown-family"))


def test_no_rejection_message_quotes_internals(client, auth, caplog):
    rejections: list[tuple[str, dict]] = []
    unreadable: dict[str, dict] = {}
    with caplog.at_level(logging.WARNING, logger="advanced_notes.services.verification"):
        for label, mime, data in malformed_inputs():
            created = create(client, auth, mime_type=mime, bytes=len(data))
            assert put_upload(created["upload"], data).status_code == 200, label
            response = client.post(f"/api/audio-clips/{created['clip']['id']}/complete", headers=auth)
            if response.status_code == 200:
                continue  # still playable when cut there (WAV, MP3): not a rejection
            assert response.status_code == 422, (label, response.get_json())
            error = response.get_json()["error"]
            rejections.append((label, error))
            if error["details"]["reason"] == "unreadable_audio":
                unreadable[label] = {"clip_id": created["clip"]["id"], "error": error}
    assert len(rejections) >= 25 and len(unreadable) >= 15, [label for label, _ in rejections]
    for label, error in rejections:
        assert not INTERNALS.search(error["message"]), (label, error["message"])
        assert not any(INTERNALS.search(str(v)) for v in error["details"].values()), (label, error["details"])
    # Each says what is wrong, then the one way on: a rejected clip is final.
    assert unreadable["truncated.m4a"]["error"]["message"] == f"{unreadable_message('mp4')} {NEW_UPLOAD_SESSION}"
    messages = {e["error"]["message"] for e in unreadable.values()}
    assert messages <= {f"{unreadable_message(c)} {NEW_UPLOAD_SESSION}" for c in CONTAINERS} | {
        f"{unreadable_message(c, UnreadableAudio('', no_audio=True))} {NEW_UPLOAD_SESSION}" for c in CONTAINERS
    }, messages
    assert all(error["message"].endswith(NEW_UPLOAD_SESSION) for _, error in rejections)
    # The parser's own words are kept for operators: one warning per unreadable clip, with its id.
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("unreadable audio clip=")]
    for label, found in unreadable.items():
        (line,) = [m for m in logged if found["clip_id"] in m]
        assert ": " in line.split(found["clip_id"], 1)[1], (label, line)
    truncated_line = next(m for m in logged if unreadable["truncated.m4a"]["clip_id"] in m)
    assert "container=mp4" in truncated_line and "cannot parse mp4" in truncated_line


@pytest.mark.parametrize("name", ["note.m4a", "note.webm"])
def test_real_audio_still_becomes_ready(client, auth, name):
    data = (FIXTURES / name).read_bytes()
    created = create(client, auth, mime_type=declared_type(name), bytes=len(data))
    assert put_upload(created["upload"], data).status_code == 200
    response = client.post(f"/api/audio-clips/{created['clip']['id']}/complete", headers=auth)
    assert response.status_code == 200, response.get_json()


# --- every 409 about a clip's state names the next step ----------------------------------


def test_a_rejected_clip_says_to_create_a_new_upload_session(client, auth):
    data = (FIXTURES / "not-audio.html").read_bytes()
    created = create(client, auth, mime_type="audio/mp4", bytes=len(data))
    clip_id = created["clip"]["id"]
    assert put_upload(created["upload"], data).status_code == 200
    assert_error(client.post(f"/api/audio-clips/{clip_id}/complete", headers=auth), 422, "upload_rejected")

    again = assert_error(client.post(f"/api/audio-clips/{clip_id}/complete", headers=auth), 409, "conflict")
    assert again["message"].startswith("The clip was rejected and cannot be completed: ")
    assert again["message"].endswith(NEW_UPLOAD_SESSION)
    assert again["message"].count(NEW_UPLOAD_SESSION) == 1  # stored with the verdict, said once
    fresh = assert_error(client.post(f"/api/audio-clips/{clip_id}/upload-url", headers=auth), 409, "conflict")
    assert fresh["message"] == f"The clip is rejected; only pending clips take uploads. {NEW_UPLOAD_SESSION}"
    play = assert_error(client.get(f"/api/audio-clips/{clip_id}/playback", headers=auth), 409, "clip_not_ready")
    assert play["message"] == f"The clip is rejected; only ready clips can be played. {NEW_UPLOAD_SESSION}"


def test_pending_and_ready_clips_say_what_to_do_instead(client, auth):
    pending = create(client, auth)["clip"]["id"]
    play = assert_error(client.get(f"/api/audio-clips/{pending}/playback", headers=auth), 409, "clip_not_ready")
    assert f"Finish its upload first: PUT the file, then POST /api/audio-clips/{pending}/complete." in play["message"]
    parts = client.post(f"/api/audio-clips/{pending}/multipart/parts", json={"part_numbers": [1]}, headers=auth)
    assert (
        f"POST /api/audio-clips/{pending}/upload-url signs a fresh one"
        in assert_error(parts, 409, "conflict")["message"]
    )

    ready = upload_ready(client, auth)["id"]
    fresh = assert_error(client.post(f"/api/audio-clips/{ready}/upload-url", headers=auth), 409, "conflict")
    assert f"GET /api/audio-clips/{ready}/playback plays it" in fresh["message"]

"""Small helpers for API tests."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from advanced_notes.adapters.models import PendingDeletion
from advanced_notes.api.context import services_of

from .conftest import FIXTURES, put_upload

#: The smallest real audio fixture: what a clip that must become ready uploads by default.
REAL_AUDIO = (FIXTURES / "note.ogg").read_bytes()


def create(client: Any, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    """POST /api/audio-clips and return the JSON (asserting 201)."""
    body.setdefault("mime_type", "audio/mp4")
    body.setdefault("bytes", 10)
    response = client.post("/api/audio-clips", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def upload_ready(
    client: Any, headers: dict[str, str], data: bytes = REAL_AUDIO, mime_type: str = "audio/ogg", **body: Any
) -> dict[str, Any]:
    """Create, PUT ``data`` (real audio) over HTTP with the signed headers, complete; return the ready clip."""
    created = create(client, headers, mime_type=mime_type, bytes=len(data), **body)
    assert put_upload(created["upload"], data).status_code == 200
    response = client.post(f"/api/audio-clips/{created['clip']['id']}/complete", headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["clip"]


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """Assert the DESIGN §4 error shape, status and code; return the error object."""
    assert response.status_code == status, (response.status_code, response.data[:300])
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}
    error = body["error"]
    assert error["code"] == code and isinstance(error["message"], str) and error["message"]
    assert set(error) <= {"code", "message", "details"}
    return error


def pending_deletions(app: Any, clip_id: str | uuid.UUID) -> list[PendingDeletion]:
    """The deletion outbox's records of a clip, read from its table (the service offers no such read)."""
    with services_of(app).db.read() as session:
        query = select(PendingDeletion).where(PendingDeletion.clip_id == uuid.UUID(str(clip_id)))
        return list(session.scalars(query))

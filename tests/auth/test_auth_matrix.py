"""Every operation x every kind of token: the exact status and code of each cell.

Another owner's clip must be indistinguishable from a missing one: same status, same
body, and the same work (the same number of SQL statements and no call to the store),
which is what makes their timing the same class.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import event

from advanced_notes.adapters.storage import S3Storage
from advanced_notes.api.context import services_of
from testkit.live import put_upload
from tests.helpers import JWT_SECRET, REAL_AUDIO, create

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OWNER, OTHER = "matrix-owner", "matrix-other"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(sub: str = OWNER, minutes: int = 5) -> dict:
    now = int(dt.datetime.now(dt.UTC).timestamp())
    return {"sub": sub, "iat": now, "exp": now + minutes * 60}


def _hs256_with(secret: bytes, claims: dict) -> str:
    signing_input = f"{_b64(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())}.{_b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{_b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


PUBLIC_PEM = RSA_KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)
BAD_HEADERS: dict[str, dict[str, str]] = {
    "no token": {},
    "malformed header": {"Authorization": "Token abc.def.ghi"},
    "expired": {"Authorization": "Bearer " + jwt.encode(_claims(minutes=-10), JWT_SECRET, algorithm="HS256")},
    "wrong signature": {"Authorization": "Bearer " + jwt.encode(_claims(), "x" * 48, algorithm="HS256")},
    "alg none": {"Authorization": "Bearer " + jwt.encode(_claims(), None, algorithm="none")},
    "HS/RS confusion": {"Authorization": "Bearer " + _hs256_with(PUBLIC_PEM, _claims())},
    "RS256 without keys": {"Authorization": "Bearer " + jwt.encode(_claims(), RSA_KEY, algorithm="RS256")},
}


@dataclass(frozen=True)
class Operation:
    name: str
    method: str
    path: str  # {clip} and {note} are filled in
    body: dict | None
    success: int
    prepare: str  # the state the owner's clip must be in: pending, uploaded or ready
    other_owner: int  # what another owner gets for the owner's resource
    per_clip: bool = True


OPERATIONS = [
    Operation(
        "create",
        "POST",
        "/api/audio-clips",
        {"mime_type": "audio/ogg", "bytes": 10},
        201,
        "pending",
        201,
        per_clip=False,
    ),
    Operation("list", "GET", "/api/audio-clips", None, 200, "pending", 200, per_clip=False),
    Operation("get", "GET", "/api/audio-clips/{clip}", None, 200, "pending", 404),
    Operation("patch", "PATCH", "/api/audio-clips/{clip}", {"note_id": "moved"}, 200, "pending", 404),
    Operation("delete", "DELETE", "/api/audio-clips/{clip}", None, 204, "pending", 404),
    Operation("complete", "POST", "/api/audio-clips/{clip}/complete", None, 200, "uploaded", 404),
    Operation("playback", "GET", "/api/audio-clips/{clip}/playback", None, 200, "ready", 404),
    Operation("upload-url", "POST", "/api/audio-clips/{clip}/upload-url", None, 200, "pending", 404),
    Operation("note audio", "GET", "/api/notes/{note}/audio", None, 200, "ready", 404, per_clip=False),
    Operation("delete note audio", "DELETE", "/api/notes/{note}/audio", None, 200, "ready", 200, per_clip=False),
]


def token_header(make_token: Callable[[str], str], sub: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(sub)}"}


@pytest.fixture
def prepared(client, make_token):
    """Make the owner's clip (in the state ``op.prepare``) on a fresh note; return (clip, note)."""

    def make(op: Operation) -> tuple[dict, str]:
        note = f"note-{uuid.uuid4().hex[:8]}"
        owner = token_header(make_token, OWNER)
        created = create(client, owner, mime_type="audio/ogg", bytes=len(REAL_AUDIO), note_id=note)
        if op.prepare in ("uploaded", "ready"):
            assert put_upload(created["upload"], REAL_AUDIO).status_code == 200
        if op.prepare == "ready":
            assert client.post(f"/api/audio-clips/{created['clip']['id']}/complete", headers=owner).status_code == 200
        return created["clip"], note

    return make


def call(client, op: Operation, headers: dict[str, str], clip_id: str, note: str):
    path = op.path.format(clip=clip_id, note=note)
    return client.open(path, method=op.method, json=op.body, headers=headers)


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda o: o.name)
@pytest.mark.parametrize("case", list(BAD_HEADERS))
def test_bad_credentials_are_401_and_change_nothing(client, make_token, prepared, op, case):
    clip, note = prepared(op)
    response = call(client, op, BAD_HEADERS[case], clip["id"], note)
    assert response.status_code == 401, response.data
    assert response.get_json()["error"]["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    after = client.get(f"/api/audio-clips/{clip['id']}", headers=token_header(make_token, OWNER)).get_json()
    assert after["clip"] == clip or (op.prepare != "pending" and after["clip"]["id"] == clip["id"])


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda o: o.name)
def test_valid_token(client, make_token, prepared, op):
    clip, note = prepared(op)
    response = call(client, op, token_header(make_token, OWNER), clip["id"], note)
    assert response.status_code == op.success, response.data


class WorkCounter:
    """Counts SQL statements on the app's engine and calls into the storage adapter."""

    STORE_CALLS = ("head", "get_range", "delete", "presign_put", "presign_get", "list_objects")

    def __init__(self, app, monkeypatch):
        self.sql = 0
        self.store: list[str] = []
        event.listen(services_of(app).db.engine, "before_cursor_execute", self._count)
        self._engine = services_of(app).db.engine
        for name in self.STORE_CALLS:
            original = getattr(S3Storage, name)
            monkeypatch.setattr(S3Storage, name, self._spy(name, original))

    def _count(self, *args):
        self.sql += 1

    def _spy(self, name, original):
        def spy(storage, *args, **kwargs):  # the real call, recorded
            self.store.append(name)
            return original(storage, *args, **kwargs)

        return spy

    def measure(self, fn):
        self.sql, self.store = 0, []
        result = fn()
        return result, self.sql, list(self.store)

    def close(self):
        event.remove(self._engine, "before_cursor_execute", self._count)


@pytest.mark.parametrize("op", [o for o in OPERATIONS if o.name != "create"], ids=lambda o: o.name)
def test_another_owner_sees_exactly_what_a_stranger_to_the_resource_sees(
    app, client, make_token, prepared, monkeypatch, op
):
    clip, note = prepared(op)
    other = token_header(make_token, OTHER)
    counter = WorkCounter(app, monkeypatch)
    try:
        theirs, theirs_sql, theirs_store = counter.measure(lambda: call(client, op, other, clip["id"], note))
        missing_note = f"missing-{uuid.uuid4().hex[:8]}"
        nothing, nothing_sql, nothing_store = counter.measure(
            lambda: call(client, op, other, str(uuid.uuid4()), missing_note)
        )
    finally:
        counter.close()
    assert theirs.status_code == nothing.status_code == op.other_owner
    assert theirs.get_json() == nothing.get_json()
    assert (theirs_sql, theirs_store) == (nothing_sql, nothing_store)
    assert theirs_store == []  # the store is never touched on someone else's behalf
    # And nothing of the owner's changed.
    mine = client.get(f"/api/audio-clips/{clip['id']}", headers=token_header(make_token, OWNER))
    assert mine.status_code == 200 and mine.get_json()["clip"]["note_id"] == note

"""The stack ceiling: create, playback and note audio with nothing but the stack itself.

    gunicorn --pythonpath bench/perf ceiling:app      (same env as the service)

Each route does what the service's route must do at the least: decode the HS256
token with PyJWT, run ONE SQL statement through psycopg2 (a small thread-safe pool
of autocommit connections), presign ONE URL with a boto3 client built once, and
answer the same JSON shape. No ORM, no marshmallow, no flask-smorest. The ratio
``service / ceiling`` on the same gunicorn settings, database and machine says how
much the service's layers cost; 1.0 would mean they cost nothing.

Settings come from the same environment variables as the service (``DATABASE_URL``,
``S3_*``, ``AWS_*``, ``AUTH_JWT_SECRET``); the key prefix from ``S3_KEY_PREFIX``.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import jwt
import psycopg2
import psycopg2.pool
from botocore.config import Config
from flask import Flask, g, request

from advanced_notes.domain.mime import MIME_EXTENSIONS

# The service's MIME table (pure data): the ceiling must build the same object keys.
EXTENSIONS = MIME_EXTENSIONS
MAX_UPLOAD_BYTES = 104_857_600


def _env(name: str, default: str | None = None) -> str | None:
    """An environment variable; empty counts as unset, as in the service's settings."""
    return os.environ.get(name) or default


#: Presigned URL lifetime, seconds (the service's default).
EXPIRES_SECONDS = int(_env("S3_PRESIGN_GET_EXPIRES_SECONDS", "900"))
#: Connections per worker process: enough for every gunicorn thread.
POOL_MAX = int(_env("CEILING_POOL_MAX", "16"))

CLIP_COLUMNS = (
    "id, note_id, status, mime_type, bytes, duration_ms, measured_duration_ms, checksum_sha256, "
    "storage_key, etag, stored_bytes, created_at, updated_at, completed_at"
)
CLIP_FIELDS = [c.strip() for c in CLIP_COLUMNS.split(",")]
SQL_NOTE_AUDIO = (
    f"SELECT {CLIP_COLUMNS} FROM audio_clips WHERE owner_id = %s AND note_id = %s "
    "AND status = 'ready' ORDER BY created_at DESC, id DESC LIMIT 1"
)
SQL_PLAYBACK = "SELECT storage_key, mime_type, status FROM audio_clips WHERE id = %s AND owner_id = %s"
SQL_CREATE = (
    "INSERT INTO audio_clips (id, owner_id, note_id, status, mime_type, bytes, duration_ms, storage_key, "
    "created_at, updated_at, upload_expires_at) VALUES (%s, %s, %s, 'pending', %s, %s, %s, %s, %s, %s, %s)"
)

app = Flask(__name__)
_SECRET = os.environ["AUTH_JWT_SECRET"]
_BUCKET = os.environ["S3_BUCKET"]
_PREFIX = _env("S3_KEY_PREFIX", "perf")
_REGION = _env("AWS_REGION", "us-east-1")
_S3 = boto3.session.Session(
    aws_access_key_id=_env("AWS_ACCESS_KEY_ID"),
    aws_secret_access_key=_env("AWS_SECRET_ACCESS_KEY"),
    region_name=_REGION,
).client(
    "s3",
    endpoint_url=_env("S3_ENDPOINT_URL"),
    config=Config(
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        request_checksum_calculation="when_required",
        region_name=_REGION,
    ),
)
_pool: psycopg2.pool.ThreadedConnectionPool | None = None
_pool_lock = threading.Lock()


def _dsn() -> str:
    return os.environ["DATABASE_URL"].replace("postgresql+psycopg2://", "postgresql://", 1)


@contextmanager
def connection() -> Iterator[Any]:
    """A pooled autocommit connection: one statement is one round trip, no BEGIN/COMMIT."""
    global _pool
    if _pool is None:
        with _pool_lock:  # created lazily so each gunicorn worker has its own after the fork
            if _pool is None:
                _pool = psycopg2.pool.ThreadedConnectionPool(1, POOL_MAX, _dsn())
    conn = _pool.getconn()
    try:
        conn.autocommit = True
        yield conn
    finally:
        _pool.putconn(conn)


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    utc = value.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _error(status: int, code: str, message: str) -> tuple[dict[str, Any], int]:
    return {"error": {"code": code, "message": message}}, status


@app.before_request
def authenticate() -> tuple[dict[str, Any], int] | None:
    if request.path == "/healthz":
        return None
    _scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    try:
        g.owner_id = jwt.decode(token, _SECRET, algorithms=["HS256"], leeway=30, options={"require": ["exp", "sub"]})[
            "sub"
        ]
    except jwt.PyJWTError:
        return _error(401, "unauthorized", "Send 'Authorization: Bearer <token>'.")
    return None


def _presign_get(key: str, mime_type: str, clip_id: str) -> dict[str, str | None]:
    signed_at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    url = _S3.generate_presigned_url(
        "get_object",
        ExpiresIn=EXPIRES_SECONDS,
        Params={
            "Bucket": _BUCKET,
            "Key": key,
            "ResponseContentType": mime_type,
            "ResponseContentDisposition": f'inline; filename="{clip_id}.{EXTENSIONS[mime_type]}"',
        },
    )
    return {"url": url, "expires_at": _iso(signed_at + dt.timedelta(seconds=EXPIRES_SECONDS))}


@app.post("/api/audio-clips")
def create() -> tuple[dict[str, Any], int]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or set(body) - {"mime_type", "bytes", "note_id", "duration_ms"}:
        return _error(422, "validation_error", "Bad body.")
    mime, size, note = str(body.get("mime_type", "")).lower(), body.get("bytes"), body.get("note_id")
    duration = body.get("duration_ms")
    if (
        mime not in EXTENSIONS
        or type(size) is not int
        or not 1 <= size <= MAX_UPLOAD_BYTES
        or not (note is None or (isinstance(note, str) and 1 <= len(note) <= 255))
    ):
        return _error(422, "validation_error", "Bad body.")
    clip_id = uuid.uuid4()
    key = f"{_PREFIX}/audio-clips/{clip_id}.{EXTENSIONS[mime]}"
    now = dt.datetime.now(dt.UTC)
    url = _S3.generate_presigned_url(
        "put_object",
        ExpiresIn=EXPIRES_SECONDS,
        Params={"Bucket": _BUCKET, "Key": key, "ContentType": mime, "ContentLength": size},
    )
    expires = now.replace(microsecond=0) + dt.timedelta(seconds=EXPIRES_SECONDS)
    with connection() as conn, conn.cursor() as cur:
        cur.execute(SQL_CREATE, (str(clip_id), g.owner_id, note, mime, size, duration, key, now, now, expires))
    clip = {
        "id": str(clip_id),
        "note_id": note,
        "status": "pending",
        "mime_type": mime,
        "bytes": size,
        "duration_ms": duration,
        "measured_duration_ms": None,
        "checksum_sha256": None,
        "storage_key": key,
        "etag": None,
        "stored_bytes": None,
        "created_at": _iso(now),
        "updated_at": _iso(now),
        "completed_at": None,
    }
    upload = {
        "method": "PUT",
        "url": url,
        "storage_key": key,
        "headers": {"Content-Type": mime, "Content-Length": str(size)},
        "expires_at": _iso(expires),
    }
    return {"clip": clip, "upload": upload}, 201


@app.get("/api/audio-clips/<uuid:clip_id>/playback")
def playback(clip_id: uuid.UUID) -> tuple[dict[str, Any], int]:
    with connection() as conn, conn.cursor() as cur:
        cur.execute(SQL_PLAYBACK, (str(clip_id), g.owner_id))
        row = cur.fetchone()
    if row is None:
        return _error(404, "not_found", "No such audio clip.")
    key, mime, status = row
    if status != "ready":
        return _error(409, "clip_not_ready", f"The clip is {status}.")
    return _presign_get(key, mime, str(clip_id)), 200


@app.get("/api/notes/<path:note_id>/audio")
def note_audio(note_id: str) -> tuple[dict[str, Any], int]:
    with connection() as conn, conn.cursor() as cur:
        cur.execute(SQL_NOTE_AUDIO, (g.owner_id, note_id))
        row = cur.fetchone()
    if row is None:
        return _error(404, "not_found", "The note has no ready audio clip.")
    clip = dict(zip(CLIP_FIELDS, row, strict=False))
    clip["id"] = str(clip["id"])
    for name in ("created_at", "updated_at", "completed_at"):
        clip[name] = _iso(clip[name])
    return {"clip": clip, "playback": _presign_get(clip["storage_key"], clip["mime_type"], clip["id"])}, 200


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}

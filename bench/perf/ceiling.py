"""The stack ceiling: create, complete, playback and note audio with nothing but the stack itself.

    gunicorn --pythonpath bench/perf ceiling:app      (same env as the service)

Each route does what the service's route must do at the least: decode the HS256
token with PyJWT, run ONE SQL statement through psycopg2 (a small thread-safe pool
of autocommit connections), presign ONE URL with a boto3 client built once, and
answer the same JSON shape. No ORM, no marshmallow, no flask-smorest. The ratio
``service / ceiling`` on the same gunicorn settings, database and machine says how
much the service's layers cost; 1.0 would mean they cost nothing.

complete is the exception to "one statement, one presign": it must read the clip, look
at the object and record the verdict, so its least is TWO statements (a SELECT and a
compare-and-set UPDATE) and TWO store calls (a HEAD and one ranged GET), and it parses
the audio with the service's own pure domain code (``advanced_notes.domain.audio`` and
``advanced_notes.domain.rangeio``), so both apps measure the same duration the same way.
See :func:`complete`.

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
from typing import Any, BinaryIO, cast

import boto3
import jwt
import psycopg2
import psycopg2.pool
from botocore.config import Config
from botocore.exceptions import ClientError
from flask import Flask, g, request

from advanced_notes.domain.audio import (
    SNIFF_BYTES,
    UnreadableAudio,
    container_fits,
    measure_duration_ms,
    sniff_container,
)
from advanced_notes.domain.mime import DEFAULT_ALLOWED_MIME_TYPES, extension_for, normalize_mime_type
from advanced_notes.domain.processing import processing_view
from advanced_notes.domain.rangeio import RangedReader, ReadBudgetExceeded

# The service's MIME table (pure data): the ceiling must build the same object keys.
EXTENSIONS = {mime_type: extension_for(mime_type) for mime_type in DEFAULT_ALLOWED_MIME_TYPES}
MAX_UPLOAD_BYTES = 104_857_600


def _env(name: str, default: str | None = None) -> str | None:
    """An environment variable; empty counts as unset, as in the service's settings."""
    return os.environ.get(name) or default


#: Presigned URL lifetime, seconds (the service's default).
EXPIRES_SECONDS = int(_env("S3_PRESIGN_GET_EXPIRES_SECONDS", "900"))
#: Connections per worker process: enough for every gunicorn thread.
POOL_MAX = int(_env("CEILING_POOL_MAX", "16"))
#: complete's limits, from the service's settings of the same names (and defaults).
MAX_DURATION_MS = int(_env("MAX_DURATION_MS", "10800000"))
AUDIO_PROBE_MAX_BYTES = int(_env("AUDIO_PROBE_MAX_BYTES", str(8 * 1024**2)))
#: complete's one ranged GET: the first 64 KiB, the block the service's reader fetches
#: first. Its parser needs nothing beyond it for the fixture note.m4a (54,692 bytes,
#: ``moov`` at the end): the whole object is inside.
FIRST_RANGE_BYTES = 64 * 1024

CLIP_COLUMNS = (
    "id, note_id, status, mime_type, bytes, duration_ms, measured_duration_ms, checksum_sha256, "
    "storage_key, etag, stored_bytes, created_at, updated_at, completed_at, processing_status, processing"
)
CLIP_FIELDS = [c.strip() for c in CLIP_COLUMNS.split(",")]
SQL_NOTE_AUDIO = (
    f"SELECT {CLIP_COLUMNS} FROM audio_clips WHERE owner_id = %s AND note_id = %s "
    "AND status = 'ready' ORDER BY created_at DESC, id DESC LIMIT 1"
)
SQL_PLAYBACK = "SELECT storage_key, mime_type, status FROM audio_clips WHERE id = %s AND owner_id = %s"
SQL_COMPLETE_SELECT = f"SELECT {CLIP_COLUMNS} FROM audio_clips WHERE id = %s AND owner_id = %s"
SQL_COMPLETE_UPDATE = (
    "UPDATE audio_clips SET status = 'ready', etag = %s, stored_bytes = %s, measured_duration_ms = %s, "
    "completed_at = %s, updated_at = %s, processing_status = 'queued' "
    f"WHERE id = %s AND status = 'pending' RETURNING {CLIP_COLUMNS}"
)
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
        "processing": None,
    }
    upload = {
        "method": "PUT",
        "url": url,
        "storage_key": key,
        "headers": {"Content-Type": mime, "Content-Length": str(size)},
        "expires_at": _iso(expires),
    }
    return {"clip": clip, "upload": upload}, 201


def _clip_json(row: tuple[Any, ...]) -> dict[str, Any]:
    """A clip row (:data:`CLIP_COLUMNS`) as the service's ClipSchema dumps it."""
    clip = dict(zip(CLIP_FIELDS, row, strict=True))
    clip["id"] = str(clip["id"])
    clip["processing"] = processing_view(clip.pop("processing_status"), clip["processing"])
    for name in ("created_at", "updated_at", "completed_at"):
        clip[name] = _iso(clip[name])
    return clip


def _not_pending(clip: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The answer for a clip that is no longer pending: ready as it is, else 409 (as the service)."""
    if clip["status"] == "ready":
        return {"clip": clip}, 200
    return _error(409, "conflict", f"The clip is {clip['status']}.")


def _rejected(message: str) -> tuple[dict[str, Any], int]:
    return _error(422, "upload_rejected", message)


@app.post("/api/audio-clips/<uuid:clip_id>/complete")
def complete(clip_id: uuid.UUID) -> tuple[dict[str, Any], int]:
    """The least complete can do: 2 statements, 2 store calls and the service's parse.

    1. ONE SELECT of the clip's row by id and owner: complete needs the object key, the
       declared size and content type (and the status, and the checksum if one was
       declared); the whole row is read because a clip already ready is answered as it is.
    2. ONE HEAD of the object: its size and Content-Type against the declared ones (and
       its SHA-256 when one was declared, as the service asks for it only then).
    3. ONE ranged GET of the first 64 KiB (``Range: bytes=0-65535``); the sniff and the
       parse read it through the service's :class:`RangedReader`, which would fetch
       further 64 KiB blocks only if the parser sought beyond it (never for note.m4a).
    4. The service's pure domain code: :func:`sniff_container`, :func:`container_fits`,
       :func:`measure_duration_ms` (mutagen, plus the MP4 edit list), the duration limit.
    5. ONE ``UPDATE ... WHERE id = ... AND status = 'pending' RETURNING ...`` in
       autocommit (the compare-and-set); its row is the answer, ``{"clip": {...}}``.

    A rejection answers 422 without recording it (the service records it and deletes the
    object; the benchmark uploads only the real fixture, so it never happens). Losing the
    compare-and-set to a concurrent complete costs one more SELECT to answer the state.
    """
    with connection() as conn, conn.cursor() as cur:
        cur.execute(SQL_COMPLETE_SELECT, (str(clip_id), g.owner_id))
        row = cur.fetchone()
    if row is None:
        return _error(404, "not_found", "No such audio clip.")
    clip = _clip_json(row)
    if clip["status"] != "pending":
        return _not_pending(clip)
    key, declared_bytes, declared_type = clip["storage_key"], clip["bytes"], clip["mime_type"]
    head_args = {"Bucket": _BUCKET, "Key": key}
    if clip["checksum_sha256"]:
        head_args["ChecksumMode"] = "ENABLED"
    try:
        head = _S3.head_object(**head_args)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return _error(409, "upload_missing", "No object has been uploaded for this clip yet.")
        raise
    size, etag = int(head["ContentLength"]), head.get("ETag")
    if size != declared_bytes:
        return _rejected(f"The object has {size} bytes; {declared_bytes} were declared.")
    if normalize_mime_type(head.get("ContentType") or "") != declared_type:
        return _rejected("The object's Content-Type differs from the declared one.")
    stored_sha = head.get("ChecksumSHA256")
    if clip["checksum_sha256"] and stored_sha and "-" not in stored_sha and stored_sha != clip["checksum_sha256"]:
        return _rejected("The object's SHA-256 differs from the declared one.")

    first = _S3.get_object(Bucket=_BUCKET, Key=key, Range=f"bytes=0-{FIRST_RANGE_BYTES - 1}")["Body"].read()

    def fetch(start: int, end: int) -> bytes:
        if end < len(first):  # the reader's first block: what the one GET brought
            return first[start : end + 1]
        return _S3.get_object(Bucket=_BUCKET, Key=key, Range=f"bytes={start}-{end}")["Body"].read()

    reader = RangedReader(fetch, size, max_fetch_bytes=AUDIO_PROBE_MAX_BYTES)
    container = sniff_container(reader.read(SNIFF_BYTES))
    if container is None:
        return _rejected("The object is not audio of a known container.")
    if not container_fits(declared_type, container):
        return _rejected(f"The object is {container} audio; {declared_type!r} was declared.")
    try:
        duration_ms = measure_duration_ms(cast(BinaryIO, reader), container)  # a file-like RawIOBase
    except (UnreadableAudio, ReadBudgetExceeded) as exc:
        return _rejected(f"The audio cannot be parsed: {exc}.")
    if duration_ms is not None and duration_ms > MAX_DURATION_MS:
        return _rejected(f"The audio lasts {duration_ms} ms; at most {MAX_DURATION_MS} ms are allowed.")

    now = dt.datetime.now(dt.UTC)
    with connection() as conn, conn.cursor() as cur:
        cur.execute(SQL_COMPLETE_UPDATE, (etag, size, duration_ms, now, now, str(clip_id)))
        row = cur.fetchone()
        if row is None:  # another complete won the compare-and-set: answer the state it left
            cur.execute(SQL_COMPLETE_SELECT, (str(clip_id), g.owner_id))
            row = cur.fetchone()
            if row is None:
                return _error(404, "not_found", "No such audio clip.")
            return _not_pending(_clip_json(row))
    return {"clip": _clip_json(row)}, 200


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
    clip = _clip_json(row)
    return {"clip": clip, "playback": _presign_get(clip["storage_key"], clip["mime_type"], clip["id"])}, 200


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}

"""Seed data: clips bulk-loaded with COPY, and real objects in the store where requests need them.

    python seed.py copy DBNAME START STOP PREFIX     # what the harness runs for bulk loads

Rows are generated, not requested: ``COPY audio_clips FROM STDIN`` loads 10^6 clips in
well under a minute, where going through the API would take hours and measure the API
instead of the table. The shape stays the same at every size (about
:attr:`Shape.clips_per_owner` clips per owner over :attr:`Shape.notes_per_owner` notes),
so growing the table adds owners, the way a growing user base does.

Every ``audio/mp4`` row describes the real fixture ``note.m4a`` (54692 bytes, 6289 ms),
so a row chosen as a playback target can be given the real object.
"""

from __future__ import annotations

import datetime as dt
import io
import random
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from pgutil import connect

FIXTURE = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "audio" / "note.m4a"
FIXTURE_BYTES = 54692
FIXTURE_DURATION_MS = 6289
FIXTURE_MIME = "audio/mp4"

COLUMNS = (
    "id",
    "owner_id",
    "note_id",
    "status",
    "mime_type",
    "bytes",
    "duration_ms",
    "storage_key",
    "checksum_sha256",
    "etag",
    "stored_bytes",
    "measured_duration_ms",
    "created_at",
    "updated_at",
    "completed_at",
    "upload_expires_at",
    "idempotency_key",
)
#: Rows per COPY statement: bounds the harness's memory (one chunk of text at a time).
COPY_CHUNK_ROWS = 50_000
_NULL = "\\N"
_UTC = dt.UTC
#: (mime type, object key extension, weight): mostly iOS m4a, some browser webm, a few mp3.
_MIMES = ((FIXTURE_MIME, "m4a", 80), ("audio/webm", "webm", 15), ("audio/mpeg", "mp3", 5))
#: Status mix of a mature table: mostly ready, a few stale uploads and rejections.
_STATUSES = (("ready", 85), ("pending", 4), ("rejected", 3), ("expired", 8))


@dataclass(frozen=True)
class Shape:
    """How seeded clips spread: per owner, per note, over time."""

    clips_per_owner: int = 100
    notes_per_owner: int = 20
    #: Share of clips attached to no note.
    unattached: float = 0.1
    #: Clips were created over this many days before now.
    days: float = 90.0


@dataclass(frozen=True)
class Target:
    """A ready clip used by playback and note-audio requests."""

    owner_id: str
    note_id: str
    clip_id: str
    storage_key: str


def owner_name(index: int) -> str:
    """The owner id (token ``sub``) of owner number ``index``."""
    return f"owner-{index:07d}"


def _weighted(rng: random.Random, table: tuple[tuple, ...]) -> tuple:
    return rng.choices(table, weights=[row[-1] for row in table])[0]


def _rows_tsv(start: int, stop: int, prefix: str, shape: Shape, seed: int, now: float) -> str:
    """COPY text of rows number ``start..stop-1`` (deterministic for a given ``seed``)."""
    rng = random.Random(seed * 1_000_003 + start)
    out = io.StringIO()
    for index in range(start, stop):
        clip_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        owner = owner_name(index // shape.clips_per_owner)
        note = _NULL if rng.random() < shape.unattached else f"note-{rng.randrange(shape.notes_per_owner):03d}"
        status = _weighted(rng, _STATUSES)[0]
        mime, ext, _ = _weighted(rng, _MIMES)
        if mime == FIXTURE_MIME:
            size, duration = FIXTURE_BYTES, FIXTURE_DURATION_MS
        else:
            size, duration = rng.randint(8_000, 4_000_000), rng.randint(500, 600_000)
        created = now - rng.random() * shape.days * 86_400
        created_s = dt.datetime.fromtimestamp(created, _UTC).isoformat()
        ready = status == "ready"
        completed_s = dt.datetime.fromtimestamp(created + 4, _UTC).isoformat() if ready else _NULL
        expires_s = dt.datetime.fromtimestamp(created + 900, _UTC).isoformat()
        etag = f'"{rng.getrandbits(128):032x}"' if ready else _NULL
        fields = (
            clip_id,
            owner,
            note,
            status,
            mime,
            str(size),
            str(duration),
            f"{prefix}/audio-clips/{clip_id}.{ext}",
            _NULL,
            etag,
            str(size) if ready else _NULL,
            str(duration) if ready else _NULL,
            created_s,
            completed_s if ready else created_s,
            completed_s,
            expires_s,
            _NULL,
        )
        out.write("\t".join(fields))
        out.write("\n")
    return out.getvalue()


def copy_clips(dbname: str, start: int, stop: int, prefix: str, shape: Shape = Shape(), seed: int = 1) -> None:
    """Bulk-load clips number ``start..stop-1`` with COPY, in one transaction.

    Args:
        dbname: a migrated benchmark database.
        start, stop: row numbers; growing a table from 10^3 to 10^4 is ``copy_clips(db, 1000, 10000, ...)``.
        prefix: the object key prefix (``S3_KEY_PREFIX``).
        seed: random seed; the same arguments give the same rows.
    """
    now = dt.datetime.now(_UTC).timestamp() - 60  # a minute back: every seeded row predates the run
    copy_sql = f"COPY audio_clips ({', '.join(COLUMNS)}) FROM STDIN"
    with connect(dbname, autocommit=False) as conn:
        with conn.cursor() as cur:
            for chunk in range(start, stop, COPY_CHUNK_ROWS):
                text = _rows_tsv(chunk, min(stop, chunk + COPY_CHUNK_ROWS), prefix, shape, seed, now)
                cur.copy_expert(copy_sql, io.StringIO(text))
        conn.commit()


def copy_pending_for_complete(
    dbname: str,
    owners: list[str],
    count: int,
    prefix: str,
    seed: int = 7,
    *,
    mime: str = FIXTURE_MIME,
    size: int = FIXTURE_BYTES,
    ext: str = "m4a",
) -> list[tuple[str, str, str]]:
    """Insert ``count`` fresh ``pending`` clips (round-robin over ``owners``) for complete to verify.

    Args:
        mime, size, ext: what each clip declares (type, bytes) and its key's extension; by
            default the fixture's (declared duration too), else no declared duration.
    Returns:
        ``(owner_id, clip_id, storage_key)`` per clip; upload the fixture (or the object
        of the declared size) to each key.
    """
    rng = random.Random(seed)
    now = dt.datetime.now(_UTC)
    created_s = now.isoformat()
    expires_s = (now + dt.timedelta(seconds=900)).isoformat()
    made, out = [], io.StringIO()
    for i in range(count):
        clip_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        owner = owners[i % len(owners)]
        key = f"{prefix}/audio-clips/{clip_id}.{ext}"
        fields = (
            clip_id,
            owner,
            "note-complete",
            "pending",
            mime,
            str(size),
            str(FIXTURE_DURATION_MS) if mime == FIXTURE_MIME and size == FIXTURE_BYTES else _NULL,
            key,
            _NULL,
            _NULL,
            _NULL,
            _NULL,
            created_s,
            created_s,
            _NULL,
            expires_s,
            _NULL,
        )
        out.write("\t".join(fields) + "\n")
        made.append((owner, clip_id, key))
    with connect(dbname, autocommit=False) as conn:
        with conn.cursor() as cur:
            cur.copy_expert(f"COPY audio_clips ({', '.join(COLUMNS)}) FROM STDIN", io.StringIO(out.getvalue()))
        conn.commit()
    return made


def sample_targets(dbname: str, count: int, seed: int = 11) -> list[Target]:
    """``count`` ready m4a clips attached to a note, spread over the whole table.

    Ordering by a hash of the id picks rows from everywhere in the table (and its
    indexes), not just the hot, recently inserted end.
    """
    with connect(dbname) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT owner_id, note_id, id::text, storage_key FROM audio_clips "
            "WHERE status = 'ready' AND mime_type = %s AND note_id IS NOT NULL "
            "ORDER BY md5(id::text || %s) LIMIT %s",
            (FIXTURE_MIME, str(seed), count),
        )
        return [Target(*row) for row in cur.fetchall()]


def upload_fixture(
    s3_client, bucket: str, keys: list[str], threads: int = 8, *, path: Path = FIXTURE, mime: str = FIXTURE_MIME
) -> None:
    """Store the real recording ``path`` (by default ``note.m4a``) at every key: one PUT,
    then server-side copies.

    A copy sends no body over the loopback, so thousands of objects take seconds; the
    stored objects are byte-identical to the recording, with ``Content-Type: mime``.
    """
    if not keys:
        return
    body = path.read_bytes()
    if path == FIXTURE and len(body) != FIXTURE_BYTES:
        raise RuntimeError(f"{FIXTURE} has {len(body)} bytes, expected {FIXTURE_BYTES}")
    s3_client.put_object(Bucket=bucket, Key=keys[0], Body=body, ContentType=mime)
    source = {"Bucket": bucket, "Key": keys[0]}

    def copy(key: str) -> None:
        s3_client.copy_object(Bucket=bucket, Key=key, CopySource=source)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(copy, keys[1:]))


def main(argv: list[str]) -> int:
    """``copy DBNAME START STOP PREFIX``: :func:`copy_clips` in its own process.

    The harness runs bulk loads this way so that its own memory stays small: on Linux a
    child's ``ru_maxrss`` starts at its parent's peak RSS (it survives fork and exec), and
    the sweeper's peak RSS is read in a child of the harness.
    """
    if len(argv) != 6 or argv[1] != "copy":
        print(__doc__, file=sys.stderr)
        return 2
    copy_clips(argv[2], int(argv[3]), int(argv[4]), argv[5])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""The frequent sweep costs what is pending; the nightly reconcile reads a listing or an S3 Inventory report.

Real parts: moto's server over HTTP, the real fixtures, PostgreSQL or SQLite. Store
requests are counted with botocore's own event hook on the app's client (every request
the adapter sends passes it), not by replacing anything.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import uuid
from collections import Counter
from urllib.parse import quote_plus

import pytest
from sqlalchemy import update

from advanced_notes.adapters.models import AudioClip
from advanced_notes.api.context import services_of
from advanced_notes.app import create_app
from advanced_notes.domain.clock import utcnow
from advanced_notes.services.sweeper import Sweeper
from testkit.live import Api, put_upload
from testkit.servers import LiveServer
from tests.helpers import run_cli

pytestmark = pytest.mark.e2e


@pytest.fixture
def env(base_config, make_token):
    """An app on its own key prefix (grace 0), served on loopback; yields (api, app)."""
    app = create_app(
        {
            **base_config,
            "S3_KEY_PREFIX": f"cost-{uuid.uuid4().hex[:8]}",
            "UPLOAD_RESERVATION_SECONDS": "3600",
            "SWEEP_COMPLETE_GRACE_SECONDS": "0",
        }
    )
    server = LiveServer(app)
    yield Api(server.url, make_token("cost-user")), app
    server.stop()


def count_requests(app) -> Counter[str]:
    """A counter of the S3 operations the app's storage client sends from now on, by name."""
    calls: Counter[str] = Counter()
    client = services_of(app).storage._client  # the adapter's one client: its event hook sees every request

    def seen(model, **_kw):
        calls[model.name] += 1

    client.meta.events.register("before-call.s3", seen)
    return calls


def make_stale(app, *clip_ids: str) -> None:
    with services_of(app).db.transaction() as session:
        session.execute(
            update(AudioClip)
            .where(AudioClip.id.in_([uuid.UUID(c) for c in clip_ids]))
            .values(created_at=utcnow() - dt.timedelta(hours=2))
        )


def status(app, clip_id: str) -> str:
    return services_of(app).clips.get("cost-user", uuid.UUID(clip_id)).status


def test_the_frequent_sweep_asks_per_pending_clip_and_never_lists_the_folder(env, audio):
    """Stored objects and ready clips cost nothing: one HEAD per pending clip, no LIST."""
    api, app = env
    services = services_of(app)
    folder = f"{services.settings.key_prefix}/audio-clips/"
    kept = [api.upload(audio["note.ogg"]) for _ in range(2)]  # ready clips: never read
    for n in range(30):  # stored objects (of clips long gone): never listed
        services.storage.put_object(f"{folder}{uuid.uuid4()}.ogg", b"x" * n, "audio/ogg")
    forgotten = api.create(audio["note.m4a"])
    put_upload(forgotten["upload"], audio["note.m4a"].data)
    stale = api.create(audio["note.ogg"])["clip"]["id"]
    make_stale(app, stale)
    waiting = api.create(audio["note.mp3"])["clip"]["id"]

    calls = count_requests(app)
    report = Sweeper(services.db, services.storage, services.settings).run(apply=True)
    assert calls["ListObjectsV2"] == 0, calls  # the folder is never listed while few clips are pending
    assert report.pending_checked == 3 and report.rows_scanned == 3 and not report.listed
    assert report.objects_scanned == 0 and not report.reconciled
    assert report.finished_ready == 1 and report.expired == 1
    assert status(app, forgotten["clip"]["id"]) == "ready" and status(app, stale) == "expired"
    assert status(app, waiting) == "pending" and {status(app, k["id"]) for k in kept} == {"ready"}
    # One HEAD per pending clip, one more for the stale clip's live URL, and the
    # verification's own HEAD of the finished clip; no request per stored object.
    assert calls["HeadObject"] == 3 + 1 + 1, calls


def test_many_pending_clips_are_checked_with_one_listing(env, audio):
    """Above the threshold, one listing (a request per 1000 objects) replaces a HEAD per clip."""
    api, app = env
    services = services_of(app)
    forgotten = api.create(audio["note.m4a"])
    put_upload(forgotten["upload"], audio["note.m4a"].data)
    stale = [api.create(audio["note.ogg"])["clip"]["id"] for _ in range(3)]
    make_stale(app, *stale)

    calls = count_requests(app)
    report = Sweeper(services.db, services.storage, services.settings, listing_threshold=2).run(apply=True)
    assert report.listed and report.pending_checked == 0 and calls["ListObjectsV2"] == 1, calls
    assert report.objects_scanned == 1 and report.rows_scanned == 4 + 3  # the merge, then expiry's read
    assert report.finished_ready == 1 and report.expired == 3
    assert status(app, forgotten["clip"]["id"]) == "ready" and {status(app, c) for c in stale} == {"expired"}
    assert "listing the folder (many pending)" in "\n".join(report.summary())


def test_the_listing_threshold_is_an_option(env, audio):
    api, app = env
    api.create(audio["note.ogg"])
    api.create(audio["note.ogg"])
    calls = count_requests(app)
    output = run_cli(app, ["sweep", "--listing-threshold", "1"]).output
    assert "pending clips checked: 0 (listing the folder (many pending))" in output and calls["ListObjectsV2"] == 1
    output = run_cli(app, ["sweep"]).output
    assert "pending clips checked: 2 (asking the store per clip)" in output and calls["ListObjectsV2"] == 1
    assert "reconcile (orphan, late and missing objects): not run" in output


def write_inventory(app, objects: list[tuple[str, int, dt.datetime]], *, files: int = 2, **manifest: object) -> str:
    """An S3 Inventory report of ``objects`` in the app's bucket, as AWS writes one (CSV, gzip,
    URL-encoded keys, no header, files not in key order); returns the manifest's key."""
    storage = services_of(app).storage
    base = f"inventory/{storage.bucket}/nightly/{uuid.uuid4().hex[:6]}"
    chunks = [objects[::-1][n::files] for n in range(files)]  # reversed and interleaved: no order
    keys = []
    for n, chunk in enumerate(chunks):
        text = io.StringIO()
        writer = csv.writer(text, quoting=csv.QUOTE_ALL)
        for key, size, modified in chunk:
            stamp = modified.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            writer.writerow([storage.bucket, quote_plus(key, safe="/"), size, stamp, "etag"])
        keys.append(f"{base}/data/{n}.csv.gz")
        storage.put_object(keys[-1], gzip.compress(text.getvalue().encode()), "application/gzip")
    body = {
        "sourceBucket": storage.bucket,
        "destinationBucket": f"arn:aws:s3:::{storage.bucket}",
        "version": "2016-11-30",
        "creationTimestamp": str(int(utcnow().timestamp() * 1000)),
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, Size, LastModifiedDate, ETag",
        "files": [{"key": k, "size": 1, "MD5checksum": "x"} for k in keys],
        **manifest,
    }
    storage.put_object(f"{base}/manifest.json", json.dumps(body).encode(), "application/json")
    return f"{base}/manifest.json"


def test_reconcile_reads_an_inventory_report_instead_of_listing(env, audio):
    api, app = env
    services = services_of(app)
    storage, folder = services.storage, f"{services.settings.key_prefix}/audio-clips/"
    kept = api.upload(audio["note.ogg"])
    missing = api.upload(audio["note.mp3"])
    orphans = [f"{folder}{uuid.uuid4()}.m4a", f"{folder}not a clip+.txt"]  # a space and a plus: URL-encoded
    for key in orphans:
        storage.put_object(key, b"junk", "audio/mp4")
    listed = [(o.key, o.size, o.last_modified) for page in storage.list_objects(folder) for o in page]
    storage.delete(missing["storage_key"])  # after the report: its object is gone anyway
    manifest = write_inventory(app, [o for o in listed if o[0] != missing["storage_key"]])

    calls = count_requests(app)
    result = run_cli(app, ["sweep", "--reconcile", "--inventory", manifest, "--min-orphan-age", "0"])
    assert result.exit_code == 0, result.output
    assert calls["ListObjectsV2"] == 0, calls  # the report replaced the listing
    assert "orphan objects (no row, no recorded deletion): 2, deleted: 0" in result.output
    assert all(f"  orphan: {key}" in result.output for key in orphans), result.output
    assert f"  missing: {missing['storage_key']}" in result.output
    assert "objects scanned: 3" in result.output and kept["storage_key"] not in result.output

    run_cli(app, ["sweep", "--apply", "--reconcile", "--delete", "--inventory", manifest, "--min-orphan-age", "0"])
    assert all(storage.head(key) is None for key in orphans) and storage.head(kept["storage_key"]) is not None


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ({"fileFormat": "Parquet"}, "only CSV is read"),
        ({"fileSchema": "Bucket, Key, Size"}, "lacks the field(s) LastModifiedDate"),
        ({"sourceBucket": "someone-else"}, "the report is of bucket 'someone-else'"),
    ],
)
def test_an_unusable_inventory_is_refused_with_its_reason(env, manifest, message):
    _, app = env
    result = run_cli(app, ["sweep", "--reconcile", "--inventory", write_inventory(app, [], **manifest)])
    assert result.exit_code == 1 and message in result.output, result.output


def test_inventory_options_need_reconcile(env):
    _, app = env
    assert "no object at 'nope.json'" in run_cli(app, ["sweep", "--reconcile", "--inventory", "nope.json"]).output
    result = run_cli(app, ["sweep", "--inventory", "nope.json"])
    assert result.exit_code == 2 and "--delete and --inventory need --reconcile" in result.output


def test_a_store_outage_stops_the_run_after_a_few_requests_and_expires_nothing(env, audio, base_config):
    api, app = env
    stale = [api.create(audio["note.ogg"])["clip"]["id"] for _ in range(20)]  # the pending quota
    make_stale(app, *stale)
    dead = create_app(
        {
            **base_config,
            "S3_KEY_PREFIX": services_of(app).settings.key_prefix,
            "S3_ENDPOINT_URL": "http://127.0.0.1:9",
            "S3_CONNECT_TIMEOUT_SECONDS": "1",
        }
    )
    calls = count_requests(dead)
    result = run_cli(dead, ["sweep", "--apply"])
    assert result.exit_code == 1 and "could not be reached" in result.output, result.output
    assert {status(app, c) for c in stale} == {"pending"}  # unknown is never empty
    assert calls["HeadObject"] <= 8 + 8, calls  # a streak of 8 failures, and the 8 already in flight


def test_the_pending_scans_are_index_ranges(empty_database_url):
    """On PostgreSQL, over 20,000 stored clips of which a fifth are pending (a backlog: the
    listing fallback's case): both scans of the frequent run read an index of pending clips in
    their order (no sort of every pending row per batch), never the table's every row."""
    url = empty_database_url()
    if not url.startswith("postgresql"):
        pytest.skip("plans are PostgreSQL's; .ci/run runs this on PostgreSQL")
    from sqlalchemy import create_engine, text

    from advanced_notes.adapters import migrate

    migrate.upgrade(url)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO audio_clips (id, owner_id, status, mime_type, bytes, storage_key, created_at, "
                    "updated_at) SELECT gen_random_uuid(), 'o' || (i % 500), "
                    "CASE WHEN i % 5 = 0 THEN 'pending' ELSE 'ready' END, 'audio/ogg', 10, 'k/' || i, "
                    "now() - i * interval '1 second', now() FROM generate_series(1, 20000) AS i"
                )
            )
            conn.execute(text("ANALYZE audio_clips"))
            by_time = "\n".join(
                conn.execute(
                    text(
                        "EXPLAIN SELECT * FROM audio_clips WHERE status = 'pending' AND created_at < now() "
                        "ORDER BY created_at, id LIMIT 500"
                    )
                ).scalars()
            )
            by_id = "\n".join(
                conn.execute(
                    text(
                        "EXPLAIN SELECT id, storage_key, status, completed_at, created_at FROM audio_clips "
                        "WHERE status = 'pending' ORDER BY id LIMIT 500"
                    )
                ).scalars()
            )
    finally:
        engine.dispose()
    assert "ix_audio_clips_status_created" in by_time and "Seq Scan" not in by_time, by_time
    assert "ix_audio_clips_pending_id" in by_id and "Sort" not in by_id and "Seq Scan" not in by_id, by_id


def test_an_unreadable_inventory_file_is_refused_with_its_name(env):
    _, app = env
    storage = services_of(app).storage
    manifest = write_inventory(app, [(f"{services_of(app).settings.key_prefix}/audio-clips/x.ogg", 1, utcnow())])
    body = json.loads(storage.get_range(manifest, 0, 100_000))
    storage.put_object(body["files"][0]["key"], b"not gzip", "application/gzip")  # a truncated delivery
    result = run_cli(app, ["sweep", "--reconcile", "--inventory", manifest])
    assert result.exit_code == 1, result.output
    assert f"{body['files'][0]['key']}: unreadable at its start: BadGzipFile" in result.output, result.output

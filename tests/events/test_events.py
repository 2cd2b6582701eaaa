"""Nothing lost when the client disappears: the sweeper and bucket events finish uploads.

Real parts: moto's server over HTTP for the bucket, real PUTs with the presigned URL,
the real audio fixtures, PostgreSQL or SQLite. No test here calls ``complete``: the
point is what happens when the client never does.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
import requests
from sqlalchemy import func, select, update

from advanced_notes.adapters.models import AudioClip, PendingDeletion, WebhookDelivery
from advanced_notes.api.context import services_of
from advanced_notes.app import create_app
from advanced_notes.domain.clock import utcnow
from advanced_notes.services.sweeper import Sweeper
from testkit.live import Api, put_upload
from testkit.servers import LiveServer
from tests.helpers import BUCKET, assert_ready_and_playable, clip_of, counter, pending_deletions, run_cli

pytestmark = pytest.mark.e2e

TOKEN = "storage-events-token-" + "y" * 20
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def env(base_config, make_token):
    """An app on its own key prefix with the events endpoint on, served on loopback."""
    app = create_app(
        {
            **base_config,
            "S3_KEY_PREFIX": f"events-{uuid.uuid4().hex[:8]}",
            "UPLOAD_RESERVATION_SECONDS": "3600",
            "SWEEP_COMPLETE_GRACE_SECONDS": "0",
            "STORAGE_EVENTS_TOKEN": TOKEN,
            # Receivers are recorded, not contacted, here: test_webhooks.py delivers.
            "WEBHOOK_URLS": "http://127.0.0.1:9/hook",
            "WEBHOOK_SECRET": WEBHOOK_SECRET,
        }
    )
    server = LiveServer(app)
    yield Api(server.url, make_token("events-user")), app
    server.stop()


def s3_record(key: str, *, bucket: str = BUCKET, name: str = "ObjectCreated:Put", size: int = 1) -> dict[str, Any]:
    """One record in the exact shape S3 documents (notification-content-structure.html), key URL-encoded."""
    from urllib.parse import quote_plus

    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": utcnow().strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "eventName": name,
        "userIdentity": {"principalId": "AWS:EXAMPLE"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": "EXAMPLE", "x-amz-id-2": "EXAMPLE"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "advanced-notes",
            "bucket": {"name": bucket, "ownerIdentity": {"principalId": "EXAMPLE"}, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"key": quote_plus(key, safe="/"), "size": size, "eTag": "0" * 32, "sequencer": "0A1B2C3D4E5F"},
        },
    }


def minio_body(*records: dict[str, Any]) -> dict[str, Any]:
    """What MinIO's webhook target POSTs: the records plus EventName and Key."""
    first = records[0] if records else s3_record("x")
    return {
        "EventName": "s3:" + first["eventName"],
        "Key": f"{BUCKET}/{first['s3']['object']['key']}",
        "Records": [{**r, "eventName": "s3:" + r["eventName"], "eventSource": "minio:s3"} for r in records],
    }


def post_events(api: Api, body: Any, token: str | None = TOKEN, **kw: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {"Authorization": ""}
    if isinstance(body, (str, bytes)):
        # As MinIO sends them: declared JSON, so odd bodies reach the event parser itself.
        headers["Content-Type"] = "application/json"
        return requests.post(api.base + "/api/storage-events", data=body, headers=headers, timeout=30, **kw)
    return requests.post(api.base + "/api/storage-events", json=body, headers=headers, timeout=30, **kw)


def events_of(app, clip_id: str) -> list[str]:
    with services_of(app).db.read() as session:
        return list(
            session.scalars(
                select(WebhookDelivery.event_type)
                .where(WebhookDelivery.clip_id == uuid.UUID(clip_id))
                .order_by(WebhookDelivery.created_at)
            )
        )


def sweep(app, *args: str) -> str:
    result = run_cli(app, ["sweep", *args])
    assert result.exit_code == 0, result.output
    return result.output


# -- the sweeper -----------------------------------------------------------------------------


def test_sweep_finishes_an_upload_nobody_completed(env, audio):
    api, app = env
    f = audio["note.m4a"]
    created = api.create(f)
    assert put_upload(created["upload"], f.data).status_code == 200
    before = counter(app, "advanced_notes_completions_total", path="sweeper", outcome="ready")

    assert "uploaded pending clips would be finished: 1" in sweep(app)  # dry run
    assert clip_of(app, created["clip"]["id"]).status == "pending"
    output = sweep(app, "--apply")
    assert "uploaded pending clips finished: 1 (ready 1, rejected 0)" in output
    assert_ready_and_playable(api, app, created["clip"]["id"], f)
    assert counter(app, "advanced_notes_completions_total", path="sweeper", outcome="ready") == before + 1
    assert events_of(app, created["clip"]["id"]) == ["clip.ready"]
    assert "uploaded pending clips finished: 0" in sweep(app, "--apply")  # nothing twice


def test_sweep_leaves_fresh_uploads_to_the_client_during_the_grace_period(base_config, audio, make_token):
    app = create_app({**base_config, "S3_KEY_PREFIX": f"grace-{uuid.uuid4().hex[:8]}"})  # default grace: 120 s
    assert services_of(app).settings.sweep_complete_grace_seconds == 120
    server = LiveServer(app)
    try:
        api = Api(server.url, make_token("grace-user"))
        f = audio["note.ogg"]
        created = api.create(f)
        put_upload(created["upload"], f.data)
        output = sweep(app, "--apply")
        assert "left for the client (grace period): 1" in output
        assert clip_of(app, created["clip"]["id"]).status == "pending"
    finally:
        server.stop()


def test_sweep_rejects_an_impostor_nobody_completed_and_deletes_it(env, audio):
    api, app = env
    f = audio["impostor-html.m4a"]
    created = api("POST", "/api/audio-clips", json={"mime_type": "audio/mp4", "bytes": f.size}).json()
    assert put_upload(created["upload"], f.data).status_code == 200
    assert "(ready 0, rejected 1)" in sweep(app, "--apply")
    clip = clip_of(app, created["clip"]["id"])
    assert clip.status == "rejected"
    assert services_of(app).storage.head(clip.storage_key) is None
    assert events_of(app, created["clip"]["id"]) == ["clip.rejected"]


def test_a_stale_upload_is_finished_not_expired(env, audio):
    """A pending clip whose object arrived is finished, not expired with its recording deleted."""
    api, app = env
    f = audio["note.mp3"]
    created = api.create(f)
    put_upload(created["upload"], f.data)
    with services_of(app).db.transaction() as session:
        session.execute(
            update(AudioClip)
            .where(AudioClip.id == uuid.UUID(created["clip"]["id"]))
            .values(created_at=utcnow() - dt.timedelta(hours=2))
        )
    output = sweep(app, "--apply")
    assert "stale pending clips expired: 0" in output
    assert_ready_and_playable(api, app, created["clip"]["id"], f)


def test_expiry_heads_clips_whose_url_was_still_valid_after_the_listing(env, audio):
    """The object may arrive after the listing passed its key: expiry HEADs such clips first."""
    api, app = env
    services = services_of(app)
    f = audio["note.wav"]
    created = api.create(f)
    put_upload(created["upload"], f.data)
    with services.db.transaction() as session:
        session.execute(update(AudioClip).values(created_at=utcnow() - dt.timedelta(hours=2)))
    sweeper = Sweeper(services.db, services.storage, services.settings)
    assert sweeper.expire_stale(True, utcnow()) == 0  # no listing ran: only the HEAD saw the object
    assert clip_of(app, created["clip"]["id"]).status == "ready"


def test_a_pending_clip_with_no_object_still_expires(env, audio):
    api, app = env
    created = api.create(audio["note.ogg"])
    with services_of(app).db.transaction() as session:
        session.execute(update(AudioClip).values(created_at=utcnow() - dt.timedelta(hours=2)))
    assert "stale pending clips expired: 1" in sweep(app, "--apply")
    assert clip_of(app, created["clip"]["id"]).status == "expired"
    assert events_of(app, created["clip"]["id"]) == ["clip.expired"]


# -- POST /api/storage-events ------------------------------------------------------------------


def test_storage_events_endpoint_is_off_without_a_token(api):
    response = post_events(api, minio_body(s3_record("dev/audio-clips/x.m4a")))
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert requests.get(api.base + "/api/storage-events", timeout=30).status_code == 404  # no route at all


@pytest.mark.parametrize("token", [None, "", "wrong", TOKEN + "x", TOKEN[:-1], "Basic " + TOKEN])
def test_storage_events_need_the_token(env, token):
    api, _ = env
    response = post_events(api, minio_body(s3_record("k")), token=token)
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "unauthorized"


def test_a_webhook_event_finishes_an_upload_once(env, audio):
    api, app = env
    f = audio["note.flac"]
    created = api.create(f)
    put_upload(created["upload"], f.data)
    body = minio_body(s3_record(created["clip"]["storage_key"], size=f.size))
    before = counter(app, "advanced_notes_completions_total", path="event", outcome="ready")

    first = post_events(api, body)
    assert first.status_code == 200, first.text
    assert first.json()["outcomes"]["ready"] == 1
    assert_ready_and_playable(api, app, created["clip"]["id"], f)
    again = post_events(api, body)  # at-least-once delivery: the same event twice
    assert again.status_code == 200 and again.json()["outcomes"]["duplicate"] == 1
    assert counter(app, "advanced_notes_completions_total", path="event", outcome="ready") == before + 1
    assert events_of(app, created["clip"]["id"]) == ["clip.ready"]  # one transition, one event
    assert counter(app, "advanced_notes_storage_events_total", source="webhook", outcome="duplicate") >= 1


def test_a_webhook_event_rejects_an_impostor_and_deletes_it(env, audio):
    api, app = env
    f = audio["impostor-html.m4a"]
    created = api("POST", "/api/audio-clips", json={"mime_type": "audio/mp4", "bytes": f.size}).json()
    put_upload(created["upload"], f.data)
    response = post_events(api, minio_body(s3_record(created["clip"]["storage_key"])))
    assert response.status_code == 200 and response.json()["outcomes"]["rejected"] == 1
    assert clip_of(app, created["clip"]["id"]).status == "rejected"
    assert services_of(app).storage.head(created["clip"]["storage_key"]) is None


def test_events_for_other_keys_and_shapes_are_counted_and_harmless(env, audio):
    api, app = env
    folder = f"{services_of(app).settings.key_prefix}/audio-clips/"
    body = minio_body(
        s3_record(f"other-prefix/audio-clips/{uuid.uuid4()}.m4a"),
        s3_record(f"{folder}not-a-clip.txt"),
        s3_record(f"{folder}{uuid.uuid4()}.m4a", bucket="someone-elses-bucket"),
        s3_record(f"{folder}{uuid.uuid4()}.m4a", name="ObjectRemoved:Delete"),
    )
    body["Records"] += [{"eventName": 7}, "junk", {"eventName": "s3:ObjectCreated:Put", "s3": {"object": {}}}]
    response = post_events(api, body)
    assert response.status_code == 200, response.text
    outcomes = response.json()["outcomes"]
    assert outcomes["other_prefix"] == 2 and outcomes["other_bucket"] == 1 and outcomes["not_created"] == 1
    assert outcomes["malformed"] == 3 and outcomes["ready"] == 0
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-11-25T00:00:00Z", "Bucket": BUCKET}
    assert post_events(api, test_event).json()["outcomes"]["test_event"] == 1


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[1, 2]",
        '"a string"',
        "null",
        "{}",
        '{"Records": "no"}',
        '{"Records": [null, 1, [], {"eventName": "ObjectCreated:Put", "s3": {"object": {"key": 5}}}]}',
        '{"Type": "Notification", "Message": "{\\"Records\\": 3}"}',
        '{"Records": [' * 2000 + "]}" * 2000,
        b"\xff\xfe\x00",
    ],
)
def test_odd_bodies_never_500(env, body):
    api, _ = env
    response = post_events(api, body)
    assert response.status_code in (200, 400, 413, 422), (response.status_code, response.text)
    assert response.headers["Content-Type"].startswith("application/json")
    if response.status_code >= 400:
        assert set(response.json()["error"]) >= {"code", "message"}


def test_an_event_for_a_deleted_clip_deletes_the_late_object(env, audio):
    api, app = env
    f = audio["note.ogg"]
    created = api.create(f)
    assert api("DELETE", f"/api/audio-clips/{created['clip']['id']}").status_code == 204
    with services_of(app).db.transaction() as session:  # the deletion record is done and gone
        session.execute(PendingDeletion.__table__.delete())
    assert put_upload(created["upload"], f.data).status_code == 200  # the URL cannot be revoked
    response = post_events(api, minio_body(s3_record(created["clip"]["storage_key"])))
    assert response.status_code == 200 and response.json()["outcomes"]["late_object"] == 1
    assert services_of(app).storage.head(created["clip"]["storage_key"]) is None
    assert events_of(app, created["clip"]["id"]) == ["clip.deleted"]


def test_an_event_for_an_expired_clip_deletes_the_late_object_now(env, audio):
    api, app = env
    f = audio["note.ogg"]
    created = api.create(f)
    with services_of(app).db.transaction() as session:
        session.execute(update(AudioClip).values(created_at=utcnow() - dt.timedelta(hours=2)))
    sweep(app, "--apply")
    assert clip_of(app, created["clip"]["id"]).status == "expired"
    put_upload(created["upload"], f.data)
    response = post_events(api, minio_body(s3_record(created["clip"]["storage_key"])))
    assert response.json()["outcomes"]["late_object"] == 1
    assert services_of(app).storage.head(created["clip"]["storage_key"]) is None
    with services_of(app).db.read() as session:  # still recorded: the URL may be used again
        assert session.scalar(select(func.count()).select_from(PendingDeletion)) == 1


def test_storage_events_are_in_the_openapi_document_when_on(env, client):
    off = client.get("/api/openapi.json").get_json()  # the session app has no token
    assert "/api/storage-events" not in off["paths"]
    assert "storageEventsToken" not in off["components"]["securitySchemes"]
    _, app = env
    spec = app.test_client().get("/api/openapi.json").get_json()
    operation = spec["paths"]["/api/storage-events"]["post"]
    assert operation["security"] == [{"storageEventsToken": []}]
    assert {"200", "401", "404", "503"} <= set(operation["responses"])
    assert spec["components"]["securitySchemes"]["storageEventsToken"]["scheme"] == "bearer"


def test_an_abandoned_clip_whose_url_is_dead_expires_without_a_deletion_record(env, audio):
    """The listing proved there is no object and no URL can bring one: nothing to delete later."""
    api, app = env
    services = services_of(app)
    dead_url = api.create(audio["note.ogg"])["clip"]["id"]
    live_url = api.create(audio["note.ogg"])["clip"]["id"]
    long_ago = utcnow() - dt.timedelta(hours=2)
    with services.db.transaction() as session:
        session.execute(update(AudioClip).values(created_at=long_ago))
        session.execute(update(AudioClip).where(AudioClip.id == uuid.UUID(dead_url)).values(upload_expires_at=long_ago))
    assert "stale pending clips expired: 2" in sweep(app, "--apply")
    assert pending_deletions(app, dead_url) == []
    assert len(pending_deletions(app, live_url)) == 1


def test_the_client_path_is_counted_too(env, audio):
    api, app = env
    before = counter(app, "advanced_notes_completions_total", path="client", outcome="ready")
    clip = api.upload(audio["note.ogg"])
    assert counter(app, "advanced_notes_completions_total", path="client", outcome="ready") == before + 1
    assert events_of(app, clip["id"]) == ["clip.ready"]
    # The sweeper then finds nothing to finish: the client's complete won.
    assert "uploaded pending clips finished: 0" in sweep(app, "--apply")


def test_a_url_re_signed_while_the_sweeper_expires_keeps_the_clip(env, audio):
    """The client re-signs its PUT URL and uploads after the sweeper read the clip as dead."""
    api, app = env
    services = services_of(app)
    f = audio["note.ogg"]
    created = api.create(f)
    clip_id = uuid.UUID(created["clip"]["id"])
    long_ago = utcnow() - dt.timedelta(hours=2)
    with services.db.transaction() as session:
        session.execute(
            update(AudioClip).where(AudioClip.id == clip_id).values(created_at=long_ago, upload_expires_at=long_ago)
        )

    class Racing(Sweeper):
        def _arrived_late(self, clip, listed_at, apply, report):
            verdict = super()._arrived_late(clip, listed_at, apply, report)  # dead URL: no HEAD
            fresh = services.uploads.refresh_upload("events-user", clip.id).upload
            assert fresh is not None
            assert requests.put(fresh.url, data=f.data, headers=fresh.headers, timeout=30).status_code == 200
            return verdict

    report = Racing(services.db, services.storage, services.settings).run(apply=True)
    assert report.expired == 0
    assert clip_of(app, created["clip"]["id"]).status == "pending"
    assert pending_deletions(app, clip_id) == [] and events_of(app, created["clip"]["id"]) == []
    assert "uploaded pending clips finished: 1 (ready 1" in sweep(app, "--apply")
    assert_ready_and_playable(api, app, created["clip"]["id"], f)


# -- poison records and bodies that are not events ---------------------


@pytest.mark.parametrize("tail", ["%00", "\ud800"], ids=["nul", "lone-surrogate"])
def test_a_poison_record_is_settled_counted_and_the_batch_goes_on(env, audio, tail):
    api, app = env
    f = audio["note.ogg"]
    created = api.create(f)
    assert put_upload(created["upload"], f.data).status_code == 200
    poison = s3_record(created["clip"]["storage_key"])
    poison["s3"]["object"]["key"] += tail  # a NUL once URL-decoded; a lone surrogate (JSON "\\ud800")
    before = counter(app, "advanced_notes_storage_events_total", source="webhook", outcome="unhandled")
    response = post_events(api, minio_body(poison, s3_record(created["clip"]["storage_key"])))
    assert response.status_code == 200, response.text  # a retry cannot help: settled, not 5xx
    outcomes = response.json()["outcomes"]
    assert outcomes["unhandled"] == 1 and outcomes["ready"] == 1, outcomes
    assert clip_of(app, created["clip"]["id"]).status == "ready"
    after = counter(app, "advanced_notes_storage_events_total", source="webhook", outcome="unhandled")
    assert after == before + 1


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"", {}),
        (b"", {"Content-Type": "application/json"}),
        (b"not json", {"Content-Type": "text/plain"}),
        (b"{}", {"Content-Type": "application/json"}),
        (b'{"hello": "world"}', {"Content-Type": "text/plain; charset=UTF-8"}),
        (b"[1, 2]", {"Content-Type": "application/json"}),
        (b'{"Type": "Notification", "Message": "{\\"nope\\": 1}"}', {"Content-Type": "text/plain"}),
    ],
    ids=["empty", "empty-json", "text", "empty-object", "other-json", "array", "sns-of-nothing"],
)
def test_a_body_that_is_not_an_event_is_400_so_the_sender_retries(env, body, headers):
    api, _ = env
    response = requests.post(
        api.base + "/api/storage-events",
        data=body,
        headers={"Authorization": f"Bearer {TOKEN}", **headers},
        timeout=30,
    )
    assert response.status_code == 400, (response.status_code, response.text)
    error = response.json()["error"]
    assert error["code"] == "bad_request" and "event" in error["message"], error


def test_an_sns_notification_sent_as_text_plain_is_read(env, audio):
    """SNS POSTs with Content-Type: text/plain; the S3 event is the Message string."""
    import json

    api, app = env
    f = audio["note.ogg"]
    created = api.create(f)
    assert put_upload(created["upload"], f.data).status_code == 200
    envelope = {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:bucket-events",
        "Message": json.dumps({"Records": [s3_record(created["clip"]["storage_key"])]}),
    }
    response = requests.post(
        api.base + "/api/storage-events",
        data=json.dumps(envelope),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "text/plain; charset=UTF-8"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json()["outcomes"]["ready"] == 1
    assert clip_of(app, created["clip"]["id"]).status == "ready"
    confirmation = {
        "Type": "SubscriptionConfirmation",
        "MessageId": str(uuid.uuid4()),
        "Token": "x" * 40,
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:bucket-events",
        "SubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription",
        "Message": "You have chosen to subscribe to the topic.",
    }
    response = requests.post(
        api.base + "/api/storage-events",
        data=json.dumps(confirmation),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "text/plain; charset=UTF-8"},
        timeout=30,
    )
    assert response.status_code == 200, response.text  # as before: answered, nothing to settle


def test_a_key_longer_than_the_column_is_not_retried_for_ever(env, database_url):
    """A clip-shaped key of 1,100+ characters: PostgreSQL refuses it (DataError, value too
    long for varchar(1024)) when the late object's deletion is recorded. That error was
    counted failed, a 503 on every delivery; it is a poison record, settled as unhandled.
    SQLite does not enforce the length: the record settles as a late object there."""
    api, app = env
    folder = f"{services_of(app).settings.key_prefix}/audio-clips/"
    key = f"{folder}{uuid.uuid4()}.{'m' * 1100}"
    response = post_events(api, minio_body(s3_record(key)))
    assert response.status_code == 200, response.text
    outcomes = response.json()["outcomes"]
    expected = "unhandled" if database_url.startswith("postgresql") else "late_object"
    assert outcomes[expected] == 1 and outcomes["failed"] == 0, outcomes


def test_an_eventbridge_object_created_event_finishes_an_upload(env, audio):
    """EventBridge's S3 shape (ev-events.html): detail.object.key is not URL-encoded."""
    api, app = env
    f = audio["note.ogg"]
    created = api.create(f)
    assert put_upload(created["upload"], f.data).status_code == 200
    event = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-11-25T00:00:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{BUCKET}"],
        "detail": {
            "version": "0",
            "bucket": {"name": BUCKET},
            "object": {"key": created["clip"]["storage_key"], "size": f.size, "etag": "0" * 32},
            "reason": "PutObject",
        },
    }
    response = post_events(api, event)
    assert response.status_code == 200, response.text
    assert response.json()["outcomes"]["ready"] == 1
    assert_ready_and_playable(api, app, created["clip"]["id"], f)

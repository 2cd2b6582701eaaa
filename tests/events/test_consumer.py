"""The SQS consumer (``events consume``) against moto's server.

moto's server delivers the bucket's notifications itself: the bucket is configured with
``put_bucket_notification_configuration`` to an SQS queue of the same server, the
client PUTs with the presigned URL, and the S3 event (and, first, the ``s3:TestEvent``)
lands in the queue; nothing is hand-written into the queue except where a test says so
(the SNS envelope). Consumers run as real processes (``flask --app wsgi events consume``)
where processes matter: two at once, SIGKILL, SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from sqlalchemy import func, select

from advanced_notes.adapters.models import AudioClip, WebhookDelivery
from advanced_notes.api.context import services_of
from advanced_notes.app import create_app
from testkit.live import Api, put_upload
from testkit.servers import LiveServer
from tests.helpers import (
    ACCESS_KEY,
    BUCKET,
    REGION,
    SECRET_KEY,
    WEBHOOK_SECRET,
    Receiver,
    assert_ready_and_playable,
    clip_of,
    counter,
    run_cli,
)

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]


def _client(service: str, endpoint: str):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


@pytest.fixture
def queue(s3_endpoint):
    """A fresh SQS queue receiving the test bucket's ObjectCreated events; yields its URL."""
    sqs, s3 = _client("sqs", s3_endpoint), _client("s3", s3_endpoint)
    url = sqs.create_queue(QueueName=f"events-{uuid.uuid4().hex[:8]}", Attributes={"VisibilityTimeout": "3"})[
        "QueueUrl"
    ]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET,
        NotificationConfiguration={"QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]},
    )
    yield url
    s3.put_bucket_notification_configuration(Bucket=BUCKET, NotificationConfiguration={})
    sqs.delete_queue(QueueUrl=url)


@pytest.fixture
def env(base_config, make_token, queue):
    config = {
        **base_config,
        "S3_KEY_PREFIX": f"sqs-{uuid.uuid4().hex[:8]}",
        "S3_EVENTS_QUEUE_URL": queue,
        "MAX_PENDING_UPLOADS_PER_OWNER": "0",  # hundreds of uploads nobody completes
    }
    app = create_app(config)
    services_of(app).storage.ensure_bucket()
    server = LiveServer(app)
    yield Api(server.url, make_token("sqs-user")), app, config
    server.stop()


def in_queue(endpoint: str, url: str) -> int:
    """Messages still in the queue, visible or in flight."""
    attrs = _client("sqs", endpoint).get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def consume(app) -> str:
    result = run_cli(app, ["events", "consume", "--once"])
    assert result.exit_code == 0, result.output
    return result.output


def upload_without_complete(api: Api, f, count: int = 1) -> list[dict[str, Any]]:
    def one(_: int) -> dict[str, Any]:
        created = api.create(f)
        assert put_upload(created["upload"], f.data).status_code == 200
        return created["clip"]

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


def consumer_process(config: dict[str, Any], *args: str) -> subprocess.Popen:
    env = {**os.environ, **{k: str(v) for k, v in config.items()}, "LOG_LEVEL": "WARNING"}
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "events", "consume", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def ready_count(app, clips: list[dict[str, Any]]) -> int:
    with services_of(app).db.read() as session:
        return (
            session.scalar(
                select(func.count()).where(
                    AudioClip.id.in_([uuid.UUID(c["id"]) for c in clips]), AudioClip.status == "ready"
                )
            )
            or 0
        )


def test_a_put_with_no_complete_is_finished_by_the_consumer(env, audio, s3_endpoint, queue):
    api, app, _ = env
    f = audio["note.m4a"]
    (clip,) = upload_without_complete(api, f)
    assert clip_of(app, clip["id"]).status == "pending"
    before = counter(app, "advanced_notes_completions_total", path="event", outcome="ready")
    output = consume(app)
    # moto's server itself delivered s3:TestEvent (configuration saved) and the PUT's record.
    assert "records: ready 1, test_event 1" in output, output
    assert "deleted 2" in output
    assert_ready_and_playable(api, app, clip["id"], f)
    assert counter(app, "advanced_notes_completions_total", path="event", outcome="ready") == before + 1
    assert in_queue(s3_endpoint, queue) == 0


def test_the_consumer_rejects_an_impostor_and_deletes_it(env, audio):
    api, app, _ = env
    f = audio["impostor-html.m4a"]
    created = api("POST", "/api/audio-clips", json={"mime_type": "audio/mp4", "bytes": f.size}).json()
    put_upload(created["upload"], f.data)
    assert "rejected 1" in consume(app)
    assert clip_of(app, created["clip"]["id"]).status == "rejected"
    assert services_of(app).storage.head(created["clip"]["storage_key"]) is None


def test_sns_envelopes_and_redelivered_messages(env, audio, s3_endpoint, queue):
    api, app, _ = env
    consume(app)  # the test event
    f = audio["note.ogg"]
    (clip,) = upload_without_complete(api, f)
    sqs = _client("sqs", s3_endpoint)
    # Take moto's message out of the queue and send it back twice: once as it was
    # (at-least-once delivery), once wrapped as SNS delivers to a subscribed queue.
    (message,) = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    envelope = {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:bucket-events",
        "Subject": "Amazon S3 Notification",
        "Message": message["Body"],
        "Timestamp": "2026-11-25T00:00:00.000Z",
        "SignatureVersion": "1",
    }
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(envelope))
    sqs.send_message(QueueUrl=queue, MessageBody=message["Body"])
    sqs.send_message(QueueUrl=queue, MessageBody="not json at all")
    output = consume(app)
    assert "ready 1, duplicate 1" in output and "malformed 1" in output, output
    assert clip_of(app, clip["id"]).status == "ready"
    assert in_queue(s3_endpoint, queue) == 0  # a malformed message is settled (dropped), not retried forever


def test_an_unreachable_store_keeps_the_message(env, audio, s3_endpoint, queue, base_config):
    api, app, config = env
    consume(app)
    (clip,) = upload_without_complete(api, audio["note.ogg"])
    broken = create_app({**config, "S3_ENDPOINT_URL": "http://127.0.0.1:9", "S3_CONNECT_TIMEOUT_SECONDS": "1"})
    # The queue is moto's; only the bucket is unreachable for this app.
    output = run_cli(broken, ["events", "consume", "--once"]).output
    assert "deleted 0, kept for redelivery 1" in output and "failed 1" in output, output
    assert clip_of(app, clip["id"]).status == "pending"
    time.sleep(3.5)  # the visibility timeout: the message comes back
    assert "ready 1" in consume(app)
    assert in_queue(s3_endpoint, queue) == 0


def test_two_consumers_over_one_queue_with_200_uploads(env, audio, s3_endpoint, queue):
    api, app, config = env
    receiver = Receiver(secret=WEBHOOK_SECRET)
    try:
        config = {**config, "WEBHOOK_URLS": receiver.url, "WEBHOOK_SECRET": WEBHOOK_SECRET}
        clips = upload_without_complete(api, audio["note.ogg"], 200)
        consumers = [consumer_process(config, "--once") for _ in range(2)]
        outputs = [p.communicate(timeout=300)[0] for p in consumers]
        assert [p.returncode for p in consumers] == [0, 0], outputs
        assert all("messages received" in o for o in outputs), outputs
        received = [int(o.split("messages received ")[1].split(",")[0]) for o in outputs]
        assert sum(received) >= 201 and min(received) > 0, outputs  # both took part
        assert ready_count(app, clips) == 200
        assert in_queue(s3_endpoint, queue) == 0
        with services_of(app).db.read() as session:
            ready_events = [
                (row.clip_id, row.event_type)
                for row in session.execute(select(WebhookDelivery.clip_id, WebhookDelivery.event_type))
            ]
        assert len(ready_events) == 200 and len({c for c, _ in ready_events}) == 200  # one transition each
        assert {t for _, t in ready_events} == {"clip.ready"}
        ids = [v["id"] for v in receiver.verified]
        assert len(ids) == 200 and len(set(ids)) == 200  # each event delivered once, one webhook-id each
    finally:
        receiver.stop()


def test_sigkill_mid_batch_then_restart_loses_nothing(env, audio, s3_endpoint, queue):
    api, app, config = env
    clips = upload_without_complete(api, audio["note.mp3"], 80)
    process = consumer_process(config, "--wait", "1")
    deadline = time.monotonic() + 120
    while ready_count(app, clips) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    done_at_kill = ready_count(app, clips)
    assert 5 <= done_at_kill < 80, done_at_kill  # killed in the middle
    time.sleep(3.5)  # messages of the killed batch come back after the visibility timeout
    restart = consumer_process(config, "--once")
    output = restart.communicate(timeout=300)[0]
    assert restart.returncode == 0, output
    assert ready_count(app, clips) == 80
    assert in_queue(s3_endpoint, queue) == 0


def test_sigterm_finishes_the_batch_and_exits_cleanly(env, audio, s3_endpoint, queue):
    api, app, config = env
    clips = upload_without_complete(api, audio["note.ogg"], 40)
    process = consumer_process(config, "--wait", "1")
    deadline = time.monotonic() + 120
    while ready_count(app, clips) < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 0, output
    assert "messages received" in output
    received = int(output.split("messages received ")[1].split(",")[0])
    deleted = int(output.split("deleted ")[1].split(",")[0])
    assert received == deleted  # the batch in hand was finished and its messages deleted
    assert ready_count(app, clips) >= received - 1  # (the test event is one of the messages)
    assert "ready" in consume(app)  # the rest is still in the queue for the next consumer
    assert ready_count(app, clips) == 40
    assert in_queue(s3_endpoint, queue) == 0


def test_storage_check_reports_the_bucket_notifications(env, s3_endpoint, queue, base_config):
    _, app, _ = env
    output = run_cli(app, ["storage", "check"]).output
    arn = _client("sqs", s3_endpoint).get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    folder = f"{services_of(app).settings.key_prefix}/audio-clips/"
    assert f"OK    bucket notifications: ObjectCreated events for {folder} go to" in output, output
    assert arn["Attributes"]["QueueArn"] in output
    _client("s3", s3_endpoint).put_bucket_notification_configuration(Bucket=BUCKET, NotificationConfiguration={})
    output = run_cli(app, ["storage", "check"]).output
    # S3_EVENTS_QUEUE_URL is set but the bucket sends nothing: a warning, with the fallback.
    assert f"WARN  bucket notifications: no ObjectCreated notification covers {folder}" in output, output
    assert "finished by the sweeper once older than 120 s" in output


def test_a_poison_message_is_settled_and_the_batch_goes_on(env, audio, s3_endpoint, queue):
    """A record whose key holds a lone surrogate (or a NUL, on PostgreSQL) failed the whole
    consumer on every redelivery; it is now counted unhandled and its message deleted."""
    api, app, _ = env
    consume(app)  # the test event
    (first, second) = upload_without_complete(api, audio["note.ogg"], 2)
    sqs = _client("sqs", s3_endpoint)
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    for message in messages:
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    bodies = {json.loads(m["Body"])["Records"][0]["s3"]["object"]["key"]: m["Body"] for m in messages}
    assert len(bodies) == 2
    poisoned = json.loads(next(iter(bodies.values())))
    poisoned["Records"][0]["s3"]["object"]["key"] += "\ud800"
    # The poison first, then the good messages, all in one batch.
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(poisoned))
    for body in bodies.values():
        sqs.send_message(QueueUrl=queue, MessageBody=body)
    before = counter(app, "advanced_notes_storage_events_total", source="sqs", outcome="unhandled")
    output = consume(app)  # exits 0
    assert "unhandled 1" in output and "ready 2" in output and "deleted 3" in output, output
    assert ready_count(app, [first, second]) == 2
    assert counter(app, "advanced_notes_storage_events_total", source="sqs", outcome="unhandled") == before + 1
    time.sleep(3.5)  # past the visibility timeout: nothing comes back
    assert in_queue(s3_endpoint, queue) == 0


def test_a_message_that_keeps_failing_is_given_up_after_max_receives(env, audio, s3_endpoint, queue):
    api, app, config = env
    consume(app)
    (clip,) = upload_without_complete(api, audio["note.ogg"])
    broken = create_app(
        {
            **config,
            "S3_ENDPOINT_URL": "http://127.0.0.1:9",
            "S3_CONNECT_TIMEOUT_SECONDS": "1",
            "S3_EVENTS_MAX_RECEIVES": "2",
        }
    )
    first = run_cli(broken, ["events", "consume", "--once"])
    assert first.exit_code == 0 and "kept for redelivery 1" in first.output, first.output
    time.sleep(3.5)  # the visibility timeout: the second receive
    second = run_cli(broken, ["events", "consume", "--once"])
    assert second.exit_code == 0 and "given up 1" in second.output, second.output
    assert in_queue(s3_endpoint, queue) == 0
    assert clip_of(app, clip["id"]).status == "pending"  # left to the sweeper (SWEEP_COMPLETE_GRACE_SECONDS)

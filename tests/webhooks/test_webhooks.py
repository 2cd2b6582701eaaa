"""Outbound webhooks against real HTTP receivers on loopback.

Each receiver verifies every request with the ``standardwebhooks`` library, as a
consumer of these events would; one fails its first tries. Time passing (backoff,
giving up) is passed to the dispatcher as ``now``, not waited for.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pytest

from advanced_notes.api.context import services_of
from advanced_notes.app import create_app
from advanced_notes.domain.clock import utcnow
from advanced_notes.services.webhooks import WebhookDispatcher
from testkit.live import put_upload
from tests.helpers import Receiver, counter, make_env, run_cli

pytestmark = pytest.mark.e2e


@pytest.fixture
def receivers():
    made: list[Receiver] = []

    def make(**kw: Any) -> Receiver:
        made.append(Receiver(**kw))
        return made[-1]

    yield make
    for r in made:
        r.stop()


def deliver(app, *args: str) -> str:
    result = run_cli(app, ["webhooks", "deliver", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_a_ready_clip_is_announced_signed_to_every_receiver(base_config, make_token, receivers, audio):
    one, two = receivers(), receivers()
    api, app, server = make_env(base_config, make_token, [one.url, two.url])
    try:
        f = audio["note.ogg"]
        clip = api.upload(f)  # the client completes: the API answers without waiting for receivers
        assert one.requests == [] and two.requests == []
        assert "delivered 2, failed 0" in deliver(app)
        for receiver in (one, two):
            (got,) = receiver.verified
            assert got["payload"]["type"] == "clip.ready"
            data = got["payload"]["data"]["clip"]
            assert data["id"] == clip["id"] and data["status"] == "ready"
            assert data["measured_duration_ms"] == clip["measured_duration_ms"]
            assert not any("url" in k for k in data)  # the clip minus URLs
            assert data == {k: clip[k] for k in data}  # as the API shows it
            headers = receiver.requests[0]["headers"]
            assert headers["webhook-id"].startswith("msg_") and headers["webhook-signature"].startswith("v1,")
        assert one.verified[0]["id"] == two.verified[0]["id"]  # one event, one webhook-id
        assert "delivered 0, failed 0" in deliver(app)  # nothing twice
        # deleting announces clip.deleted
        assert api("DELETE", f"/api/audio-clips/{clip['id']}").status_code == 204
        deliver(app)
        assert [v["payload"]["type"] for v in one.verified] == ["clip.ready", "clip.deleted"]
    finally:
        server.stop()


def test_a_failing_receiver_gets_the_same_event_again_with_backoff(base_config, make_token, receivers, audio):
    flaky = receivers(fail_first=2)
    api, app, server = make_env(base_config, make_token, [flaky.url])
    try:
        clip = api.upload(audio["note.mp3"])
        services = services_of(app)
        dispatcher = WebhookDispatcher(services.db, services.settings)
        now = utcnow()
        assert dispatcher.deliver_due(now).failed == 1
        assert dispatcher.deliver_due(now).failed == 0  # backing off: not due yet
        assert counter(app, "advanced_notes_webhook_deliveries", state="failing") == 1
        listed = run_cli(app, ["webhooks", "list", "--failed"])
        assert "state=pending attempts=1 last=HTTP 503" in listed.output
        assert dispatcher.deliver_due(now + dt.timedelta(seconds=11)).failed == 1  # 10 s backoff
        assert dispatcher.deliver_due(now + dt.timedelta(seconds=11 + 21)).delivered == 1  # then 20 s
        assert len(flaky.requests) == 3
        assert len({r["headers"]["webhook-id"] for r in flaky.requests}) == 1  # the same id every time
        (got,) = flaky.verified
        assert got["payload"]["data"]["clip"]["id"] == clip["id"]
        assert counter(app, "advanced_notes_webhook_deliveries", state="pending") == 0
    finally:
        server.stop()


def test_a_dead_receiver_is_given_up_and_stays_visible(base_config, make_token, audio, receivers):
    dead = receivers()
    dead.stop()  # nothing listens on its port any more
    api, app, server = make_env(base_config, make_token, [dead.url], WEBHOOK_GIVE_UP_SECONDS="3600")
    try:
        api.upload(audio["note.wav"])
        services = services_of(app)
        dispatcher = WebhookDispatcher(services.db, services.settings)
        now = utcnow()
        assert dispatcher.deliver_due(now).failed == 1
        assert dispatcher.deliver_due(now + dt.timedelta(hours=2)).given_up == 1
        assert dispatcher.deliver_due(now + dt.timedelta(days=9)).given_up == 0  # never retried after
        listed = run_cli(app, ["webhooks", "list", "--failed"])
        assert listed.exit_code == 1 and "state=given up attempts=2" in listed.output
        assert "ConnectionError" in listed.output
        assert counter(app, "advanced_notes_webhook_deliveries", state="given_up") == 1
    finally:
        server.stop()


def test_a_slow_receiver_times_out_and_is_retried(base_config, make_token, audio):
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts connections, never answers
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/hooks"
    api, app, server = make_env(base_config, make_token, [url], WEBHOOK_TIMEOUT_SECONDS="1")
    try:
        api.upload(audio["note.ogg"])
        services = services_of(app)
        result = WebhookDispatcher(services.db, services.settings).deliver_due()
        assert result.failed == 1
        assert "Timeout" in run_cli(app, ["webhooks", "list", "--failed"]).output
    finally:
        server.stop()
        listener.close()


def test_rejected_and_expired_clips_are_announced(base_config, make_token, receivers, audio):
    receiver = receivers()
    api, app, server = make_env(base_config, make_token, [receiver.url], UPLOAD_RESERVATION_SECONDS="3600")
    try:
        f = audio["impostor-html.m4a"]
        created = api("POST", "/api/audio-clips", json={"mime_type": "audio/mp4", "bytes": f.size}).json()
        put_upload(created["upload"], f.data)
        assert api("POST", f"/api/audio-clips/{created['clip']['id']}/complete").status_code == 422
        stale = api.create(audio["note.ogg"])["clip"]
        from sqlalchemy import update

        from advanced_notes.adapters.models import AudioClip

        with services_of(app).db.transaction() as session:
            session.execute(
                update(AudioClip)
                .where(AudioClip.id == uuid.UUID(stale["id"]))
                .values(created_at=utcnow() - dt.timedelta(hours=2))
            )
        output = run_cli(app, ["sweep", "--apply"]).output  # the sweeper delivers too
        assert "webhooks delivered: 2" in output, output
        by_type = {v["payload"]["type"]: v["payload"]["data"] for v in receiver.verified}
        assert by_type["clip.rejected"]["clip"]["status"] == "rejected"
        assert by_type["clip.rejected"]["rejection"]["reason"] == "not_audio"
        assert by_type["clip.expired"]["clip"]["id"] == stale["id"]
        assert by_type["clip.expired"]["clip"]["status"] == "expired"
        assert json.dumps(by_type)  # plain JSON all the way
    finally:
        server.stop()


def test_webhook_settings_are_checked(base_config):
    from advanced_notes.settings import ConfigError

    with pytest.raises(ConfigError) as error:
        create_app({**base_config, "WEBHOOK_URLS": "http://127.0.0.1:1/x ftp://nope"})
    assert "WEBHOOK_URLS" in str(error.value) and "WEBHOOK_SECRET" in str(error.value)
    with pytest.raises(ConfigError, match="WEBHOOK_SECRET"):
        create_app({**base_config, "WEBHOOK_URLS": "http://127.0.0.1:1/x", "WEBHOOK_SECRET": "whsec_short"})

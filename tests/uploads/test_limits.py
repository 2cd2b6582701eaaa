"""Quotas counted at presign time, per-owner request rate limits, request body limit."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from advanced_notes.app import create_app
from testkit.live import Api, put_upload
from testkit.servers import LiveServer
from tests.helpers import assert_error


@pytest.fixture
def app_with(base_config):
    def make(**overrides: str):
        return create_app({**base_config, **overrides})

    return make


def create(client, headers, size=100):
    return client.post("/api/audio-clips", json={"mime_type": "audio/ogg", "bytes": size}, headers=headers)


def test_pending_uploads_quota(app_with, make_token, audio):
    client = app_with(MAX_PENDING_UPLOADS_PER_OWNER="3").test_client()
    alice = {"Authorization": f"Bearer {make_token('quota-alice')}"}
    created = [create(client, alice, audio["note.ogg"].size).get_json() for _ in range(3)]
    error = assert_error(create(client, alice), 429, "quota_exceeded")
    assert error["details"] == {"quota": "pending_uploads", "limit": 3, "current": 3}
    assert create(client, {"Authorization": f"Bearer {make_token('quota-bob')}"}).status_code == 201
    # Completing one frees a place.
    put_upload(created[0]["upload"], audio["note.ogg"].data)
    assert client.post(f"/api/audio-clips/{created[0]['clip']['id']}/complete", headers=alice).status_code == 200
    assert create(client, alice).status_code == 201


def test_pending_quota_is_exact_under_concurrent_creates(app_with, make_token):
    app = app_with(MAX_PENDING_UPLOADS_PER_OWNER="4")
    server = LiveServer(app)
    try:
        api = Api(server.url, make_token(f"racer-{uuid.uuid4().hex[:6]}"))
        with ThreadPoolExecutor(12) as pool:
            answers = list(
                pool.map(
                    lambda _: api("POST", "/api/audio-clips", json={"mime_type": "audio/ogg", "bytes": 10}), range(12)
                )
            )
    finally:
        server.stop()
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] * 4 + [429] * 8, [a.text for a in answers if a.status_code not in (201, 429)]


def test_owner_bytes_quota(app_with, make_token):
    client = app_with(OWNER_QUOTA_BYTES="100000").test_client()
    headers = {"Authorization": f"Bearer {make_token('bytes-user')}"}
    assert create(client, headers, 60000).status_code == 201
    error = assert_error(create(client, headers, 50000), 429, "quota_exceeded")
    assert error["details"] == {"quota": "owner_bytes", "limit": 100000, "current": 60000, "requested": 50000}
    assert create(client, headers, 40000).status_code == 201


def test_idempotent_repeats_do_not_count_against_the_quota(app_with, make_token):
    client = app_with(MAX_PENDING_UPLOADS_PER_OWNER="1").test_client()
    headers = {"Authorization": f"Bearer {make_token('repeat-user')}", "Idempotency-Key": "only-one"}
    for _ in range(3):
        assert create(client, headers).status_code == 201


def test_two_apps_enforce_and_document_their_own_limits(app_with, make_token):
    """Settings-bound schemas are built per app: two apps in one process share no limit."""
    from marshmallow import class_registry
    from marshmallow.exceptions import RegistryError

    small = app_with(MAX_UPLOAD_BYTES="1000", MAX_DURATION_MS="2000", ALLOWED_MIME_TYPES="audio/ogg").test_client()
    large = app_with(MAX_UPLOAD_BYTES="5000", ALLOWED_MIME_TYPES="audio/ogg, audio/mpeg").test_client()
    # Both apps exist before either is asked: nothing read at request time, nothing patched.
    specs = {name: c.get("/api/openapi.json").get_json() for name, c in (("small", small), ("large", large))}
    expected = {"small": (1000, 2000, ["audio/ogg"]), "large": (5000, 10_800_000, ["audio/ogg", "audio/mpeg"])}
    for name, (max_bytes, max_duration, allowed) in expected.items():
        components = specs[name]["components"]["schemas"]
        # Stable names: one CreateClip per document, no "CreateClip1" from a shared registry.
        assert sorted(components) == sorted(specs["small"]["components"]["schemas"])
        assert [n for n in components if n.startswith("CreateClip")] == ["CreateClip"]
        create_body = specs[name]["paths"]["/api/audio-clips"]["post"]["requestBody"]["content"]["application/json"]
        assert create_body["schema"] == {"$ref": "#/components/schemas/CreateClip"}
        properties = components["CreateClip"]["properties"]
        assert (properties["bytes"]["minimum"], properties["bytes"]["maximum"]) == (1, max_bytes), name
        assert (properties["duration_ms"]["minimum"], properties["duration_ms"]["maximum"]) == (0, max_duration)
        assert properties["mime_type"]["enum"] == allowed, name
    with pytest.raises(RegistryError):  # per-app classes stay out of marshmallow's global registry
        class_registry.get_class("CreateClipSchema")

    alice = {"Authorization": f"Bearer {make_token('two-apps')}"}

    def post(client, **body):
        return client.post("/api/audio-clips", json={"mime_type": "audio/ogg", "bytes": 3000, **body}, headers=alice)

    assert assert_error(post(small), 422, "validation_error")["details"] == {"bytes": ["Must be between 1 and 1000."]}
    assert post(large).status_code == 201
    assert post(small, bytes=1000).status_code == 201
    assert_error(post(large, bytes=5001), 422, "validation_error")
    error = assert_error(post(small, bytes=10, mime_type="audio/mpeg"), 422, "validation_error")
    assert error["details"] == {"mime_type": ["Must be one of: audio/ogg."]}
    # The allow-list applies to the normalized type.
    accepted = post(large, mime_type="Audio/MPEG; bitrate=128").get_json()
    assert accepted["clip"]["mime_type"] == "audio/mpeg"
    error = assert_error(post(small, bytes=10, duration_ms=2001), 422, "validation_error")
    assert error["details"] == {"duration_ms": ["Must be between 0 and 2000."]}
    assert post(large, duration_ms=2001).status_code == 201


def test_rate_limit_per_owner(app_with, make_token):
    client = app_with(RATELIMIT_DEFAULT="5 per minute").test_client()
    alice = {"Authorization": f"Bearer {make_token('rl-alice')}"}
    for _ in range(5):
        assert client.get("/api/audio-clips", headers=alice).status_code == 200
    response = client.get("/api/audio-clips", headers=alice)
    assert_error(response, 429, "too_many_requests")
    assert int(response.headers["Retry-After"]) > 0
    assert create(client, alice).status_code == 429  # one budget across the API
    assert (
        client.get("/api/audio-clips", headers={"Authorization": f"Bearer {make_token('rl-bob')}"}).status_code == 200
    )
    assert client.get("/healthz").status_code == 200 and client.get("/api/openapi.json").status_code == 200


def test_bad_tokens_are_limited_by_address_and_preflights_not_at_all(app_with, caplog):
    client = app_with(RATELIMIT_DEFAULT="3 per minute").test_client()
    statuses = [client.options("/api/audio-clips").status_code for _ in range(5)]  # exempt
    statuses += [client.get("/api/audio-clips", headers={"Authorization": "Bearer bad"}).status_code for _ in range(3)]
    assert statuses[-1] == 401 and all(s < 500 for s in statuses)
    assert client.get("/api/audio-clips", headers={"Authorization": "Bearer bad"}).status_code == 429
    assert not [r for r in caplog.records if r.levelno >= 40], [r.getMessage() for r in caplog.records]


def test_rate_limit_is_shared_through_redis(app_with, make_token):
    redis_url = "redis://127.0.0.1:6379/0"
    try:
        import redis

        redis.Redis.from_url(redis_url, socket_connect_timeout=1).ping()
    except Exception:
        pytest.fail("Redis is not running on 127.0.0.1:6379 (.ci/run starts it)")
    # Two app instances stand for two gunicorn workers sharing one Redis.
    workers = [
        app_with(RATELIMIT_DEFAULT="6 per minute", RATELIMIT_STORAGE_URI=redis_url).test_client() for _ in range(2)
    ]
    headers = {"Authorization": f"Bearer {make_token(f'shared-{uuid.uuid4().hex}')}"}
    statuses = [workers[i % 2].get("/api/audio-clips", headers=headers).status_code for i in range(8)]
    assert statuses == [200] * 6 + [429] * 2


def test_bad_rate_limit_setting_is_a_startup_error(base_config):
    from advanced_notes.settings import ConfigError

    with pytest.raises(ConfigError, match="RATELIMIT_DEFAULT"):
        create_app({**base_config, "RATELIMIT_DEFAULT": "lots"})


def test_request_body_limit(client, auth):
    response = client.post(
        "/api/audio-clips", data=b"{" + b" " * 70000 + b"}", content_type="application/json", headers=auth
    )
    assert_error(response, 413, "payload_too_large")


def test_api_cors_for_configured_origins(app_with):
    client = app_with(CORS_ORIGINS="https://notes.example.com").test_client()
    preflight = client.options(
        "/api/audio-clips",
        headers={
            "Origin": "https://notes.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://notes.example.com"
    allowed = {h.strip().lower() for h in preflight.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "idempotency-key"} <= allowed
    other = client.options(
        "/api/audio-clips", headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"}
    )
    assert "Access-Control-Allow-Origin" not in other.headers
    plain = (
        app_with()
        .test_client()
        .options(
            "/api/audio-clips", headers={"Origin": "https://notes.example.com", "Access-Control-Request-Method": "POST"}
        )
    )
    assert "Access-Control-Allow-Origin" not in plain.headers  # no CORS_ORIGINS: no cross-origin browser calls


def test_one_counter_operation_per_request_and_headers_from_it(app_with, make_token):
    """Each request is one storage increment; the headers come from its result, not more reads."""
    redis_url = "redis://127.0.0.1:6379/0"
    app = app_with(RATELIMIT_DEFAULT="5 per minute", RATELIMIT_STORAGE_URI=redis_url)
    limiter = app.extensions["advanced_notes_rate_limiter"]
    calls: list[str] = []
    storage = limiter.storage
    for name in ("incr", "get", "get_expiry"):
        original = getattr(storage, name)

        def spy(*args, _name=name, _original=original, **kwargs):
            calls.append(_name)
            return _original(*args, **kwargs)

        setattr(storage, name, spy)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {make_token(f'counted-{uuid.uuid4().hex}')}"}
    answers = [client.get("/api/audio-clips", headers=headers) for _ in range(6)]
    assert calls == ["incr"] * 6
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["4", "3", "2", "1", "0", "0"]
    resets = {int(a.headers["X-RateLimit-Reset"]) for a in answers}
    assert len(resets) == 1 and resets.pop() % 60 == 0  # the clock-aligned window's end
    assert 1 <= int(answers[-1].headers["Retry-After"]) <= 60


def test_a_dead_rate_limit_store_does_not_fail_requests(app_with, make_token, caplog):
    client = app_with(RATELIMIT_DEFAULT="3 per minute", RATELIMIT_STORAGE_URI="redis://127.0.0.1:9/0").test_client()
    headers = {"Authorization": f"Bearer {make_token('dead-redis')}"}
    statuses = [client.get("/api/audio-clips", headers=headers).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]  # counted in process memory meanwhile
    assert any("rate-limit storage failed" in r.getMessage() for r in caplog.records)


# -- failed authentication attempts ------------------------------------

EVENTS_TOKEN = "storage-events-token-" + "z" * 20


def test_wrong_storage_event_tokens_are_limited_per_address(app_with):
    """40 wrong tokens in a row were 40 x 401: a token could be guessed at full speed."""
    app = app_with(STORAGE_EVENTS_TOKEN=EVENTS_TOKEN, RATELIMIT_AUTH_FAILURES="20 per minute")
    attacker = app.test_client()
    attacker.environ_base["REMOTE_ADDR"] = "198.51.100.7"
    body = {"Event": "s3:TestEvent"}
    statuses = [
        attacker.post("/api/storage-events", json=body, headers={"Authorization": f"Bearer wrong-{i}"}).status_code
        for i in range(40)
    ]
    assert statuses == [401] * 20 + [429] * 20, statuses
    refused = attacker.post("/api/storage-events", json=body, headers={"Authorization": f"Bearer {EVENTS_TOKEN}"})
    error = assert_error(refused, 429, "too_many_requests")  # even the right token, until the window ends
    assert "failed authentication" in error["message"]
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    store = app.test_client()
    store.environ_base["REMOTE_ADDR"] = "203.0.113.9"  # another address keeps its budget
    answer = store.post("/api/storage-events", json=body, headers={"Authorization": f"Bearer {EVENTS_TOKEN}"})
    assert answer.status_code == 200, answer.get_data(as_text=True)


def test_garbage_bearer_tokens_on_the_api_are_limited_per_address(app_with, make_token):
    """The API counted a garbage token against the address's request budget only (300 a
    minute by default): failed attempts now have their own, smaller budget."""
    app = app_with(RATELIMIT_DEFAULT="1000 per minute", RATELIMIT_AUTH_FAILURES="20 per minute")
    attacker = app.test_client()
    attacker.environ_base["REMOTE_ADDR"] = "198.51.100.8"
    statuses = [
        attacker.get("/api/audio-clips", headers={"Authorization": f"Bearer garbage-{i}"}).status_code
        for i in range(40)
    ]
    assert statuses == [401] * 20 + [429] * 20, statuses
    assert int(attacker.get("/api/audio-clips").headers["Retry-After"]) > 0
    assert attacker.options("/api/audio-clips").status_code < 400  # preflights stay exempt
    user = app.test_client()
    user.environ_base["REMOTE_ADDR"] = "203.0.113.10"
    ok = user.get("/api/audio-clips", headers={"Authorization": f"Bearer {make_token('auth-fail-user')}"})
    assert ok.status_code == 200

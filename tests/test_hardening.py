"""Issue 13: what an audit of the landed service found, each with the reproduction that showed it.

Items 2-3 (hostile audio) are in test_hostile_audio.py; the rest are here, one section each.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from urllib.parse import quote, urlencode

import jwt
import pytest
import requests
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from advanced_notes.api.auth import mint_token
from advanced_notes.api.context import services_of
from advanced_notes.api.schemas import MAX_NOTE_ID_LENGTH
from advanced_notes.app import create_app
from advanced_notes.domain.errors import RETRY_AFTER_SECONDS, NotFound
from advanced_notes.services.deletions import CLOCK_SKEW
from advanced_notes.settings import DEV_JWT_SECRET, ConfigError, is_local_stack, load_settings

from .conftest import JWT_SECRET, put_upload
from .helpers import assert_error, pending_deletions
from .test_auth import RSA_KEY, _claims, jwks_url  # noqa: F401 - jwks_url is a fixture

# -- item 4: a key of another type than the token's alg -----------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _token_with_header(header: dict, claims: dict | None = None, signature: bytes = b"garbage") -> str:
    body = json.dumps(claims or {"sub": "victim", "exp": 4102444800}).encode()
    return f"{_b64(json.dumps(header).encode())}.{_b64(body)}.{_b64(signature)}"


@pytest.fixture
def jwks_app(base_config, jwks_url):  # noqa: F811 - the imported fixture
    settings = {"AUTH_JWKS_URL": jwks_url, "AUTH_JWT_SECRET": None, "AUTH_JWT_AUDIENCE": "notes-api"}
    return create_app({**base_config, **settings, "RATELIMIT_DEFAULT": "3/minute"})


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "ES256", "kid": "rsa-1"},  # the audit's reproduction: PyJWT raised TypeError
        {"alg": "RS256", "kid": "ec-1"},
        {"alg": "ES256", "kid": ["rsa-1"]},
        {"alg": "RS256", "kid": None},
        {"alg": ["RS256"], "kid": "rsa-1"},
    ],
    ids=["es256-rsa-kid", "rs256-ec-kid", "kid-list", "kid-null", "alg-list"],
)
def test_key_type_mismatch_is_401_and_rate_limited(jwks_app, header, caplog):
    client = jwks_app.test_client()
    token = _token_with_header(header)
    statuses = [client.get("/api/audio-clips", headers={"Authorization": f"Bearer {token}"}) for _ in range(4)]
    for response in statuses[:3]:
        assert_error(response, 401, "unauthorized")
    assert_error(statuses[3], 429, "too_many_requests")  # the limiter's key did not raise
    assert not [r for r in caplog.records if r.levelno >= 40], [r.getMessage() for r in caplog.records]


def test_real_jwks_tokens_still_verify(jwks_app):
    token = jwt.encode(_claims(sub="rsa-user", aud="notes-api"), RSA_KEY, algorithm="RS256", headers={"kid": "rsa-1"})
    assert (
        jwks_app.test_client().get("/api/audio-clips", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    )


def test_the_limiter_key_cannot_raise(base_config, monkeypatch):
    """A verifier that raises something unforeseen still leaves the request rate-limited.

    The verifier is replaced by one that raises (a stand-in: every real failure mode we
    know is now a 401, so only a fake can provoke an unforeseen exception).
    """
    app = create_app({**base_config, "RATELIMIT_DEFAULT": "2/minute"})

    def exploding(token):
        raise TypeError("an exception no one foresaw")

    monkeypatch.setattr(services_of(app).verifier, "verify", exploding)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    client = app.test_client()
    statuses = [client.get("/api/audio-clips", headers={"Authorization": "Bearer x.y.z"}).status_code for _ in range(3)]
    assert statuses == [500, 500, 429]


# -- item 6: crafted inputs that were 500s -------------------------------------------------


def test_a_cursor_of_the_wrong_shape_is_422(client, auth):
    for decoded in (["2020-01-01T00:00:00+00:00", 5], ["2020-01-01T00:00:00+00:00"], {"a": 1}, 7, [[], []]):
        cursor = base64.urlsafe_b64encode(json.dumps(decoded).encode()).decode().rstrip("=")
        response = client.get(f"/api/audio-clips?cursor={cursor}", headers=auth)
        assert assert_error(response, 422, "validation_error")["details"] == {"cursor": ["Invalid cursor."]}


LONE_SURROGATE_BODY = '{"note_id": "\\ud800", "mime_type": "audio/ogg", "bytes": 10}'


def test_a_lone_surrogate_note_id_is_422_on_create_and_patch(client, auth):
    headers = {**auth, "Content-Type": "application/json"}
    error = assert_error(
        client.post("/api/audio-clips", data=LONE_SURROGATE_BODY, headers=headers), 422, "validation_error"
    )
    assert "note_id" in error["details"]
    clip_id = client.post("/api/audio-clips", json={"mime_type": "audio/ogg", "bytes": 10}, headers=auth).get_json()[
        "clip"
    ]["id"]
    patched = client.patch(f"/api/audio-clips/{clip_id}", data='{"note_id": "a\\udfff"}', headers=headers)
    assert "note_id" in assert_error(patched, 422, "validation_error")["details"]
    listed = client.get("/api/audio-clips?note_id=%ED%A0%80", headers=auth)  # not a surrogate: invalid UTF-8
    assert listed.status_code in (200, 422)


@pytest.mark.parametrize("method", ["post", "patch"])
def test_deeply_nested_json_is_400(client, auth, method):
    clip_id = client.post("/api/audio-clips", json={"mime_type": "audio/ogg", "bytes": 10}, headers=auth).get_json()[
        "clip"
    ]["id"]
    path = "/api/audio-clips" if method == "post" else f"/api/audio-clips/{clip_id}"
    body = "[" * 6000
    response = getattr(client, method)(path, data=body, headers={**auth, "Content-Type": "application/json"})
    assert_error(response, 400, "bad_request")


# -- item 1: auth fails closed when APP_ENV is unset ----------------------------------------


def test_unset_app_env_with_a_real_stack_refuses_to_start(base_config):
    """The audit's repro: a PostgreSQL DATABASE_URL, a real bucket, APP_ENV= and AUTH_JWT_SECRET=."""
    env = {
        "APP_ENV": "",
        "AUTH_JWT_SECRET": "",
        "DATABASE_URL": "postgresql+psycopg2://app@db.internal:5432/notes",
        "S3_BUCKET": "real-bucket",
    }
    with pytest.raises(ConfigError) as raised:
        load_settings(env)
    assert "AUTH_JWT_SECRET" in raised.value.problems and "advanced-notes dev" in str(raised.value)
    # A real bucket on AWS (no endpoint) next to SQLite is not the local stack either, nor
    # is the dev secret spelled out by hand.
    for extra in ({"DATABASE_URL": None}, {"DATABASE_URL": None, "AUTH_JWT_SECRET": DEV_JWT_SECRET}):
        with pytest.raises(ConfigError, match="AUTH_JWT_SECRET"):
            load_settings({k: v for k, v in {**env, **extra}.items() if v is not None})
    with pytest.raises(ConfigError, match="AUTH_JWT_SECRET"):
        create_app({**base_config, "APP_ENV": "", "AUTH_JWT_SECRET": "", "S3_ENDPOINT_URL": None})


def test_the_dev_secret_is_kept_for_the_dev_runner_on_the_local_embedded_stack():
    # The second audit (item 3): the dev runner's explicit AUTH_USE_DEV_SECRET=on, not the
    # look of the stack, selects the public secret; the flag still needs the local stack.
    for endpoint in ("http://127.0.0.1:9000", "http://localhost:5000", "http://[::1]:9000"):
        dev = {"S3_ENDPOINT_URL": endpoint, "AUTH_USE_DEV_SECRET": "on"}
        assert load_settings(dev).auth_jwt_secret == DEV_JWT_SECRET
    assert is_local_stack("sqlite:///x.db", "http://127.0.0.5:1") and not is_local_stack(None, "http://minio:9000")


def test_startup_logs_the_environment_and_auth_mode(base_config, caplog):
    caplog.set_level(logging.INFO, logger="advanced_notes.app")
    create_app(base_config)
    line = next(r.getMessage() for r in caplog.records if r.name == "advanced_notes.app")
    assert "environment=test" in line and "auth=HS256 (AUTH_JWT_SECRET)" in line
    assert base_config["AUTH_JWT_SECRET"] not in line


# -- item 5: preflights and clients behind a proxy --------------------------------------------


def test_garbage_tokens_do_not_turn_a_preflight_into_a_429(base_config):
    app = create_app({**base_config, "RATELIMIT_DEFAULT": "3/minute", "CORS_ORIGINS": "https://app.example"})
    client = app.test_client()
    for _ in range(10):
        client.get("/api/audio-clips", headers={"Authorization": "Bearer garbage"})
    preflight = client.options(
        "/api/audio-clips",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.example"


def _anonymous_statuses(client, forwarded_for: str, n: int) -> list[int]:
    headers = {"Authorization": "Bearer garbage", "X-Forwarded-For": forwarded_for}
    return [
        client.get("/api/audio-clips", headers=headers, environ_base={"REMOTE_ADDR": "10.0.0.1"}).status_code
        for _ in range(n)
    ]


def test_trusted_proxies_give_each_client_behind_the_balancer_its_own_budget(base_config):
    behind = create_app({**base_config, "RATELIMIT_DEFAULT": "2/minute", "TRUSTED_PROXIES": "1"}).test_client()
    assert _anonymous_statuses(behind, "203.0.113.7", 3) == [401, 401, 429]
    assert _anonymous_statuses(behind, "203.0.113.8", 1) == [401]  # another client: another budget
    # A client's own X-Forwarded-For entries before the proxy's are not trusted.
    assert _anonymous_statuses(behind, "198.51.100.1, 203.0.113.7", 1) == [429]


def test_without_trusted_proxies_forwarded_headers_are_ignored(base_config):
    direct = create_app({**base_config, "RATELIMIT_DEFAULT": "2/minute"}).test_client()
    assert _anonymous_statuses(direct, "203.0.113.7", 2) == [401, 401]
    assert _anonymous_statuses(direct, "203.0.113.8", 1) == [429]  # spoofing the header gains nothing
    with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
        load_settings({"TRUSTED_PROXIES": "-1", "AUTH_JWT_SECRET": JWT_SECRET})


# -- item 7: upload-url racing DELETE ---------------------------------------------------------


def test_refresh_racing_delete_records_the_refreshed_expiry(base_config, app):
    """The DELETE pauses just before it runs while an upload-url commits a later expiry.

    Before the fix, delete() had read the row first and recorded the deletion with the
    expiry it read: the object a PUT with the new URL stored was never deleted. On
    SQLite the interleaving cannot happen (write transactions take the lock at BEGIN
    IMMEDIATE, so the refresh waits for the delete); the test then checks the outcome
    of the serialized order.
    """
    services = services_of(app)
    # A second process of the same deployment whose PUT URLs live longer: its refresh
    # moves the expiry by ~45 minutes, far beyond any timestamp rounding.
    longer = services_of(create_app({**base_config, "S3_PRESIGN_PUT_EXPIRES_SECONDS": "3600"}))
    created = services.uploads.create("race-owner", mime_type="audio/ogg", bytes=10)
    clip_id = created.clip.id
    paused, refreshed = threading.Event(), threading.Event()
    deleter = {}
    postgres = services.db.engine.dialect.name == "postgresql"

    @event.listens_for(services.db.engine, "before_cursor_execute")
    def pause_the_delete(conn, cursor, statement, parameters, context, executemany):
        if threading.get_ident() == deleter.get("ident") and statement.lstrip().upper().startswith(
            "DELETE FROM AUDIO_CLIPS"
        ):
            paused.set()
            refreshed.wait(10)

    def delete():
        deleter["ident"] = threading.get_ident()
        services.clips.delete("race-owner", clip_id)

    try:
        thread = threading.Thread(target=delete)
        thread.start()
        if postgres:
            assert paused.wait(10)
            new_upload = longer.uploads.refresh_upload("race-owner", clip_id).upload
            refreshed.set()
        else:
            refreshed.set()
            new_upload = None
        thread.join(10)
        assert not thread.is_alive()
    finally:
        refreshed.set()
        event.remove(services.db.engine, "before_cursor_execute", pause_the_delete)
    (record,) = pending_deletions(app, clip_id)
    if new_upload is not None:
        assert record.recheck_until >= new_upload.expires_at + CLOCK_SKEW
    with pytest.raises(NotFound):  # and no URL is minted once the row is gone
        longer.uploads.refresh_upload("race-owner", clip_id)


def test_refresh_computes_the_later_expiry_in_sql(base_config, app):
    """A refresh by a process with shorter URLs never moves the stored expiry backwards."""
    services = services_of(app)
    longer = services_of(create_app({**base_config, "S3_PRESIGN_PUT_EXPIRES_SECONDS": "3600"}))
    clip_id = services.uploads.create("expiry-owner", mime_type="audio/ogg", bytes=10).clip.id
    long_expiry = longer.uploads.refresh_upload("expiry-owner", clip_id).upload.expires_at
    services.uploads.refresh_upload("expiry-owner", clip_id)
    assert services.clips.get("expiry-owner", clip_id).upload_expires_at >= long_expiry


# -- item 8: answers that misreport what happened ---------------------------------------------


def test_complete_racing_delete_is_404_not_503(app, client, auth, audio, monkeypatch):
    """The clip is deleted (row and object, by the real service) right after complete's HEAD."""
    services = services_of(app)
    f = audio["note.ogg"]
    created = client.post("/api/audio-clips", json={"mime_type": f.mime_type, "bytes": f.size}, headers=auth).get_json()
    assert put_upload(created["upload"], f.data).status_code == 200
    clip_id = created["clip"]["id"]
    real_head = services.storage.head

    def head_then_delete(key, **kw):
        info = real_head(key, **kw)
        assert client.delete(f"/api/audio-clips/{clip_id}", headers=auth).status_code == 204
        return info

    monkeypatch.setattr(services.storage, "head", head_then_delete)
    assert_error(client.post(f"/api/audio-clips/{clip_id}/complete", headers=auth), 404, "not_found")


def test_a_database_fault_after_the_delete_committed_is_still_204(app, client, auth, monkeypatch):
    """The outbox bookkeeping after the commit fails (a stand-in OperationalError: a real
    outage between two statements of one request cannot be arranged); the answer must
    say what happened: the clip is gone."""
    services = services_of(app)
    clip_id = client.post("/api/audio-clips", json={"mime_type": "audio/ogg", "bytes": 10}, headers=auth).get_json()[
        "clip"
    ]["id"]

    def database_gone(*args, **kw):
        raise OperationalError("UPDATE pending_deletions", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(services.clips.deletions, "_update", database_gone)
    assert client.delete(f"/api/audio-clips/{clip_id}", headers=auth).status_code == 204
    assert_error(client.get(f"/api/audio-clips/{clip_id}", headers=auth), 404, "not_found")
    assert len(pending_deletions(app, clip_id)) == 1  # the sweeper finishes it


def test_an_impostors_rejection_survives_a_database_fault_after_commit(app, client, auth, audio, monkeypatch):
    services = services_of(app)
    html = audio["impostor-html.m4a"]
    created = client.post("/api/audio-clips", json={"mime_type": "audio/mp4", "bytes": html.size}, headers=auth)
    created = created.get_json()
    put_upload(created["upload"], html.data)

    def database_gone(*args, **kw):
        raise OperationalError("UPDATE pending_deletions", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(services.clips.deletions, "_update", database_gone)
    response = client.post(f"/api/audio-clips/{created['clip']['id']}/complete", headers=auth)
    assert assert_error(response, 422, "upload_rejected")["details"]["reason"] == "not_audio"


def test_retry_after_only_on_429_and_503_with_the_causes_value(base_config, client, auth):
    ok = client.get("/api/audio-clips", headers=auth)
    missing = client.get(f"/api/audio-clips/{uuid.uuid4()}", headers=auth)
    assert ok.status_code == 200 and "Retry-After" not in ok.headers and "X-RateLimit-Limit" in ok.headers
    assert missing.status_code == 404 and "Retry-After" not in missing.headers
    clip = client.post("/api/audio-clips", json={"mime_type": "audio/ogg", "bytes": 10}, headers=auth).get_json()
    dead = create_app({**base_config, "S3_ENDPOINT_URL": "http://127.0.0.1:9", "S3_CONNECT_TIMEOUT_SECONDS": "1"})
    response = dead.test_client().post(f"/api/audio-clips/{clip['clip']['id']}/complete", headers=auth)
    assert_error(response, 503, "storage_unavailable")
    assert response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    limited = create_app({**base_config, "RATELIMIT_DEFAULT": "1/minute"}).test_client()
    limited.get("/api/audio-clips", headers=auth)
    too_many = limited.get("/api/audio-clips", headers=auth)
    assert too_many.status_code == 429 and 0 < int(too_many.headers["Retry-After"]) <= 60


# -- item 10 (part): the embedded dev stack does not inherit auth settings ---------------------


def test_the_embedded_stack_ignores_auth_settings_from_the_environment(tmp_path, monkeypatch):
    from advanced_notes.tools.devserver import EmbeddedOptions, embedded_config

    for name, value in {
        "AUTH_JWT_SECRET": "a-deployment-secret-that-is-long-enough-0123",
        "AUTH_JWT_ISSUER": "https://idp.example",
        "AUTH_JWT_AUDIENCE": "prod-api",
        "AUTH_JWKS_URL": "https://idp.example/jwks",
    }.items():
        monkeypatch.setenv(name, value)
    app = create_app(embedded_config(EmbeddedOptions(), tmp_path / "dev.sqlite"))
    settings = services_of(app).settings
    assert settings.auth_jwt_secret == DEV_JWT_SECRET
    assert (settings.auth_jwt_issuer, settings.auth_jwt_audience, settings.auth_jwks_url) == (None, None, None)
    assert services_of(app).verifier.verify(mint_token(settings, "dev-user"))["sub"] == "dev-user"


# -- item 9: write-once by default where the store supports it ----------------------------------


@pytest.mark.parametrize(
    "env, write_once",
    [
        ({"S3_PROVIDER": "aws"}, True),
        ({}, True),  # no endpoint: AWS
        ({"S3_PROVIDER": "r2", "S3_ENDPOINT_URL": "https://acc.r2.cloudflarestorage.com"}, True),
        ({"S3_PROVIDER": "minio", "S3_ENDPOINT_URL": "http://minio:9000"}, True),
        ({"S3_PROVIDER": "spaces", "S3_ENDPOINT_URL": "https://fra1.digitaloceanspaces.com"}, False),
        ({"S3_ENDPOINT_URL": "https://s3.some-store.example"}, False),  # custom: the doctor decides
        ({"S3_PROVIDER": "aws", "S3_CONDITIONAL_WRITES": "off"}, False),  # explicit wins
    ],
)
def test_write_once_is_the_preset_default_where_supported(env, write_once):
    assert load_settings({"AUTH_JWT_SECRET": "s" * 40, **env}).s3_conditional_writes is write_once


def test_a_ready_clip_cannot_be_replaced_with_its_upload_url_under_a_write_once_preset(app, base_config, audio):
    """The audit's repro: re-PUT with the original URL after ready; moto honours If-None-Match."""
    # (``app``: the session's app, which made the bucket.)
    minio = create_app({**base_config, "S3_PROVIDER": "minio"})  # preset: path style + write-once
    client = minio.test_client()
    headers = {"Authorization": f"Bearer {mint_token(services_of(minio).settings, 'write-once')}"}
    f = audio["note.ogg"]
    created = client.post("/api/audio-clips", json={"mime_type": f.mime_type, "bytes": f.size}, headers=headers)
    upload = created.get_json()["upload"]
    assert upload["headers"]["If-None-Match"] == "*"
    assert put_upload(upload, f.data).status_code == 200
    clip_id = created.get_json()["clip"]["id"]
    assert client.post(f"/api/audio-clips/{clip_id}/complete", headers=headers).status_code == 200
    forged = b"\x00" * f.size
    assert put_upload(upload, forged).status_code == 412
    url = client.get(f"/api/audio-clips/{clip_id}/playback", headers=headers).get_json()["url"]
    assert requests.get(url, timeout=30).content == f.data


# -- item 10: token lifetime, audience with JWKS, /metrics cost, request-line bound -------------


def test_a_token_living_longer_than_the_maximum_is_401(base_config, client):
    century = jwt.encode(_claims(exp=4102444800 + 86400 * 365 * 70), JWT_SECRET, algorithm="HS256")
    assert_error(client.get("/api/audio-clips", headers={"Authorization": f"Bearer {century}"}), 401, "unauthorized")
    day = jwt.encode(_claims(exp=int(time.time()) + 86400), JWT_SECRET, algorithm="HS256")
    assert client.get("/api/audio-clips", headers={"Authorization": f"Bearer {day}"}).status_code == 200
    short = create_app({**base_config, "AUTH_MAX_TOKEN_LIFETIME_SECONDS": "600"}).test_client()
    hour = jwt.encode(_claims(exp=int(time.time()) + 3600), JWT_SECRET, algorithm="HS256")
    assert_error(short.get("/api/audio-clips", headers={"Authorization": f"Bearer {hour}"}), 401, "unauthorized")


def test_jwks_without_an_audience_does_not_start(jwks_app, jwks_url):  # noqa: F811
    with pytest.raises(ConfigError) as raised:
        load_settings({"APP_ENV": "production", "S3_BUCKET": "b", "AUTH_JWKS_URL": jwks_url})
    assert list(raised.value.problems) == ["AUTH_JWT_AUDIENCE"]
    foreign = jwt.encode(_claims(aud="another-app"), RSA_KEY, algorithm="RS256", headers={"kid": "rsa-1"})
    response = jwks_app.test_client().get("/api/audio-clips", headers={"Authorization": f"Bearer {foreign}"})
    assert_error(response, 401, "unauthorized")


def test_metrics_counts_are_reused_for_a_few_seconds(base_config, client, auth):
    app = create_app({**base_config, "METRICS_CACHE_SECONDS": "5"})
    counts = []

    @event.listens_for(services_of(app).db.engine, "before_cursor_execute")
    def count(conn, cursor, statement, parameters, context, executemany):
        if "count(" in statement.lower():
            counts.append(statement)

    scraper = app.test_client()
    try:
        for _ in range(5):
            assert scraper.get("/metrics").status_code == 200
    finally:
        event.remove(services_of(app).db.engine, "before_cursor_execute", count)
    assert len(counts) == 4  # one scrape's four counts (clips, deletions x2, webhooks), reused by the next four


def test_the_longest_valid_request_line_fits_gunicorns_limit():
    """Valid query parameters are bounded so that no valid request meets gunicorn's HTML 400."""
    limit = 4094  # gunicorn's default limit_request_line, which gunicorn.conf.py keeps
    widest = "\U0010ffff" * MAX_NOTE_ID_LENGTH  # 4 UTF-8 bytes each, 12 once percent-encoded
    query = urlencode({"note_id": widest, "status": "rejected", "limit": 100, "cursor": "A" * 512})
    lines = [
        f"GET /api/audio-clips?{query} HTTP/1.1",
        f"GET /api/notes/{quote(widest, safe='')}/audio HTTP/1.1",
    ]
    assert max(len(line) for line in lines) < limit

"""Token rules that hold whatever the configuration: wrong key types, JWKS without an audience,
too-long lifetimes, an unset APP_ENV, and the dev secret only where the dev runner chose it."""

from __future__ import annotations

import base64
import json
import logging
import time

import jwt
import pytest

from advanced_notes.api.auth import mint_token
from advanced_notes.api.context import services_of
from advanced_notes.app import create_app
from advanced_notes.settings import DEV_JWT_SECRET, ConfigError, is_local_stack, load_settings
from tests.helpers import JWT_SECRET, RSA_KEY, assert_error, token_claims


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _token_with_header(header: dict, claims: dict | None = None, signature: bytes = b"garbage") -> str:
    body = json.dumps(claims or {"sub": "victim", "exp": 4102444800}).encode()
    return f"{_b64(json.dumps(header).encode())}.{_b64(body)}.{_b64(signature)}"


@pytest.fixture
def jwks_app(base_config, jwks_url):
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
    token = jwt.encode(
        token_claims(sub="rsa-user", aud="notes-api"), RSA_KEY, algorithm="RS256", headers={"kid": "rsa-1"}
    )
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
    # The dev runner's explicit AUTH_USE_DEV_SECRET=on, not the
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


def test_a_token_living_longer_than_the_maximum_is_401(base_config, client):
    century = jwt.encode(token_claims(exp=4102444800 + 86400 * 365 * 70), JWT_SECRET, algorithm="HS256")
    assert_error(client.get("/api/audio-clips", headers={"Authorization": f"Bearer {century}"}), 401, "unauthorized")
    day = jwt.encode(token_claims(exp=int(time.time()) + 86400), JWT_SECRET, algorithm="HS256")
    assert client.get("/api/audio-clips", headers={"Authorization": f"Bearer {day}"}).status_code == 200
    short = create_app({**base_config, "AUTH_MAX_TOKEN_LIFETIME_SECONDS": "600"}).test_client()
    hour = jwt.encode(token_claims(exp=int(time.time()) + 3600), JWT_SECRET, algorithm="HS256")
    assert_error(short.get("/api/audio-clips", headers={"Authorization": f"Bearer {hour}"}), 401, "unauthorized")


def test_jwks_without_an_audience_does_not_start(jwks_app, jwks_url):
    with pytest.raises(ConfigError) as raised:
        load_settings({"APP_ENV": "production", "S3_BUCKET": "b", "AUTH_JWKS_URL": jwks_url})
    assert list(raised.value.problems) == ["AUTH_JWT_AUDIENCE"]
    foreign = jwt.encode(token_claims(aud="another-app"), RSA_KEY, algorithm="RS256", headers={"kid": "rsa-1"})
    response = jwks_app.test_client().get("/api/audio-clips", headers={"Authorization": f"Bearer {foreign}"})
    assert_error(response, 401, "unauthorized")

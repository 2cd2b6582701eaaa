"""Auth never fails open, whatever ``APP_ENV`` says.

Two configurations with ``APP_ENV`` unset served tokens anyone could sign: a 3-byte
``AUTH_JWT_SECRET`` (the 32-byte floor applied only in production), and SQLite + a loopback
MinIO + a public ``S3_PUBLIC_ENDPOINT_URL`` (a real single-box deployment), which was taken
for the local embedded stack and got the public dev secret. Now only the dev runner selects
that secret, explicitly (``AUTH_USE_DEV_SECRET=on``); every served app needs a secret of at
least 32 bytes or JWKS keys, and ``STORAGE_EVENTS_TOKEN`` at least 32 bytes too.
"""

from __future__ import annotations

import logging
from typing import Any

import jwt
import pytest

from advanced_notes.api.auth import mint_token
from advanced_notes.api.context import services_of
from advanced_notes.app import create_app
from advanced_notes.settings import DEV_JWT_SECRET, ConfigError, load_settings
from tests.helpers import CLI, env_with, run_command, token_claims

GOOD_SECRET = "g" * 32
GOOD_EVENTS_TOKEN = "e" * 32


@pytest.fixture
def unset_app_env(base_config) -> dict[str, Any]:
    """The session's stack (database and moto on loopback) with ``APP_ENV`` unset (None removes it)."""
    return {**base_config, "APP_ENV": None, "AUTH_JWT_SECRET": None}


def _problems(config: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ConfigError) as raised:
        create_app(config)
    return raised.value.problems


# -- the audit's two reproductions -----------------------------------------------------------


def test_a_3_byte_secret_with_a_loopback_endpoint_refuses_to_start(unset_app_env):
    problems = _problems({**unset_app_env, "AUTH_JWT_SECRET": "abc"})
    assert set(problems) == {"AUTH_JWT_SECRET"}
    assert "at least 32 bytes" in problems["AUTH_JWT_SECRET"]


def test_sqlite_loopback_minio_and_a_public_endpoint_refuses_to_start(unset_app_env, tmp_path):
    single_box = {
        **unset_app_env,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'notes.sqlite'}",
        "S3_PUBLIC_ENDPOINT_URL": "https://files.example.com",
    }
    assert "AUTH_JWT_SECRET" in _problems(single_box)
    # Nor is the public secret accepted there when spelled out by hand ...
    assert "AUTH_JWT_SECRET" in _problems({**single_box, "AUTH_JWT_SECRET": DEV_JWT_SECRET})
    # ... or selected with the dev runner's flag: clients on other machines are sent there.
    assert "AUTH_USE_DEV_SECRET" in _problems({**single_box, "AUTH_USE_DEV_SECRET": "on"})
    # With a secret of its own it serves, and only that secret's tokens.
    app = create_app({**single_box, "AUTH_JWT_SECRET": GOOD_SECRET})
    verifier = services_of(app).verifier
    assert verifier.verify(jwt.encode(token_claims(), GOOD_SECRET, algorithm="HS256"))["sub"] == "alice"
    client = app.test_client()
    forged = jwt.encode(token_claims(), DEV_JWT_SECRET, algorithm="HS256")
    assert client.get("/api/audio-clips", headers={"Authorization": f"Bearer {forged}"}).status_code == 401


# -- the rules ----------------------------------------------------------------------------------


@pytest.mark.parametrize("app_env", [None, "dev", "test", "staging", "production"])
@pytest.mark.parametrize("secret", ["abc", "s" * 31, "é" * 15])  # "é" is 2 bytes: 30 bytes in all
def test_the_32_byte_floor_applies_in_every_environment(app_env, secret):
    env = {"APP_ENV": app_env, "S3_BUCKET": "b", "S3_ENDPOINT_URL": "http://127.0.0.1:9000", "AUTH_JWT_SECRET": secret}
    with pytest.raises(ConfigError) as raised:
        load_settings({k: v for k, v in env.items() if v is not None})
    assert "at least 32 bytes" in raised.value.problems["AUTH_JWT_SECRET"]
    assert load_settings({**{k: v for k, v in env.items() if v is not None}, "AUTH_JWT_SECRET": GOOD_SECRET})


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:9000", "http://localhost:9000", "http://[::1]:9000"])
def test_the_dev_secret_is_never_inferred_from_a_local_looking_stack(endpoint):
    with pytest.raises(ConfigError) as raised:
        load_settings({"S3_ENDPOINT_URL": endpoint})
    assert "advanced-notes dev" in raised.value.problems["AUTH_JWT_SECRET"]
    assert load_settings({"S3_ENDPOINT_URL": endpoint, "AUTH_USE_DEV_SECRET": "on"}).auth_jwt_secret == DEV_JWT_SECRET


@pytest.mark.parametrize(
    "env, variable",
    [
        ({"APP_ENV": "production", "S3_BUCKET": "b"}, "AUTH_USE_DEV_SECRET"),
        ({"APP_ENV": "staging", "S3_BUCKET": "b"}, "AUTH_USE_DEV_SECRET"),
        ({"DATABASE_URL": "postgresql+psycopg2://app@127.0.0.1/notes"}, "AUTH_USE_DEV_SECRET"),
        ({"S3_ENDPOINT_URL": "http://minio:9000"}, "AUTH_USE_DEV_SECRET"),
        ({"S3_ENDPOINT_URL": None}, "AUTH_USE_DEV_SECRET"),  # AWS
        ({"AUTH_JWT_SECRET": GOOD_SECRET}, "AUTH_JWT_SECRET"),  # two secrets: which one is meant?
    ],
)
def test_the_dev_runner_flag_is_refused_away_from_the_local_stack(env, variable):
    base = {"S3_ENDPOINT_URL": "http://127.0.0.1:9000", "AUTH_USE_DEV_SECRET": "on"}
    with pytest.raises(ConfigError) as raised:
        load_settings({k: v for k, v in {**base, **env}.items() if v is not None})
    assert variable in raised.value.problems


@pytest.mark.parametrize("token", ["a", "x" * 31, "é" * 15])
def test_a_short_storage_events_token_refuses_to_start(unset_app_env, token):
    for app_env in (None, "production"):
        problems = _problems(
            {**unset_app_env, "APP_ENV": app_env, "AUTH_JWT_SECRET": GOOD_SECRET, "STORAGE_EVENTS_TOKEN": token}
        )
        assert set(problems) == {"STORAGE_EVENTS_TOKEN"} and "at least 32 bytes" in problems["STORAGE_EVENTS_TOKEN"]
    assert load_settings({"AUTH_JWT_SECRET": GOOD_SECRET, "STORAGE_EVENTS_TOKEN": GOOD_EVENTS_TOKEN})


def test_one_message_names_every_bad_auth_variable(unset_app_env):
    with pytest.raises(ConfigError) as raised:
        create_app({**unset_app_env, "AUTH_JWT_SECRET": "abc", "STORAGE_EVENTS_TOKEN": "a"})
    assert set(raised.value.problems) == {"AUTH_JWT_SECRET", "STORAGE_EVENTS_TOKEN"}
    message = str(raised.value)
    assert message.startswith("Invalid configuration (2 problem(s))") and "abc" not in message


def test_the_cli_refuses_the_short_secret_with_one_message(tmp_path):
    """The real ``advanced-notes token``, as an operator runs it: exit 2, the message, no token."""
    env = env_with(AUTH_JWT_SECRET="abc", S3_ENDPOINT_URL="http://127.0.0.1:9000")
    result = run_command([CLI, "token"], tmp_path, env)
    assert result.returncode == 2 and result.stdout == ""
    assert "  - AUTH_JWT_SECRET: must be at least 32 bytes for HS256" in result.stderr


def test_the_dev_runner_selects_the_dev_secret_explicitly(tmp_path, caplog):
    from advanced_notes.tools.devserver import EmbeddedOptions, embedded_config

    config = embedded_config(EmbeddedOptions(), tmp_path / "dev.sqlite")
    assert config["AUTH_USE_DEV_SECRET"] == "on"
    caplog.set_level(logging.INFO, logger="advanced_notes.app")
    app = create_app(config)
    settings = services_of(app).settings
    assert settings.auth_jwt_secret == DEV_JWT_SECRET
    assert services_of(app).verifier.verify(mint_token(settings, "dev-user"))["sub"] == "dev-user"
    line = next(r.getMessage() for r in caplog.records if r.name == "advanced_notes.app")
    assert "auth=HS256 (public dev secret, AUTH_USE_DEV_SECRET=on" in line and DEV_JWT_SECRET not in line

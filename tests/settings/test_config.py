"""Settings (DESIGN §7): aliases, defaults, and one startup message naming every bad variable."""

from __future__ import annotations

import pytest

from advanced_notes.app import create_app
from advanced_notes.settings import DEV_JWT_SECRET, ConfigError, load_settings

GOOD_PROD = {"APP_ENV": "production", "S3_BUCKET": "b", "AUTH_JWT_SECRET": "s" * 40}


#: A secret of its own: the public dev secret is only the dev runner's, chosen explicitly.
OWN_SECRET = {"AUTH_JWT_SECRET": "o" * 40}
#: What the dev runner (``advanced-notes dev``) sets: SQLite, loopback S3, the explicit flag.
DEV_RUNNER = {"S3_ENDPOINT_URL": "http://127.0.0.1:9000", "AUTH_USE_DEV_SECRET": "on"}


def test_dev_defaults():
    s = load_settings(DEV_RUNNER)
    assert (s.environment, s.key_prefix, s.aws_region, s.s3_addressing_style) == ("dev", "dev", "us-east-1", "auto")
    assert (s.presign_put_expires_seconds, s.presign_get_expires_seconds) == (900, 900)
    assert (s.max_upload_bytes, s.max_duration_ms, s.upload_reservation_seconds) == (104_857_600, 10_800_000, 86_400)
    assert s.auth_jwt_secret == DEV_JWT_SECRET and s.s3_bucket
    assert "audio/m4a" in s.allowed_mime_types and "audio/3gpp" in s.allowed_mime_types


def test_aliases_of_earlier_setups():
    s = load_settings(
        {
            **GOOD_PROD,
            "S3_BUCKET": None,
            "S3_BUCKET_NAME": "spaces-bucket",
            "S3_REGION": "nyc3",
            "S3_ACCESS_KEY": "DO00KEY",
            "S3_SECRET_KEY": "do-secret",
            "APP_ENV": None,
            "ENV": "live",
        }
    )
    assert (s.s3_bucket, s.aws_region, s.aws_access_key_id, s.aws_secret_access_key) == (
        "spaces-bucket",
        "nyc3",
        "DO00KEY",
        "do-secret",
    )
    assert s.environment == "prod"


@pytest.mark.parametrize(
    "env, expected",
    [
        ({}, "dev"),
        ({"FLASK_ENV": "production"}, "prod"),
        ({"ENV": "staging", "FLASK_ENV": "production"}, "staging"),
        ({"APP_ENV": "live", "ENV": "staging", "FLASK_ENV": "development"}, "prod"),
        ({"APP_ENV": "  ", "ENV": "stage"}, "staging"),
        ({"S3_KEY_PREFIX": "tenants/Acme Corp", "APP_ENV": "production"}, "tenants/acme-corp"),
        ({"S3_KEY_PREFIX": " Production/ ", "APP_ENV": "dev"}, "prod"),
        ({"S3_KEY_PREFIX": "", "APP_ENV": "production"}, "prod"),
    ],
)
def test_key_prefix_resolution_order(env, expected):
    # S3_KEY_PREFIX, else the environment name: APP_ENV, else ENV, else FLASK_ENV, else dev.
    assert load_settings({"S3_BUCKET": "b", **OWN_SECRET, **env}).key_prefix == expected


def test_key_prefix_override_does_not_change_environment():
    assert load_settings({**GOOD_PROD, "S3_KEY_PREFIX": "prod", "APP_ENV": "staging"}).environment == "staging"


def test_canonical_names_win_over_aliases():
    s = load_settings(
        {
            **GOOD_PROD,
            "S3_BUCKET_NAME": "old",
            "AWS_REGION": "eu-west-1",
            "AWS_DEFAULT_REGION": "us-west-2",
            "S3_REGION": "nyc3",
        }
    )
    assert (s.s3_bucket, s.aws_region) == ("b", "eu-west-1")
    assert load_settings({**GOOD_PROD, "AWS_DEFAULT_REGION": "us-west-2"}).aws_region == "us-west-2"


def test_public_endpoint_defaults_to_endpoint():
    s = load_settings({"S3_ENDPOINT_URL": "http://minio:9000", **OWN_SECRET})
    assert s.s3_public_endpoint_url == "http://minio:9000"
    s = load_settings(
        {"S3_ENDPOINT_URL": "http://minio:9000", "S3_PUBLIC_ENDPOINT_URL": "https://s3.example.com", **OWN_SECRET}
    )
    assert s.s3_public_endpoint_url == "https://s3.example.com"


@pytest.mark.parametrize(
    "env, variable, words",
    [
        ({"S3_PRESIGN_PUT_EXPIRES_SECONDS": "abc"}, "S3_PRESIGN_PUT_EXPIRES_SECONDS", "integer from 1 to 604800"),
        ({"S3_PRESIGN_PUT_EXPIRES_SECONDS": "0"}, "S3_PRESIGN_PUT_EXPIRES_SECONDS", "604800"),
        ({"S3_PRESIGN_GET_EXPIRES_SECONDS": "604801"}, "S3_PRESIGN_GET_EXPIRES_SECONDS", "604800"),
        ({"MAX_UPLOAD_BYTES": "1.5"}, "MAX_UPLOAD_BYTES", "integer"),
        ({"MAX_DURATION_MS": "-1"}, "MAX_DURATION_MS", "integer"),
        ({"S3_ADDRESSING_STYLE": "dns"}, "S3_ADDRESSING_STYLE", "auto, path, virtual"),
        ({"S3_ENDPOINT_URL": "minio:9000"}, "S3_ENDPOINT_URL", "http"),
        ({"AWS_ACCESS_KEY_ID": "only-the-id"}, "AWS_SECRET_ACCESS_KEY", "together"),
        ({"ALLOWED_MIME_TYPES": "audio/mpeg text/html"}, "ALLOWED_MIME_TYPES", "text/html"),
        (
            {"S3_PRESIGN_PUT_EXPIRES_SECONDS": "7200", "UPLOAD_RESERVATION_SECONDS": "3600"},
            "UPLOAD_RESERVATION_SECONDS",
            "S3_PRESIGN_PUT_EXPIRES_SECONDS",
        ),
    ],
)
def test_each_bad_setting_is_named(env, variable, words):
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    assert variable in info.value.problems
    assert words in info.value.problems[variable]
    assert variable in str(info.value)


@pytest.mark.parametrize(
    "env, variable",
    [
        ({"APP_ENV": "production", "AUTH_JWT_SECRET": "s" * 40}, "S3_BUCKET"),
        ({"APP_ENV": "production", "S3_BUCKET": "b"}, "AUTH_JWT_SECRET"),
        ({"APP_ENV": "staging", "S3_BUCKET": "b", "AUTH_JWT_SECRET": DEV_JWT_SECRET}, "AUTH_JWT_SECRET"),
        ({"APP_ENV": "production", "S3_BUCKET": "b", "AUTH_JWT_SECRET": "short"}, "AUTH_JWT_SECRET"),
    ],
)
def test_outside_dev_bucket_and_real_secret_are_required(env, variable):
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    assert variable in info.value.problems


def test_jwks_alone_is_enough_outside_dev():
    jwks = {"AUTH_JWKS_URL": "https://idp.example/jwks", "AUTH_JWT_AUDIENCE": "notes-api"}
    s = load_settings({"APP_ENV": "production", "S3_BUCKET": "b", **jwks})
    assert s.auth_jwt_secret is None and s.auth_jwks_url


def test_one_message_names_every_bad_variable():
    env = {
        "APP_ENV": "production",
        "S3_ADDRESSING_STYLE": "weird",
        "S3_PRESIGN_GET_EXPIRES_SECONDS": "9999999",
        "MAX_UPLOAD_BYTES": "lots",
    }
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    message = str(info.value)
    for name in (
        "S3_BUCKET",
        "AUTH_JWT_SECRET",
        "S3_ADDRESSING_STYLE",
        "S3_PRESIGN_GET_EXPIRES_SECONDS",
        "MAX_UPLOAD_BYTES",
    ):
        assert name in message
    assert message.startswith("Invalid configuration (5 problem(s))")


def test_create_app_refuses_bad_configuration(tmp_path):
    with pytest.raises(ConfigError, match="S3_BUCKET"):
        create_app({"APP_ENV": "production", "AUTH_JWT_SECRET": "s" * 40, "DATABASE_URL": f"sqlite:///{tmp_path}/x"})


@pytest.mark.parametrize(
    "env, expected",
    [
        (
            {"S3_PROVIDER": "r2", "S3_ENDPOINT_URL": "https://acc.r2.cloudflarestorage.com"},
            ("auto", "auto", "https://acc.r2.cloudflarestorage.com"),
        ),
        (
            {"S3_PROVIDER": "spaces", "S3_ENDPOINT_URL": "https://fra1.digitaloceanspaces.com"},
            ("fra1", "auto", "https://fra1.digitaloceanspaces.com"),
        ),
        ({"S3_PROVIDER": "spaces", "S3_REGION": "sgp1"}, ("sgp1", "auto", "https://sgp1.digitaloceanspaces.com")),
        (
            {"S3_PROVIDER": "minio", "S3_ENDPOINT_URL": "http://10.0.0.5:9000"},
            ("us-east-1", "path", "http://10.0.0.5:9000"),
        ),
        ({"S3_PROVIDER": "aws", "AWS_REGION": "eu-west-1"}, ("eu-west-1", "auto", None)),
        # Explicit settings override the preset.
        (
            {
                "S3_PROVIDER": "minio",
                "S3_ENDPOINT_URL": "http://minio:9000",
                "S3_ADDRESSING_STYLE": "virtual",
                "AWS_REGION": "eu-1",
            },
            ("eu-1", "virtual", "http://minio:9000"),
        ),
        (
            {"S3_PROVIDER": "r2", "S3_ENDPOINT_URL": "https://acc.r2.cloudflarestorage.com", "S3_REGION": "wnam"},
            ("wnam", "auto", "https://acc.r2.cloudflarestorage.com"),
        ),
    ],
)
def test_provider_presets(env, expected):
    s = load_settings({**env, **OWN_SECRET})
    assert (s.aws_region, s.s3_addressing_style, s.s3_endpoint_url) == expected
    assert s.s3_provider == env["S3_PROVIDER"]


@pytest.mark.parametrize(
    "env, variable",
    [
        ({"S3_PROVIDER": "r2"}, "S3_ENDPOINT_URL"),
        ({"S3_PROVIDER": "minio"}, "S3_ENDPOINT_URL"),
        ({"S3_PROVIDER": "backblaze"}, "S3_PROVIDER"),
    ],
)
def test_provider_preset_problems(env, variable):
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    assert variable in info.value.problems


def test_reads_only_the_mapping_it_is_given(monkeypatch, tmp_path):
    # create_app passes os.environ merged with overrides; the loader itself reads nothing else.
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("S3_PRESIGN_PUT_EXPIRES_SECONDS", "not a number")
    (tmp_path / ".env").write_text("APP_ENV=production\nMAX_UPLOAD_BYTES=lots\n")
    monkeypatch.chdir(tmp_path)
    s = load_settings(OWN_SECRET)
    assert (s.environment, s.presign_put_expires_seconds, s.max_upload_bytes) == ("dev", 900, 104_857_600)


def test_blank_values_are_unset():
    s = load_settings(
        {
            **GOOD_PROD,
            "S3_BUCKET": "  ",
            "S3_BUCKET_NAME": "old-bucket",
            "APP_ENV": "",
            "ENV": "staging",
            "MAX_UPLOAD_BYTES": "",
            "S3_ADDRESSING_STYLE": " ",
            "AWS_ACCESS_KEY_ID": "",
            "AUTH_JWT_SECRET": " " + "s" * 40 + " ",
        }
    )
    assert (s.s3_bucket, s.environment, s.max_upload_bytes, s.s3_addressing_style) == (
        "old-bucket",
        "staging",
        104_857_600,
        "auto",
    )
    assert s.aws_access_key_id is None and s.auth_jwt_secret == "s" * 40


def test_problems_are_keyed_by_the_canonical_variable():
    # The missing half of the pair is named, whichever half (or alias) was set.
    for env, variable in (
        ({"S3_SECRET_KEY": "secret"}, "AWS_ACCESS_KEY_ID"),
        ({"S3_ACCESS_KEY": "DO00KEY"}, "AWS_SECRET_ACCESS_KEY"),
    ):
        with pytest.raises(ConfigError) as info:
            load_settings({**OWN_SECRET, **env})
        assert list(info.value.problems) == [variable]
        assert "together" in info.value.problems[variable]
    with pytest.raises(ConfigError) as info:
        load_settings({"APP_ENV": "production", "S3_BUCKET_NAME": "", "AUTH_JWT_SECRET": "s" * 40})
    assert list(info.value.problems) == ["S3_BUCKET"]


def test_attribute_types():
    s = load_settings(
        {
            "ALLOWED_MIME_TYPES": "audio/mpeg, AUDIO/WAV audio/mpeg",
            "CORS_ORIGINS": "https://a.example, https://b.example",
            "S3_CONDITIONAL_WRITES": "ON",
            "LOG_LEVEL": "debug",
            "LOG_FORMAT": "TEXT",
            "S3_PROVIDER": "MinIO",
            "S3_ENDPOINT_URL": "http://minio:9000",
            **OWN_SECRET,
        }
    )
    assert s.allowed_mime_types == ("audio/mpeg", "audio/wav")
    assert s.cors_origins == ("https://a.example", "https://b.example")
    assert s.s3_conditional_writes is True
    assert (s.log_level, s.log_format, s.s3_provider, s.s3_addressing_style) == ("DEBUG", "text", "minio", "path")
    assert load_settings(OWN_SECRET).cors_origins == () and isinstance(
        load_settings(OWN_SECRET).allowed_mime_types, tuple
    )


@pytest.mark.parametrize(
    "env, variable, words",
    [
        ({"S3_CONDITIONAL_WRITES": "maybe"}, "S3_CONDITIONAL_WRITES", "on or off"),
        ({"RATELIMIT_DEFAULT": "lots"}, "RATELIMIT_DEFAULT", "rate limit such as"),
        ({"LOG_LEVEL": "trace"}, "LOG_LEVEL", "DEBUG, INFO, WARNING, ERROR"),
        ({"AUTH_JWKS_URL": "idp.example/jwks"}, "AUTH_JWKS_URL", "https://"),
        ({"S3_PUBLIC_ENDPOINT_URL": "s3.example.com"}, "S3_PUBLIC_ENDPOINT_URL", "https://"),
        ({"MAX_UPLOAD_BYTES": str(5 * 1024**4 + 1)}, "MAX_UPLOAD_BYTES", "(S3 objects max 5 TiB), got '5497558138881'"),
        ({"MAX_PENDING_UPLOADS_PER_OWNER": "-1"}, "MAX_PENDING_UPLOADS_PER_OWNER", "from 0 to 1000000 (0 = off)"),
        ({"S3_PRESIGN_GET_EXPIRES_SECONDS": "604801"}, "S3_PRESIGN_GET_EXPIRES_SECONDS", "at most 604800 s"),
        ({"ALLOWED_MIME_TYPES": ","}, "ALLOWED_MIME_TYPES", "empty"),
        # Its own range is what is wrong, even when the PUT lifetime is longer than the default.
        (
            {"S3_PRESIGN_PUT_EXPIRES_SECONDS": "604800", "UPLOAD_RESERVATION_SECONDS": "59"},
            "UPLOAD_RESERVATION_SECONDS",
            "integer from 60 to 31536000",
        ),
    ],
)
def test_each_bound_has_its_message(env, variable, words):
    with pytest.raises(ConfigError) as info:
        load_settings({**OWN_SECRET, **env})
    assert list(info.value.problems) == [variable]
    assert words in info.value.problems[variable]


def test_a_bad_jwks_url_is_not_also_a_missing_secret():
    with pytest.raises(ConfigError) as info:
        load_settings({"APP_ENV": "production", "S3_BUCKET": "b", "AUTH_JWKS_URL": "idp.example/jwks"})
    assert list(info.value.problems) == ["AUTH_JWKS_URL"]


def test_settings_are_frozen_and_keep_secrets_out_of_repr():
    s = load_settings({"AUTH_JWT_SECRET": "x" * 40, "AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "y" * 40})
    with pytest.raises(ValueError):
        s.s3_bucket = "other"  # type: ignore[misc]
    assert "x" * 40 not in repr(s) and "y" * 40 not in repr(s) and "AK" in repr(s)

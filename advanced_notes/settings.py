"""Settings (DESIGN §7): read once from the environment, validated at startup.

:class:`Settings` is a pydantic-settings model: each field declares its type, its default,
its environment variable (and the aliases of earlier setups, through ``AliasChoices``) and
its bounds. :func:`load_settings` validates a mapping of environment variables against it
and turns pydantic's one ``ValidationError`` into :class:`ConfigError`, one message naming
every bad variable, so an operator fixes a deployment in one pass instead of one error per
restart.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import multiprocessing
import re
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any
from urllib.parse import urlsplit

from limits import parse_many  # the rate limiter's own parser: the same syntax it enforces
from pydantic import (
    AliasChoices,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from advanced_notes.domain.keys import normalize_prefix
from advanced_notes.domain.mime import (
    DEFAULT_ALLOWED_MIME_TYPES,
    parse_allowed_mime_types,
)
from advanced_notes.domain.redact import redact_url

#: S3 SigV4 presigned URLs live at most 7 days (604800 s); AWS refuses longer ones.
SIGV4_MAX_EXPIRES_SECONDS = 604_800
#: Public signing secret of the dev runner (``advanced-notes dev``), which selects it with
#: ``AUTH_USE_DEV_SECRET=on``; it is never inferred from what the environment looks like.
DEV_JWT_SECRET = "dev-only-insecure-jwt-secret-change-me"
#: HS256 keys shorter than the hash output (32 bytes) are brute-forceable (RFC 7518 §3.2).
MIN_JWT_SECRET_BYTES = 32
#: The storage-events bearer token is a shared secret too: the same floor as HS256 keys.
MIN_STORAGE_EVENTS_TOKEN_BYTES = 32
DEV_BUCKET = "advanced-notes-dev"
ADDRESSING_STYLES = ("auto", "path", "virtual")
PROVIDERS = ("aws", "r2", "spaces", "minio", "custom")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("json", "text")
_SPACES_HOST = re.compile(r"^https://([a-z0-9-]+)\.digitaloceanspaces\.com/?$")
#: Providers whose endpoint is not AWS's, with an example for the error message.
_ENDPOINT_EXAMPLES = {
    "r2": "https://<account id>.r2.cloudflarestorage.com",
    "spaces": "https://nyc3.digitaloceanspaces.com (or set AWS_REGION=nyc3)",
    "minio": "http://minio:9000",
}
_SIGV4 = " (S3 SigV4 presigned URLs live at most 604800 s)"
_CHOICES = {
    "s3_provider": PROVIDERS,
    "s3_addressing_style": ADDRESSING_STYLES,
    "log_level": LOG_LEVELS,
    "log_format": LOG_FORMATS,
}


def provider_defaults(provider: str, env_endpoint: str | None, env_region: str | None) -> dict[str, str]:
    """Defaults a provider preset fills in; explicit settings override every one.

    - ``r2``: region ``auto`` (R2's only signing region). No ACL is ever signed anyway.
    - ``spaces``: region from the endpoint's host (``nyc3.digitaloceanspaces.com`` -> ``nyc3``),
      or the endpoint from the region.
    - ``minio``: path-style addressing (MinIO behind one host name or an IP address).
    - ``custom``: nothing, except write-once when there is no endpoint (that is AWS).
    - write-once upload URLs (``S3_CONDITIONAL_WRITES=on``) where the store honours
      ``If-None-Match: *`` on PUT: AWS S3 (since August 2024), R2 and MinIO, as the
      storage doctor's probe showed. Spaces does not: off there.

    Returns:
        setting name -> default value.
    """
    write_once = {"S3_CONDITIONAL_WRITES": "on"}
    if provider == "aws" or (provider == "custom" and not env_endpoint):
        return write_once
    if provider == "r2":
        return {"AWS_REGION": "auto", **write_once}
    if provider == "spaces":
        match = _SPACES_HOST.match(env_endpoint or "")
        if match:
            return {"AWS_REGION": match.group(1)}
        if env_region:
            return {"S3_ENDPOINT_URL": f"https://{env_region}.digitaloceanspaces.com"}
        return {}
    if provider == "minio":
        return {"S3_ADDRESSING_STYLE": "path", **write_once}
    return {}


def _is_loopback_url(url: str | None) -> bool:
    """True when ``url``'s host is a loopback address (``localhost``, 127.0.0.0/8, ``::1``)."""
    host = urlsplit(url or "").hostname
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_local_stack(
    database_url: str | None, s3_endpoint_url: str | None, s3_public_endpoint_url: str | None = None
) -> bool:
    """True when the database, the store and what clients are sent to are all local: SQLite
    (or the default SQLite file), an S3 endpoint on a loopback address (``localhost``,
    127.0.0.0/8, ``::1``) and, when set, a public endpoint on loopback too.

    No endpoint means AWS, which is never local. A public endpoint elsewhere means clients
    on other machines upload there: a served deployment, even on one box.
    """
    if database_url is not None and not database_url.startswith("sqlite"):
        return False
    if s3_public_endpoint_url is not None and not _is_loopback_url(s3_public_endpoint_url):
        return False
    return _is_loopback_url(s3_endpoint_url)


def gunicorn_workers(environ: Mapping[str, str]) -> int:
    """The worker count gunicorn.conf.py gives gunicorn: ``GUNICORN_WORKERS``, else
    (2 x CPU cores) + 1. Under gunicorn the master exports the count it really runs
    (``-w`` included) as ``GUNICORN_WORKERS`` before forking (gunicorn.conf.py ``on_starting``).

    Raises:
        ValueError: ``GUNICORN_WORKERS`` is not an integer (gunicorn.conf.py fails the same way).
    """
    configured = environ.get("GUNICORN_WORKERS")
    return int(configured) if configured else multiprocessing.cpu_count() * 2 + 1


def shared_rate_limit_problem(settings: Settings, workers: int) -> str | None:
    """Why the rate limits would not hold, or None: in production (``APP_ENV=production``)
    with counters in process memory (no ``RATELIMIT_STORAGE_URI``) and more than one
    worker, each worker counts alone, so an owner gets up to ``workers`` times the limit.

    Args:
        settings: the deployment's settings; workers: how many processes serve the app.
    Returns:
        one sentence for the startup log and ``storage check``, or None.
    """
    if settings.environment != "prod" or settings.ratelimit_storage_uri or workers <= 1:
        return None
    return (
        f"RATELIMIT_STORAGE_URI is not set: rate-limit counters are per process, so with {workers} "
        f"workers an owner gets up to {workers} x RATELIMIT_DEFAULT ({settings.ratelimit_default}) and an "
        f"address up to {workers} x RATELIMIT_AUTH_FAILURES; set RATELIMIT_STORAGE_URI=redis://... "
        "(docs/operations.md)"
    )


class ConfigError(RuntimeError):
    """Bad configuration. ``problems`` maps each bad variable to what is wrong with it."""

    def __init__(self, problems: dict[str, str]):
        self.problems = problems
        lines = "\n".join(f"  - {name}: {why}" for name, why in problems.items())
        super().__init__(f"Invalid configuration ({len(problems)} problem(s)):\n{lines}")


def _integer(name: str, default: int, low: int, high: int, why: str = "") -> Any:
    """A field read from variable ``name``: an integer from ``low`` to ``high``.

    ``why`` (where the bound comes from) is appended to the error message.
    """
    return Field(default, ge=low, le=high, validation_alias=name, json_schema_extra={"bound_reason": why})


def _url(value: str | None) -> str | None:
    """``value`` if it is an http(s) URL or None; raises ValueError otherwise."""
    if value is not None and not value.startswith(("http://", "https://")):
        raise ValueError(f"must be an http:// or https:// URL, got {redact_url(value)!r}")
    return value


def _words(value: Any) -> Any:
    """A space- or comma-separated list as written in an env file -> its items."""
    return tuple(value.replace(",", " ").split()) if isinstance(value, str) else value


class Settings(BaseSettings):
    """Validated settings (DESIGN §7), immutable once loaded.

    Durations are in seconds unless the name says ms; sizes in bytes. Each field's
    ``validation_alias`` is its environment variable: the canonical name first, then the
    aliases of earlier setups. Build it with :func:`load_settings`; the model reads only the
    mapping it is given, never the process environment or a ``.env`` file by itself.
    """

    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=True)

    # Validators see earlier fields in ``info.data``: the order below is the order of the rules.
    environment: str = Field("dev", validation_alias=AliasChoices("APP_ENV", "ENV", "FLASK_ENV"))
    key_prefix: str = Field("", validation_alias="S3_KEY_PREFIX")
    database_url: str | None = Field(None, validation_alias="DATABASE_URL")
    s3_bucket: str = Field("", validation_alias=AliasChoices("S3_BUCKET", "S3_BUCKET_NAME"))
    s3_provider: str = Field("custom", validation_alias="S3_PROVIDER")
    aws_region: str = Field("us-east-1", validation_alias=AliasChoices("AWS_REGION", "S3_REGION", "AWS_DEFAULT_REGION"))
    aws_access_key_id: str | None = Field(None, validation_alias=AliasChoices("AWS_ACCESS_KEY_ID", "S3_ACCESS_KEY"))
    aws_secret_access_key: str | None = Field(
        None, validation_alias=AliasChoices("AWS_SECRET_ACCESS_KEY", "S3_SECRET_KEY"), repr=False
    )
    s3_endpoint_url: str | None = Field(None, validation_alias="S3_ENDPOINT_URL")
    s3_public_endpoint_url: str | None = Field(None, validation_alias="S3_PUBLIC_ENDPOINT_URL")
    s3_addressing_style: str = Field("auto", validation_alias="S3_ADDRESSING_STYLE")
    presign_put_expires_seconds: int = _integer(
        "S3_PRESIGN_PUT_EXPIRES_SECONDS", 900, 1, SIGV4_MAX_EXPIRES_SECONDS, _SIGV4
    )
    presign_get_expires_seconds: int = _integer(
        "S3_PRESIGN_GET_EXPIRES_SECONDS", 900, 1, SIGV4_MAX_EXPIRES_SECONDS, _SIGV4
    )
    #: Playback URLs are signed at the start of an epoch-aligned window of this many seconds
    #: and reused within it, so browsers and CDNs can cache the audio (0 = sign at every
    #: request). Less than the GET lifetime (``_get_window``); docs/api.md, "Cacheable playback".
    presign_get_window_seconds: int = _integer(
        "S3_PRESIGN_GET_WINDOW_SECONDS", 300, 0, SIGV4_MAX_EXPIRES_SECONDS - 1, " (0 = off)"
    )
    s3_connect_timeout_seconds: int = _integer("S3_CONNECT_TIMEOUT_SECONDS", 3, 1, 60)
    s3_read_timeout_seconds: int = _integer("S3_READ_TIMEOUT_SECONDS", 5, 1, 300)
    s3_max_attempts: int = _integer("S3_MAX_ATTEMPTS", 2, 1, 10)
    max_upload_bytes: int = _integer("MAX_UPLOAD_BYTES", 104_857_600, 1, 5 * 1024**4, " (S3 objects max 5 TiB)")
    max_duration_ms: int = _integer("MAX_DURATION_MS", 10_800_000, 1, 2**31 - 1)
    max_request_bytes: int = _integer("MAX_REQUEST_BYTES", 65_536, 1024, 10 * 1024**2)
    upload_reservation_seconds: int = _integer("UPLOAD_RESERVATION_SECONDS", 86_400, 60, 365 * 86_400)
    allowed_mime_types: tuple[str, ...] = Field(DEFAULT_ALLOWED_MIME_TYPES, validation_alias="ALLOWED_MIME_TYPES")
    s3_conditional_writes: bool = Field(False, validation_alias="S3_CONDITIONAL_WRITES")
    audio_probe_max_bytes: int = _integer("AUDIO_PROBE_MAX_BYTES", 8 * 1024**2, 64 * 1024, 1024**3)
    # Bytes do not bound work: millions of empty 4-byte FLAC blocks fit in 8 MiB. Real
    # recordings of every container, up to 3 h / 100 MiB, need a few hundred calls at most;
    # parsers keep an object or two per call, so the cap also bounds what a crafted file
    # leaves in a web worker's heap (docs/security.md has the figures).
    audio_probe_max_reads: int = _integer("AUDIO_PROBE_MAX_READS", 5_000, 100, 100_000_000)
    audio_probe_max_seconds: int = _integer("AUDIO_PROBE_MAX_SECONDS", 5, 1, 300)
    # How long one verification holds its clip (single flight); longer than a verification
    # may take (parsing time plus the ranged GETs of the byte budget).
    verification_lease_seconds: int = _integer("VERIFICATION_LEASE_SECONDS", 30, 5, 3600)
    max_pending_uploads_per_owner: int = _integer("MAX_PENDING_UPLOADS_PER_OWNER", 20, 0, 1_000_000, " (0 = off)")
    owner_quota_bytes: int = _integer("OWNER_QUOTA_BYTES", 0, 0, 2**62, " (0 = off)")
    ratelimit_default: str = Field("300 per minute", validation_alias="RATELIMIT_DEFAULT")
    ratelimit_storage_uri: str | None = Field(None, validation_alias="RATELIMIT_STORAGE_URI")
    # Failed authentication attempts (401s) per client address, on the API and storage events.
    ratelimit_auth_failures: str = Field("20 per minute", validation_alias="RATELIMIT_AUTH_FAILURES")
    log_level: str = Field("INFO", validation_alias="LOG_LEVEL")
    log_format: str = Field("json", validation_alias="LOG_FORMAT")
    auth_jwks_url: str | None = Field(None, validation_alias="AUTH_JWKS_URL")
    #: Set only by the dev runner (``advanced-notes dev``): HS256 with the public
    #: :data:`DEV_JWT_SECRET`. Refused outside dev and away from the local embedded stack.
    auth_use_dev_secret: bool = Field(False, validation_alias="AUTH_USE_DEV_SECRET")
    auth_jwt_secret: str | None = Field(None, validation_alias="AUTH_JWT_SECRET", repr=False)
    auth_jwt_issuer: str | None = Field(None, validation_alias="AUTH_JWT_ISSUER")
    auth_jwt_audience: str | None = Field(None, validation_alias="AUTH_JWT_AUDIENCE")
    cors_origins: tuple[str, ...] = Field((), validation_alias="CORS_ORIGINS")
    #: Multipart uploads (docs/multipart.md): the part size the server cuts clips into
    #: (S3 allows 5 MiB..5 GiB), the declared size from which the server chooses multipart
    #: by itself (0 = only when the client asks), and the longest URL lifetime a client may
    #: ask for with ``expires_in`` (at most SigV4's 604800 s).
    multipart_part_size_bytes: int = _integer(
        "MULTIPART_PART_SIZE_BYTES", 8 * 1024**2, 5 * 1024**2, 5 * 1024**3, " (S3 parts are 5 MiB..5 GiB)"
    )
    multipart_threshold_bytes: int = _integer("MULTIPART_THRESHOLD_BYTES", 0, 0, 5 * 1024**4, " (0 = off)")
    presign_max_expires_seconds: int = _integer(
        "S3_PRESIGN_MAX_EXPIRES_SECONDS", 86_400, 1, SIGV4_MAX_EXPIRES_SECONDS, _SIGV4
    )
    # Reverse proxies in front of the app whose X-Forwarded-For/-Proto are trusted (api/proxy.py).
    trusted_proxies: int = _integer("TRUSTED_PROXIES", 0, 0, 10)
    # Seconds /metrics reuses its full-table counts (0 = count on every scrape).
    metrics_cache_seconds: int = _integer("METRICS_CACHE_SECONDS", 5, 0, 300)
    # Longest accepted token lifetime (exp - now), seconds: a leaked long-lived token is forever.
    auth_max_token_lifetime_seconds: int = _integer("AUTH_MAX_TOKEN_LIFETIME_SECONDS", 86_400, 60, 31_536_000)
    # Finishing uploads without the client, and telling others (docs/events.md).
    sweep_complete_grace_seconds: int = _integer("SWEEP_COMPLETE_GRACE_SECONDS", 120, 0, 365 * 86_400)
    storage_events_token: str | None = Field(None, validation_alias="STORAGE_EVENTS_TOKEN", repr=False)
    s3_events_queue_url: str | None = Field(None, validation_alias="S3_EVENTS_QUEUE_URL")
    # Receives after which `events consume` gives up a message it cannot settle (0 = never;
    # a queue with a redrive policy may then move it to its dead-letter queue).
    s3_events_max_receives: int = _integer("S3_EVENTS_MAX_RECEIVES", 10, 0, 1000, " (0 = never give up)")
    webhook_urls: tuple[str, ...] = Field((), validation_alias="WEBHOOK_URLS")
    webhook_secret: str | None = Field(None, validation_alias="WEBHOOK_SECRET", repr=False)
    webhook_timeout_seconds: int = _integer("WEBHOOK_TIMEOUT_SECONDS", 5, 1, 60)
    webhook_give_up_seconds: int = _integer("WEBHOOK_GIVE_UP_SECONDS", 259_200, 60, 30 * 86_400)
    # The processing stage (docs/processing.md): the relay, the Celery worker and its bounds.
    processing_enabled: bool = Field(True, validation_alias="PROCESSING_ENABLED")
    processing_broker_url: str | None = Field(None, validation_alias="PROCESSING_BROKER_URL", repr=False)
    processing_queue: str = Field("advanced-notes-processing", validation_alias="PROCESSING_QUEUE")
    processing_time_limit_seconds: int = _integer("PROCESSING_TIME_LIMIT_SECONDS", 600, 5, 86_400)
    processing_max_memory_mb: int = _integer("PROCESSING_MAX_MEMORY_MB", 512, 64, 65_536)
    processing_max_attempts: int = _integer("PROCESSING_MAX_ATTEMPTS", 5, 1, 100)
    processing_relay_interval_seconds: int = _integer("PROCESSING_RELAY_INTERVAL_SECONDS", 1, 1, 3600)
    processing_republish_seconds: int = _integer("PROCESSING_REPUBLISH_SECONDS", 600, 5, 86_400)
    processing_normalize_audio: bool = Field(False, validation_alias="PROCESSING_NORMALIZE_AUDIO")
    processing_target_lufs: float = Field(-16.0, ge=-40.0, le=-5.0, validation_alias="PROCESSING_TARGET_LUFS")

    @property
    def is_dev(self) -> bool:
        """True in the dev environment, the only one where dev defaults are allowed."""
        return self.environment == "dev"

    @property
    def max_put_url_seconds(self) -> int:
        """The longest lifetime, in seconds, a client may ask for a single-PUT upload URL.

        ``S3_PRESIGN_MAX_EXPIRES_SECONDS``, bounded by ``UPLOAD_RESERVATION_SECONDS`` (a URL
        should not outlive its clip). With ``S3_CONDITIONAL_WRITES`` off an upload URL can
        replace a verified clip's bytes for as long as it lives, so it may live no longer than
        ``S3_PRESIGN_PUT_EXPIRES_SECONDS``: the window docs/security.md promises.
        """
        longest = min(self.presign_max_expires_seconds, self.upload_reservation_seconds)
        return longest if self.s3_conditional_writes else min(longest, self.presign_put_expires_seconds)

    @classmethod
    def variable_names(cls) -> dict[str, tuple[str, ...]]:
        """Field name -> its environment variables, the canonical name first, then aliases."""
        names: dict[str, tuple[str, ...]] = {}
        for field_name, info in cls.model_fields.items():
            alias = info.validation_alias
            if isinstance(alias, AliasChoices):
                names[field_name] = tuple(str(choice) for choice in alias.choices)
            else:
                names[field_name] = (str(alias),)
        return names

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only what the caller passes: no implicit ``os.environ``, ``.env`` or secrets dir."""
        return (init_settings,)

    @model_validator(mode="before")
    @classmethod
    def _provider_preset(cls, data: Any) -> Any:
        """Fill the preset's defaults (:func:`provider_defaults`) where none of a variable's names is set."""
        if not isinstance(data, Mapping):
            return data
        env = dict(data)
        names = {variables[0]: variables for variables in cls.variable_names().values()}

        def first(variable: str) -> str | None:
            return next((env[name] for name in names[variable] if env.get(name) is not None), None)

        provider = str(env.get("S3_PROVIDER") or "custom").lower()
        for variable, value in provider_defaults(provider, first("S3_ENDPOINT_URL"), first("AWS_REGION")).items():
            if first(variable) is None:
                env[variable] = value
        return env

    @field_validator("environment")
    @classmethod
    def _environment(cls, value: str) -> str:
        # production/live -> prod, development/local -> dev, staging/stage -> staging (DESIGN §8)
        return normalize_prefix(value)

    @field_validator("key_prefix")
    @classmethod
    def _key_prefix(cls, value: str, info: ValidationInfo) -> str:
        # S3_KEY_PREFIX overrides the environment name as the prefix, normalized the same way.
        return normalize_prefix(value) if value else str(info.data["environment"])

    @field_validator("s3_bucket")
    @classmethod
    def _bucket(cls, value: str, info: ValidationInfo) -> str:
        # DESIGN §7: a bucket is required outside dev; dev has its own so it runs as cloned.
        if value:
            return value
        environment = info.data["environment"]
        if environment == "dev":
            return DEV_BUCKET
        raise ValueError(f"is required outside dev (environment is {environment!r})")

    @field_validator(*_CHOICES)
    @classmethod
    def _one_of(cls, value: str, info: ValidationInfo) -> str:
        # Any case is accepted; the value is kept in the case of its choices (INFO, path).
        choices = _CHOICES[str(info.field_name)]
        value = value.upper() if choices[0].isupper() else value.lower()
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    @field_validator("aws_secret_access_key")
    @classmethod
    def _key_pair(cls, value: str | None, info: ValidationInfo) -> str | None:
        # A half-set pair would silently fall back to boto3's chain for the other half.
        key_id = info.data.get("aws_access_key_id")
        if (key_id is None) != (value is None):
            raise PydanticCustomError(
                "credentials_pair",
                "access key id and secret access key must be set together",
                {"variable": "AWS_SECRET_ACCESS_KEY" if value is None else "AWS_ACCESS_KEY_ID"},
            )
        return value

    @field_validator("s3_endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None, info: ValidationInfo) -> str | None:
        provider = info.data.get("s3_provider", "custom")
        if value is None and provider in _ENDPOINT_EXAMPLES:
            raise ValueError(f"is required for S3_PROVIDER={provider}, e.g. {_ENDPOINT_EXAMPLES[provider]}")
        return _url(value)

    @field_validator("s3_public_endpoint_url")
    @classmethod
    def _public_endpoint(cls, value: str | None, info: ValidationInfo) -> str | None:
        # Clients use the endpoint the API talks to unless told otherwise.
        return _url(value) if value is not None else info.data.get("s3_endpoint_url")

    @field_validator("auth_jwks_url")
    @classmethod
    def _jwks_url(cls, value: str | None) -> str | None:
        return _url(value)

    @field_validator("upload_reservation_seconds")
    @classmethod
    def _reservation(cls, value: int, info: ValidationInfo) -> int:
        # The sweeper may expire a pending clip after this; its PUT URL must be dead by then.
        # A bad PUT lifetime is missing from info.data: it has its own error, nothing to compare.
        put = info.data.get("presign_put_expires_seconds")
        if put is not None and value < put:
            raise ValueError(
                "must be at least S3_PRESIGN_PUT_EXPIRES_SECONDS, or a clip could expire while its PUT URL still works"
            )
        return value

    @field_validator("presign_get_window_seconds")
    @classmethod
    def _get_window(cls, value: int, info: ValidationInfo) -> int:
        # A playback URL is answered until its window ends, so it must outlive the window: every
        # answered URL then has at least (GET lifetime - window) seconds left. A bad GET lifetime
        # is missing from info.data: it has its own error, nothing to compare.
        expires = info.data.get("presign_get_expires_seconds")
        if value and expires is not None and value >= expires:
            raise ValueError(
                f"must be less than S3_PRESIGN_GET_EXPIRES_SECONDS ({expires}), or 0 to sign at every request: "
                "a playback URL must outlive the window in which it is handed out"
            )
        return value

    @field_validator("allowed_mime_types", mode="before")
    @classmethod
    def _mime_types(cls, value: Any) -> Any:
        # Only types with a known object key extension (DESIGN §8); raises ValueError otherwise.
        return parse_allowed_mime_types(_words(value)) if isinstance(value, str) else value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> Any:
        return _words(value)

    @field_validator("storage_events_token")
    @classmethod
    def _storage_events_token(cls, value: str | None) -> str | None:
        # The only credential of POST /api/storage-events: a guessable token authenticates nobody.
        if value is not None and len(value.encode()) < MIN_STORAGE_EVENTS_TOKEN_BYTES:
            raise ValueError(
                f"must be at least {MIN_STORAGE_EVENTS_TOKEN_BYTES} bytes, got {len(value.encode())} "
                '(generate one with: python -c "import secrets; print(secrets.token_urlsafe(32))")'
            )
        return value

    @field_validator("s3_events_queue_url")
    @classmethod
    def _queue_url(cls, value: str | None) -> str | None:
        return _url(value)

    @field_validator("processing_broker_url")
    @classmethod
    def _broker_url(cls, value: str | None) -> str | None:
        if value is not None and "://" not in value:
            raise ValueError("must be a Celery broker URL such as redis://host:6379/0 or sqla+sqlite:///broker.sqlite")
        return value or None

    @field_validator("processing_queue")
    @classmethod
    def _queue_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,200}", value):
            raise ValueError("must be 1 to 200 of A-Z a-z 0-9 . _ -")
        return value

    @field_validator("webhook_urls", mode="before")
    @classmethod
    def _webhook_urls(cls, value: Any) -> Any:
        urls = _words(value)
        for url in urls if isinstance(urls, tuple) else ():
            _url(url)
        return urls

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: str | None, info: ValidationInfo) -> str | None:
        # Standard Webhooks secrets: whsec_ + base64 of 24..64 random bytes (the spec's range).
        if value is None:
            if info.data.get("webhook_urls", "bad"):  # a bad WEBHOOK_URLS counts as set
                raise ValueError("is required when WEBHOOK_URLS is set (whsec_ + base64, Standard Webhooks)")
            return value
        body = value.removeprefix("whsec_")
        try:
            raw = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if not 24 <= len(raw) <= 64:
            raise ValueError("must be whsec_ followed by base64 of 24 to 64 random bytes")
        return value

    @field_validator("ratelimit_default", "ratelimit_auth_failures")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        try:
            parse_many(value)
        except ValueError:
            raise ValueError(
                f"must be a rate limit such as '300 per minute' or '10/second;1000/hour', got {value!r}"
            ) from None
        return value

    @field_validator("auth_use_dev_secret")
    @classmethod
    def _use_dev_secret(cls, value: bool, info: ValidationInfo) -> bool:
        # The flag says "this is the dev runner": it must also look like it, so a copied env
        # file cannot turn the public secret on for a served app.
        if not value:
            return value
        environment = info.data["environment"]
        if environment != "dev":
            raise ValueError(f"is only for `advanced-notes dev`; refused outside dev (environment is {environment!r})")
        urls = (info.data.get(name) for name in ("database_url", "s3_endpoint_url", "s3_public_endpoint_url"))
        if not is_local_stack(*urls):
            raise ValueError(
                "is only for `advanced-notes dev`: it needs SQLite and loopback S3_ENDPOINT_URL and "
                "S3_PUBLIC_ENDPOINT_URL; set AUTH_JWT_SECRET or AUTH_JWKS_URL instead"
            )
        return value

    @field_validator("auth_jwt_secret")
    @classmethod
    def _jwt_secret(cls, value: str | None, info: ValidationInfo) -> str | None:
        # Whatever APP_ENV says: an HS256 secret of at least MIN_JWT_SECRET_BYTES (RFC 7518
        # §3.2), or JWKS keys, or both. "dev" is also what an *unset* APP_ENV means, so the
        # environment decides nothing here. The public dev secret only with the dev runner's
        # explicit AUTH_USE_DEV_SECRET=on (its own validator checks where that is allowed).
        if info.data.get("auth_use_dev_secret"):
            if value not in (None, DEV_JWT_SECRET):
                raise ValueError("must be unset with AUTH_USE_DEV_SECRET=on (that flag selects the public dev secret)")
            return DEV_JWT_SECRET
        # A bad AUTH_JWKS_URL is missing from info.data: it counts as set (its own error says why).
        jwks_set = info.data.get("auth_jwks_url", "bad") is not None
        if value == DEV_JWT_SECRET:
            raise ValueError(
                "is the public dev secret, which only `advanced-notes dev` uses; set a random secret "
                f"of at least {MIN_JWT_SECRET_BYTES} bytes"
            )
        if value is None and not jwks_set and _uses_tokens(info):
            raise ValueError(
                f"is required (at least {MIN_JWT_SECRET_BYTES} random bytes) unless AUTH_JWKS_URL is set "
                f"(environment is {info.data['environment']!r}); to try the API locally, run `advanced-notes dev`"
            )
        if value is not None and len(value.encode()) < MIN_JWT_SECRET_BYTES:
            raise ValueError(f"must be at least {MIN_JWT_SECRET_BYTES} bytes for HS256, got {len(value.encode())}")
        return value

    @field_validator("auth_jwt_audience")
    @classmethod
    def _audience(cls, value: str | None, info: ValidationInfo) -> str | None:
        # An identity provider signs tokens for every app it serves with the same keys: with
        # JWKS and no audience, a token minted for another app would be accepted here.
        # HS256 secrets are this service's own, so no audience is needed there.
        if value is None and info.data.get("auth_jwks_url") is not None and _uses_tokens(info):
            raise ValueError("is required with AUTH_JWKS_URL: your identity provider's audience for this API")
        return value


#: False while :func:`load_settings` validates for a process that verifies and mints no tokens.
#: A context variable: BaseSettings re-runs validation in its ``__init__``, which drops
#: pydantic's ``context`` argument.
_TOKENS_USED: ContextVar[bool] = ContextVar("tokens_used", default=True)


def _uses_tokens(info: ValidationInfo) -> bool:
    """False when :func:`load_settings` was told the process verifies and mints no tokens."""
    return _TOKENS_USED.get()


def _message(info: FieldInfo, error: Any) -> str:
    """Pydantic's error for one field, in the words the operator reads at startup."""
    if error["type"] == "value_error":
        return str(error["ctx"]["error"])
    raw = error.get("input")
    if info.annotation is int:
        low = next(m.ge for m in info.metadata if hasattr(m, "ge"))
        high = next(m.le for m in info.metadata if hasattr(m, "le"))
        extra = info.json_schema_extra
        why = extra.get("bound_reason", "") if isinstance(extra, dict) else ""
        return f"must be an integer from {low} to {high}{why}, got {raw!r}"
    if info.annotation is bool:
        return f"must be on or off, got {raw!r}"
    return str(error["msg"])


def _config_error(exc: ValidationError) -> ConfigError:
    """Turn pydantic's ``ValidationError`` into :class:`ConfigError` keyed by variable name.

    Each problem is filed under the field's canonical environment variable (``S3_BUCKET``
    even when ``S3_BUCKET_NAME`` was set), or under the variable an error names itself
    (``ctx["variable"]``, e.g. the missing half of the access key pair).
    """
    names = Settings.variable_names()
    field_of = {name: field for field, variables in names.items() for name in (field, *variables)}
    problems: dict[str, str] = {}
    for error in exc.errors(include_url=False):
        field = field_of.get(str(error["loc"][0])) if error["loc"] else None
        if field is None:
            problems.setdefault("configuration", str(error["msg"]))
            continue
        variable = (error.get("ctx") or {}).get("variable") or names[field][0]
        problems.setdefault(variable, _message(Settings.model_fields[field], error))
    return ConfigError(problems)


def load_settings(env: Mapping[str, str], *, tokens: bool = True) -> Settings:
    """Build :class:`Settings` from environment variables (DESIGN §7).

    Reads ``env`` only (never ``os.environ`` or ``.env`` by itself). Unset, None and blank
    values all mean "use the default".

    Args:
        env: variable name -> string value, e.g. ``os.environ`` merged with a test dict.
        tokens: False for a process that verifies and mints no tokens (``storage check``,
            ``sweep``, ...): then no token key (``AUTH_JWT_SECRET``/``AUTH_JWKS_URL``) nor
            audience is required; values that are set are still checked.
    Returns:
        the validated settings.
    Raises:
        ConfigError: one message naming every bad variable (bad integer, expiry outside
            1..604800, unknown addressing style, missing bucket outside dev, a missing,
            public or short (< 32 bytes) JWT secret, a short storage events token, ...).
    """
    # Blank means unset, as in an env file's "S3_BUCKET=": the default (or the next alias) applies.
    variables = {name: str(value).strip() for name, value in env.items() if value is not None and str(value).strip()}
    try:
        reset = _TOKENS_USED.set(tokens)
        try:
            return Settings.model_validate(variables)
        finally:
            _TOKENS_USED.reset(reset)
    except ValidationError as exc:
        raise _config_error(exc) from None

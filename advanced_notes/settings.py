"""Settings (DESIGN §7): read once from the environment, validated at startup.

:func:`load_settings` turns a mapping of environment variables into a frozen
:class:`Settings`, or raises :class:`ConfigError` with one message naming every bad
variable, so an operator fixes a deployment in one pass instead of one error per restart.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from advanced_notes.domain.keys import environment_name, resolve_prefix
from advanced_notes.domain.mime import (
    DEFAULT_ALLOWED_MIME_TYPES,
    parse_allowed_mime_types,
)

#: S3 SigV4 presigned URLs live at most 7 days (604800 s); AWS refuses longer ones.
SIGV4_MAX_EXPIRES_SECONDS = 604_800
#: Signing secret used only in the dev environment; refused anywhere else.
DEV_JWT_SECRET = "dev-only-insecure-jwt-secret-change-me"
#: HS256 keys shorter than the hash output (32 bytes) are brute-forceable (RFC 7518 §3.2).
MIN_JWT_SECRET_BYTES = 32
DEV_BUCKET = "advanced-notes-dev"
ADDRESSING_STYLES = ("auto", "path", "virtual")
PROVIDERS = ("aws", "r2", "spaces", "minio", "custom")
_SPACES_HOST = re.compile(r"^https://([a-z0-9-]+)\.digitaloceanspaces\.com/?$")


def provider_defaults(provider: str, env_endpoint: str | None, env_region: str | None) -> dict[str, str]:
    """Defaults a provider preset fills in; explicit settings override every one.

    - ``r2``: region ``auto`` (R2's only signing region). No ACL is ever signed anyway.
    - ``spaces``: region from the endpoint's host (``nyc3.digitaloceanspaces.com`` -> ``nyc3``),
      or the endpoint from the region.
    - ``minio``: path-style addressing (MinIO behind one host name or an IP address).
    - ``aws``, ``custom``: nothing.

    Returns:
        setting name -> default value.
    """
    if provider == "r2":
        return {"AWS_REGION": "auto"}
    if provider == "spaces":
        match = _SPACES_HOST.match(env_endpoint or "")
        if match:
            return {"AWS_REGION": match.group(1)}
        if env_region:
            return {"S3_ENDPOINT_URL": f"https://{env_region}.digitaloceanspaces.com"}
        return {}
    if provider == "minio":
        return {"S3_ADDRESSING_STYLE": "path"}
    return {}


# Canonical name first, then the aliases users of earlier setups have in their env files.
_ALIASES: dict[str, tuple[str, ...]] = {
    "S3_BUCKET": ("S3_BUCKET", "S3_BUCKET_NAME"),
    "AWS_REGION": ("AWS_REGION", "S3_REGION", "AWS_DEFAULT_REGION"),
    "AWS_ACCESS_KEY_ID": ("AWS_ACCESS_KEY_ID", "S3_ACCESS_KEY"),
    "AWS_SECRET_ACCESS_KEY": ("AWS_SECRET_ACCESS_KEY", "S3_SECRET_KEY"),
}


class ConfigError(RuntimeError):
    """Bad configuration. ``problems`` maps each bad variable to what is wrong with it."""

    def __init__(self, problems: dict[str, str]):
        self.problems = problems
        lines = "\n".join(f"  - {name}: {why}" for name, why in problems.items())
        super().__init__(f"Invalid configuration ({len(problems)} problem(s)):\n{lines}")


@dataclass(frozen=True)
class Settings:
    """Validated settings. Durations are in seconds unless the name says ms; sizes in bytes."""

    environment: str
    key_prefix: str
    database_url: str | None
    s3_bucket: str
    s3_provider: str
    aws_region: str
    aws_access_key_id: str | None
    aws_secret_access_key: str | None
    s3_endpoint_url: str | None
    s3_public_endpoint_url: str | None
    s3_addressing_style: str
    presign_put_expires_seconds: int
    presign_get_expires_seconds: int
    s3_connect_timeout_seconds: int
    s3_read_timeout_seconds: int
    s3_max_attempts: int
    max_upload_bytes: int
    max_duration_ms: int
    max_request_bytes: int
    upload_reservation_seconds: int
    allowed_mime_types: tuple[str, ...]
    s3_conditional_writes: bool
    audio_probe_max_bytes: int
    max_pending_uploads_per_owner: int
    owner_quota_bytes: int
    ratelimit_default: str
    ratelimit_storage_uri: str | None
    log_level: str
    log_format: str
    auth_jwt_secret: str | None
    auth_jwks_url: str | None
    auth_jwt_issuer: str | None
    auth_jwt_audience: str | None
    cors_origins: tuple[str, ...] = field(default_factory=tuple)
    #: Multipart uploads (docs/multipart.md): the part size the server cuts clips into
    #: (bytes, S3 allows 5 MiB..5 GiB), the declared size from which the server chooses
    #: multipart by itself (0 = only when the client asks), and the longest URL lifetime
    #: a client may ask for with ``expires_in`` (seconds, at most SigV4's 604800).
    multipart_part_size_bytes: int = 8 * 1024**2
    multipart_threshold_bytes: int = 0
    presign_max_expires_seconds: int = 86_400

    @property
    def is_dev(self) -> bool:
        """True in the dev environment, the only one where dev defaults are allowed."""
        return self.environment == "dev"


class _Reader:
    """Reads variables from a mapping and collects every problem instead of stopping at the first."""

    def __init__(self, env: Mapping[str, str]):
        self.env = env
        self.problems: dict[str, str] = {}

    def text(self, name: str, default: str | None = None) -> str | None:
        for candidate in _ALIASES.get(name, (name,)):
            value = self.env.get(candidate)
            if value is not None and str(value).strip():
                return str(value).strip()
        return default

    def integer(self, name: str, default: int, low: int, high: int, why: str = "") -> int:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            self.problems[name] = f"must be an integer from {low} to {high}{why}, got {raw!r}"
            return default
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.text(name)
        if raw is None:
            return default
        value = {
            "1": True,
            "true": True,
            "on": True,
            "yes": True,
            "0": False,
            "false": False,
            "off": False,
            "no": False,
        }.get(raw.lower())
        if value is None:
            self.problems[name] = f"must be on or off, got {raw!r}"
            return default
        return value

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        raw = self.text(name, default) or default
        value = raw.upper() if choices[0].isupper() else raw.lower()
        if value not in choices:
            self.problems[name] = f"must be one of {', '.join(choices)}, got {raw!r}"
            return default
        return value

    def rate_limit(self, name: str, default: str) -> str:
        raw = self.text(name, default) or default
        from limits import (
            parse_many,  # flask-limiter's own parser: the same syntax it enforces
        )

        try:
            parse_many(raw)
        except ValueError:
            self.problems[name] = f"must be a rate limit such as '300 per minute' or '10/second;1000/hour', got {raw!r}"
            return default
        return raw

    def url(self, name: str) -> str | None:
        value = self.text(name)
        if value is not None and not value.startswith(("http://", "https://")):
            self.problems[name] = f"must be an http:// or https:// URL, got {value!r}"
        return value


def load_settings(env: Mapping[str, str]) -> Settings:
    """Build :class:`Settings` from environment variables (DESIGN §7).

    Args:
        env: variable name -> string value, e.g. ``os.environ`` merged with a test dict.
    Returns:
        the validated settings.
    Raises:
        ConfigError: one message naming every bad variable (bad integer, expiry outside
            1..604800, unknown addressing style, missing bucket or default/short JWT secret
            outside dev, ...).
    """
    r = _Reader(env)
    provider = (r.text("S3_PROVIDER", "custom") or "custom").lower()
    if provider not in PROVIDERS:
        r.problems["S3_PROVIDER"] = f"must be one of {', '.join(PROVIDERS)}, got {provider!r}"
        provider = "custom"
    preset = provider_defaults(provider, r.text("S3_ENDPOINT_URL"), r.text("AWS_REGION"))
    if provider in ("r2", "spaces", "minio") and not (r.text("S3_ENDPOINT_URL") or preset.get("S3_ENDPOINT_URL")):
        example = {
            "r2": "https://<account id>.r2.cloudflarestorage.com",
            "spaces": "https://nyc3.digitaloceanspaces.com (or set AWS_REGION=nyc3)",
            "minio": "http://minio:9000",
        }[provider]
        r.problems["S3_ENDPOINT_URL"] = f"is required for S3_PROVIDER={provider}, e.g. {example}"
    environment = environment_name(env)
    is_dev = environment == "dev"
    sigv4 = " (S3 SigV4 presigned URLs live at most 604800 s)"

    bucket = r.text("S3_BUCKET")
    if bucket is None:
        if is_dev:
            bucket = DEV_BUCKET
        else:
            r.problems["S3_BUCKET"] = f"is required outside dev (environment is {environment!r})"
            bucket = ""

    style = (r.text("S3_ADDRESSING_STYLE", preset.get("S3_ADDRESSING_STYLE", "auto")) or "auto").lower()
    if style not in ADDRESSING_STYLES:
        r.problems["S3_ADDRESSING_STYLE"] = f"must be one of {', '.join(ADDRESSING_STYLES)}, got {style!r}"

    access_key, secret_key = r.text("AWS_ACCESS_KEY_ID"), r.text("AWS_SECRET_ACCESS_KEY")
    if (access_key is None) != (secret_key is None):
        name = "AWS_SECRET_ACCESS_KEY" if secret_key is None else "AWS_ACCESS_KEY_ID"
        r.problems[name] = "access key id and secret access key must be set together"

    endpoint = r.url("S3_ENDPOINT_URL") or preset.get("S3_ENDPOINT_URL")
    public_endpoint = r.url("S3_PUBLIC_ENDPOINT_URL") or endpoint

    jwks_url = r.url("AUTH_JWKS_URL")
    secret = r.text("AUTH_JWT_SECRET")
    if not is_dev:
        if secret == DEV_JWT_SECRET:
            r.problems["AUTH_JWT_SECRET"] = "is the public dev secret; set a random secret outside dev"
        elif secret is None and jwks_url is None:
            r.problems["AUTH_JWT_SECRET"] = (
                f"is required outside dev (environment is {environment!r}) unless AUTH_JWKS_URL is set"
            )
        elif secret is not None and len(secret.encode()) < MIN_JWT_SECRET_BYTES:
            r.problems["AUTH_JWT_SECRET"] = f"must be at least {MIN_JWT_SECRET_BYTES} bytes for HS256"
    elif secret is None and jwks_url is None:
        secret = DEV_JWT_SECRET

    allowed = DEFAULT_ALLOWED_MIME_TYPES
    raw_allowed = r.text("ALLOWED_MIME_TYPES")
    if raw_allowed is not None:
        try:
            allowed = parse_allowed_mime_types(raw_allowed.replace(",", " ").split())
        except ValueError as exc:
            r.problems["ALLOWED_MIME_TYPES"] = str(exc)

    settings = Settings(
        environment=environment,
        key_prefix=resolve_prefix(env),
        database_url=r.text("DATABASE_URL"),
        s3_bucket=bucket,
        s3_provider=provider,
        aws_region=r.text("AWS_REGION", preset.get("AWS_REGION", "us-east-1")) or "us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        s3_endpoint_url=endpoint,
        s3_public_endpoint_url=public_endpoint,
        s3_addressing_style=style,
        presign_put_expires_seconds=r.integer(
            "S3_PRESIGN_PUT_EXPIRES_SECONDS", 900, 1, SIGV4_MAX_EXPIRES_SECONDS, sigv4
        ),
        presign_get_expires_seconds=r.integer(
            "S3_PRESIGN_GET_EXPIRES_SECONDS", 900, 1, SIGV4_MAX_EXPIRES_SECONDS, sigv4
        ),
        s3_connect_timeout_seconds=r.integer("S3_CONNECT_TIMEOUT_SECONDS", 3, 1, 60),
        s3_read_timeout_seconds=r.integer("S3_READ_TIMEOUT_SECONDS", 5, 1, 300),
        s3_max_attempts=r.integer("S3_MAX_ATTEMPTS", 2, 1, 10),
        max_upload_bytes=r.integer("MAX_UPLOAD_BYTES", 104_857_600, 1, 5 * 1024**4, " (S3 objects max 5 TiB)"),
        max_duration_ms=r.integer("MAX_DURATION_MS", 10_800_000, 1, 2**31 - 1),
        max_request_bytes=r.integer("MAX_REQUEST_BYTES", 65_536, 1024, 10 * 1024**2),
        upload_reservation_seconds=r.integer("UPLOAD_RESERVATION_SECONDS", 86_400, 60, 365 * 86_400),
        allowed_mime_types=allowed,
        s3_conditional_writes=r.boolean("S3_CONDITIONAL_WRITES", False),
        audio_probe_max_bytes=r.integer("AUDIO_PROBE_MAX_BYTES", 8 * 1024**2, 64 * 1024, 1024**3),
        max_pending_uploads_per_owner=r.integer("MAX_PENDING_UPLOADS_PER_OWNER", 20, 0, 1_000_000, " (0 = off)"),
        owner_quota_bytes=r.integer("OWNER_QUOTA_BYTES", 0, 0, 2**62, " (0 = off)"),
        ratelimit_default=r.rate_limit("RATELIMIT_DEFAULT", "300 per minute"),
        ratelimit_storage_uri=r.text("RATELIMIT_STORAGE_URI"),
        log_level=r.choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
        log_format=r.choice("LOG_FORMAT", "json", ("json", "text")),
        auth_jwt_secret=secret,
        auth_jwks_url=jwks_url,
        auth_jwt_issuer=r.text("AUTH_JWT_ISSUER"),
        auth_jwt_audience=r.text("AUTH_JWT_AUDIENCE"),
        cors_origins=tuple((r.text("CORS_ORIGINS") or "").replace(",", " ").split()),
        multipart_part_size_bytes=r.integer(
            "MULTIPART_PART_SIZE_BYTES", 8 * 1024**2, 5 * 1024**2, 5 * 1024**3, " (S3 parts are 5 MiB..5 GiB)"
        ),
        multipart_threshold_bytes=r.integer("MULTIPART_THRESHOLD_BYTES", 0, 0, 5 * 1024**4, " (0 = off)"),
        presign_max_expires_seconds=r.integer(
            "S3_PRESIGN_MAX_EXPIRES_SECONDS", 86_400, 1, SIGV4_MAX_EXPIRES_SECONDS, sigv4
        ),
    )
    if settings.upload_reservation_seconds < settings.presign_put_expires_seconds:
        r.problems["UPLOAD_RESERVATION_SECONDS"] = (
            "must be at least S3_PRESIGN_PUT_EXPIRES_SECONDS, or a clip could expire while its PUT URL still works"
        )
    if r.problems:
        raise ConfigError(r.problems)
    return settings

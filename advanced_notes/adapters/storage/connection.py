"""The one botocore session and its S3 clients, shared by every job of the storage adapter.

Built once per process and shared by every request (DESIGN §6 rule 1: building a client
costs milliseconds, a presign microseconds). Every botocore failure leaves the adapter
through :func:`store_errors` as :class:`~advanced_notes.domain.errors.StorageUnavailable`,
so callers never see botocore types.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import botocore.session
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from botocore.utils import percent_encode

from advanced_notes.adapters.storage.botodata import LightLoader
from advanced_notes.domain.clock import utcnow
from advanced_notes.domain.errors import StorageUnavailable
from advanced_notes.settings import Settings

# One logger for the whole adapter, whichever of its modules logs.
log = logging.getLogger("advanced_notes.adapters.storage")

#: A stand-in key: the URL builder's URL for it shows where every object's key goes.
_MARK = "k"

#: Error codes of a missing object or bucket (HEAD answers a bare 404).
MISSING_CODES = {"404", "NoSuchKey", "NotFound"}


def error_code(exc: ClientError) -> str:
    """The S3 error code of a refused call (``NoSuchKey``, ``404``...), or ``""``."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def client_config(settings: Settings) -> Config:
    """The botocore Config every client uses (DESIGN §6 rules 2-4, and bounded failures).

    - ``signature_version="s3v4"``: otherwise botocore still presigns SigV2 for us-east-1.
    - checksums ``when_required``: botocore's default CRC checksums (since 1.36) break
      uploads on R2, B2 and older MinIO/Spaces.
    - connect/read timeouts and ``standard`` retries so a dead store fails in seconds.
    """
    return Config(
        region_name=settings.aws_region,
        signature_version="s3v4",
        s3={"addressing_style": settings.s3_addressing_style},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        connect_timeout=settings.s3_connect_timeout_seconds,
        read_timeout=settings.s3_read_timeout_seconds,
        retries={"total_max_attempts": settings.s3_max_attempts, "mode": "standard"},
    )


@dataclass(frozen=True)
class PresignedRequest:
    """A presigned URL and what the client must send with it.

    Attributes:
        method: ``PUT`` or ``GET``.
        url: the SigV4 presigned URL.
        headers: every header signed into the URL (besides ``host``) with its exact value.
        expires_at: aware UTC time after which the store refuses the URL.
        cache_seconds: how long an answer carrying this URL may be reused, in seconds (at
            least 1): until the URL's signing window ends, or its expiry if sooner. None:
            the URL was signed for this request alone (PUT URLs, or no playback window).
    """

    method: str
    url: str
    expires_at: dt.datetime
    headers: dict[str, str] = field(default_factory=dict)
    cache_seconds: int | None = None


def new_session(settings: Settings) -> botocore.session.Session:
    """A botocore session with the settings' region and credentials (else botocore's chain).

    botocore's own session, as boto3 builds it for its clients, without boto3: the request
    path needs none of boto3's resources and managed transfers (the worker's transfers
    load them, :mod:`~advanced_notes.adapters.storage.transfers`). Its data loader gives
    the cut endpoint table (:mod:`~advanced_notes.adapters.storage.botodata`).
    """
    session = botocore.session.get_session()
    session.register_component("data_loader", LightLoader(session.get_config_variable("data_path")))
    if settings.aws_access_key_id or settings.aws_secret_access_key:
        session.set_credentials(settings.aws_access_key_id, settings.aws_secret_access_key)
    session.set_config_variable("region", settings.aws_region)
    return session


@contextmanager
def store_errors(action: str, unreachable: tuple[type[Exception], ...] = ()) -> Iterator[None]:
    """Turn every botocore failure inside the block into StorageUnavailable.

    Args:
        action: what was attempted, as the message names it (``"HEAD"``, ``"ListParts"``).
        unreachable: more exception types that mean the store could not be reached (the
            managed transfers' own, raised by boto3).
    Raises:
        StorageUnavailable: with the failure as its ``__cause__`` (callers that tell a
            missing object from an outage read the cause's error code).
    """
    try:
        yield
    except ClientError as exc:
        code = error_code(exc) or "?"
        log.warning("storage %s failed: %s", action, code)
        raise StorageUnavailable(f"The object store refused {action} ({code}); retry later.") from exc
    except (BotoCoreError, *unreachable) as exc:
        log.warning("storage %s failed: %s", action, exc.__class__.__name__)
        raise StorageUnavailable(f"The object store could not be reached for {action}; retry later.") from exc


class StoreConnection:
    """One bucket, reached through one botocore session: the base of each job's class.

    Args:
        settings: bucket, region, credentials, endpoints, addressing style.

    Three clients share one Config: ``_client`` talks to ``S3_ENDPOINT_URL`` (possibly an
    internal address); ``_presigner`` signs URLs for ``S3_PUBLIC_ENDPOINT_URL`` because
    SigV4 signs the Host header, so a URL signed for another host fails with
    SignatureDoesNotMatch (DESIGN §6 rule 5); ``_url_builder`` is the presigner without
    credentials, which builds URLs unsigned for a signer that picks the signing time
    (:mod:`~advanced_notes.adapters.storage.signing`). Building them makes no network call.
    """

    def __init__(self, settings: Settings):
        self.bucket = settings.s3_bucket
        self.region = settings.aws_region
        self._session = session = new_session(settings)
        config = client_config(settings)
        self._client: Any = session.create_client("s3", endpoint_url=settings.s3_endpoint_url, config=config)
        self._presigner: Any = (
            self._client
            if settings.s3_public_endpoint_url == settings.s3_endpoint_url
            else session.create_client("s3", endpoint_url=settings.s3_public_endpoint_url, config=config)
        )
        self._url_builder: Any = session.create_client(
            "s3", endpoint_url=settings.s3_public_endpoint_url, config=config.merge(Config(signature_version=UNSIGNED))
        )

    @property
    def temporary_credentials(self) -> bool:
        """True when URLs are signed with temporary credentials (a session token: STS,
        an IAM role, a container's credentials); their URLs stop working when they expire."""
        credentials = self._session.get_credentials()
        return credentials is not None and bool(credentials.get_frozen_credentials().token)

    def credentials_expire_at(self) -> dt.datetime | None:
        """When the signing credentials expire (aware UTC), or None for long-term keys.

        botocore keeps the expiry of refreshable credentials (instance/container roles,
        assumed roles, SSO) in ``_expiry_time``; it has no public accessor. Static
        credentials with a session token have no known expiry: None too (``storage
        check`` warns about them through :attr:`temporary_credentials`).
        """
        credentials = self._session.get_credentials()
        expiry = getattr(credentials, "_expiry_time", None)
        if not isinstance(expiry, dt.datetime):
            return None
        return expiry if expiry.tzinfo else expiry.replace(tzinfo=dt.UTC)

    @cached_property
    def _object_url_base(self) -> str:
        """The unsigned URL of the bucket's objects up to the key (scheme, host, bucket path).

        Built once by the URL builder (the public endpoint and addressing style), so a PUT
        URL costs no endpoint resolution: every object URL of the bucket starts alike and
        ends with the key, which is all that differs.
        """
        url: str = self._url_builder.generate_presigned_url("put_object", Params={"Bucket": self.bucket, "Key": _MARK})
        if not url.endswith("/" + _MARK):
            raise RuntimeError(f"unexpected object URL shape from botocore: {url!r}")
        return url[: -len(_MARK)]

    def _object_url(self, key: str) -> str:
        """The unsigned URL of ``key``, the key escaped as botocore's serializer does (S3's
        greedy ``{Key+}`` label: everything but ``/`` and ``~`` of RFC 3986's reserved set)."""
        escaped: str = percent_encode(key, safe="/~")
        return self._object_url_base + escaped

    @cached_property
    def _signing_region(self) -> str:
        """The region of the credential scope: the presigning client's, as botocore signs with."""
        region: str = self._presigner.meta.region_name
        return region

    def _signing_credentials(self) -> Any:
        """Frozen credentials to sign with now (refreshed by botocore when they expire).

        Raises:
            NoCredentialsError: none are configured (inside store_errors: StorageUnavailable).
        """
        credentials = self._session.get_credentials()
        if credentials is None:
            raise NoCredentialsError()
        return credentials.get_frozen_credentials()

    def _presign(
        self, operation: str, params: Mapping[str, object], expires: int, method: str, headers: dict[str, str]
    ) -> PresignedRequest:
        # Taken before signing so the reported expiry is never later than the real one.
        signed_at = utcnow().replace(microsecond=0)
        with store_errors("presigning"):
            url = self._presigner.generate_presigned_url(operation, Params=params, ExpiresIn=expires)
        return PresignedRequest(method, url, self._expiry(signed_at, expires), headers)

    def _expiry(self, signed_at: dt.datetime, expires: int) -> dt.datetime:
        """When a URL signed at ``signed_at`` for ``expires`` seconds stops working (aware UTC)."""
        expires_at = signed_at + dt.timedelta(seconds=expires)
        # A URL signed with temporary credentials dies with them, whatever X-Amz-Expires says.
        credentials_expire_at = self.credentials_expire_at()
        if credentials_expire_at is not None:
            expires_at = min(expires_at, credentials_expire_at)
        return expires_at

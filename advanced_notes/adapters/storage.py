"""The S3 storage adapter: the only module that imports boto3/botocore.

Built once per process (DESIGN §6 rule 1: a client costs ~3-80 ms, a presign ~150 µs)
and shared by every request. Every botocore failure leaves this module as
:class:`~advanced_notes.errors.StorageUnavailable`, so callers never see botocore types.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from advanced_notes.domain.clock import utcnow
from advanced_notes.domain.errors import ObjectVanished, StorageUnavailable
from advanced_notes.domain.rangeio import RangedReader
from advanced_notes.settings import Settings

log = logging.getLogger(__name__)

_MISSING_CODES = {"404", "NoSuchKey", "NotFound"}


@dataclass(frozen=True)
class PresignedRequest:
    """A presigned URL and what the client must send with it.

    Attributes:
        method: ``PUT`` or ``GET``.
        url: the SigV4 presigned URL.
        headers: every header signed into the URL (besides ``host``) with its exact value.
        expires_at: aware UTC time after which the store refuses the URL.
    """

    method: str
    url: str
    expires_at: dt.datetime
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectInfo:
    """What a HEAD reported. ``size`` in bytes; ``checksum_sha256`` only when asked and stored."""

    size: int
    etag: str | None
    content_type: str | None
    checksum_sha256: str | None = None


@dataclass(frozen=True)
class ListedObject:
    """One entry of a bucket listing. ``size`` in bytes, ``last_modified`` aware UTC."""

    key: str
    size: int
    last_modified: dt.datetime


def client_config(settings: Settings) -> Config:
    """The botocore Config every client uses (DESIGN §6 rules 2-4, and bounded failures).

    - ``signature_version="s3v4"``: otherwise boto3 still presigns SigV2 for us-east-1.
    - checksums ``when_required``: the 2025 default CRC checksums break uploads on R2, B2
      and older MinIO/Spaces.
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


@contextmanager
def _store_errors(action: str) -> Iterator[None]:
    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "?")
        log.warning("storage %s failed: %s", action, code)
        raise StorageUnavailable(f"The object store refused {action} ({code}); retry later.") from exc
    except BotoCoreError as exc:
        log.warning("storage %s failed: %s", action, exc.__class__.__name__)
        raise StorageUnavailable(f"The object store could not be reached for {action}; retry later.") from exc


class S3Storage:
    """Presigns URLs and checks objects in one bucket.

    Args:
        settings: bucket, region, credentials, endpoints, addressing style, expiries.

    Two clients share one Config: ``_client`` talks to ``S3_ENDPOINT_URL`` (possibly an
    internal address), ``_presigner`` signs URLs for ``S3_PUBLIC_ENDPOINT_URL`` because
    SigV4 signs the Host header: a URL signed for another host fails with
    SignatureDoesNotMatch (DESIGN §6 rule 5). Presigning makes no network call.
    """

    def __init__(self, settings: Settings):
        self.bucket = settings.s3_bucket
        self.region = settings.aws_region
        self.put_expires_seconds = settings.presign_put_expires_seconds
        self.get_expires_seconds = settings.presign_get_expires_seconds
        self.conditional_writes = settings.s3_conditional_writes
        session = boto3.session.Session(
            aws_access_key_id=settings.aws_access_key_id,
            aws_secret_access_key=settings.aws_secret_access_key,
            region_name=settings.aws_region,
        )
        config = client_config(settings)
        self._client = session.client("s3", endpoint_url=settings.s3_endpoint_url, config=config)
        if settings.s3_public_endpoint_url == settings.s3_endpoint_url:
            self._presigner = self._client
        else:
            self._presigner = session.client("s3", endpoint_url=settings.s3_public_endpoint_url, config=config)

    def presign_put(
        self,
        key: str,
        content_type: str,
        content_length: int,
        checksum_sha256: str | None = None,
        *,
        expires_seconds: int | None = None,
        conditional: bool | None = None,
    ) -> PresignedRequest:
        """Presign a PUT of exactly ``content_length`` bytes of ``content_type`` to ``key``.

        With ``S3_CONDITIONAL_WRITES=on`` the URL also signs ``If-None-Match: *``: the
        store refuses (412) a PUT onto an existing object, so a URL cannot overwrite a
        verified clip.

        Args:
            key: object key.
            content_type: signed as ``Content-Type`` (the store refuses another value).
            content_length: bytes, signed as ``Content-Length``.
            checksum_sha256: base64 SHA-256, signed as ``x-amz-checksum-sha256`` when given;
                the store then refuses a body with another digest.
            expires_seconds: lifetime (default ``S3_PRESIGN_PUT_EXPIRES_SECONDS``).
            conditional: sign ``If-None-Match: *`` (default ``S3_CONDITIONAL_WRITES``).
        Returns:
            the URL with ``headers`` = every signed header and its value. No ACL is ever
            signed (R2 answers 501 to ACL headers; the bucket stays private).
        """
        params: dict[str, object] = {
            "Bucket": self.bucket,
            "Key": key,
            "ContentType": content_type,
            "ContentLength": content_length,
        }
        headers = {"Content-Type": content_type, "Content-Length": str(content_length)}
        if checksum_sha256:
            params["ChecksumSHA256"] = checksum_sha256
            headers["x-amz-checksum-sha256"] = checksum_sha256
        if self.conditional_writes if conditional is None else conditional:
            params["IfNoneMatch"] = "*"
            headers["If-None-Match"] = "*"
        return self._presign("put_object", params, expires_seconds or self.put_expires_seconds, "PUT", headers)

    def presign_get(self, key: str, content_type: str, filename: str) -> PresignedRequest:
        """Presign a GET of ``key`` that the store answers with our content type.

        ``response-content-type`` and an ``inline`` ``Content-Disposition`` are signed in,
        so whatever bytes sit at the key are never served as HTML. Range requests work.
        """
        params = {
            "Bucket": self.bucket,
            "Key": key,
            "ResponseContentType": content_type,
            "ResponseContentDisposition": f'inline; filename="{filename}"',
        }
        return self._presign("get_object", params, self.get_expires_seconds, "GET", {})

    def _presign(
        self, operation: str, params: Mapping[str, object], expires: int, method: str, headers: dict[str, str]
    ) -> PresignedRequest:
        # Taken before signing so the reported expiry is never later than the real one.
        signed_at = utcnow().replace(microsecond=0)
        with _store_errors("presigning"):
            url = self._presigner.generate_presigned_url(operation, Params=params, ExpiresIn=expires)
        return PresignedRequest(method, url, signed_at + dt.timedelta(seconds=expires), headers)

    def head(self, key: str, with_checksum: bool = False) -> ObjectInfo | None:
        """HEAD ``key``.

        Args:
            key: object key.
            with_checksum: ask for the stored SHA-256 (``x-amz-checksum-mode: ENABLED``);
                only sent when needed because some S3-compatible stores reject it.
        Returns:
            the object's size/ETag/type, or None when no object is there.
        Raises:
            StorageUnavailable: network failure, timeout, 5xx, or access denied.
        """
        kwargs: dict[str, str] = {"Bucket": self.bucket, "Key": key}
        if with_checksum:
            kwargs["ChecksumMode"] = "ENABLED"
        with _store_errors("HEAD"):
            try:
                response = self._client.head_object(**kwargs)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in _MISSING_CODES:
                    return None
                raise
        return ObjectInfo(
            size=int(response["ContentLength"]),
            etag=response.get("ETag"),
            content_type=response.get("ContentType"),
            checksum_sha256=response.get("ChecksumSHA256"),
        )

    def get_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes ``start..end`` (inclusive) of ``key`` with one ranged GET.

        Raises:
            ObjectVanished: the key no longer exists (deleted since HEAD): not an outage.
            StorageUnavailable: network failure, timeout, 5xx.
        """
        try:
            with _store_errors("ranged GET"):
                response = self._client.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={start}-{end}")
                body: bytes = response["Body"].read()
                return body
        except StorageUnavailable as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") in _MISSING_CODES:
                raise ObjectVanished("The object was deleted while it was being verified.") from cause
            raise

    def open_reader(self, key: str, size: int, max_fetch_bytes: int) -> RangedReader:
        """A seekable file object over ``key`` that fetches 64 KiB blocks by ranged GET.

        Args:
            key: object key; size: its size in bytes (from HEAD);
            max_fetch_bytes: the most the reader may fetch in all (ReadBudgetExceeded beyond).
        """
        return RangedReader(partial(self.get_range, key), size, max_fetch_bytes=max_fetch_bytes)

    def list_objects(self, prefix: str, page_size: int = 1000) -> Iterator[list[ListedObject]]:
        """Pages of the objects under ``prefix``, in key order (ListObjectsV2).

        Yields lists of at most ``page_size`` objects, so a caller holds one page at a time.
        Raises:
            StorageUnavailable: the listing failed (pages already yielded stay valid).
        """
        paginator = self._client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.bucket, Prefix=prefix, PaginationConfig={"PageSize": page_size})
        with _store_errors("LIST"):
            for page in pages:
                yield [ListedObject(o["Key"], int(o["Size"]), o["LastModified"]) for o in page.get("Contents", [])]

    def delete(self, key: str) -> None:
        """Delete ``key`` (deleting a missing key succeeds, as S3 does)."""
        with _store_errors("DELETE"):
            self._client.delete_object(Bucket=self.bucket, Key=key)

    @property
    def signing(self) -> dict[str, str | None]:
        """How URLs are signed: signature version, region, addressing style, public endpoint."""
        config = self._presigner.meta.config
        return {
            "signature_version": config.signature_version,
            "region": self._presigner.meta.region_name,
            "addressing_style": (config.s3 or {}).get("addressing_style"),
            "endpoint": self._presigner.meta.endpoint_url,
        }

    def check_bucket(self) -> None:
        """HEAD the bucket; raises StorageUnavailable when it cannot be reached or read."""
        with _store_errors("HEAD bucket"):
            self._client.head_bucket(Bucket=self.bucket)

    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist (embedded emulator and tests only)."""
        with _store_errors("create bucket"):
            try:
                self._client.head_bucket(Bucket=self.bucket)
                return
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in _MISSING_CODES:
                    raise
            kwargs: dict[str, object] = {"Bucket": self.bucket}
            if self.region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            self._client.create_bucket(**kwargs)

    def get_cors_rules(self) -> list[dict[str, Any]] | None:
        """The bucket's CORS rules (S3's CORSRules shape), or None when it has none."""
        with _store_errors("GET bucket CORS"):
            try:
                rules: list[dict[str, Any]] = self._client.get_bucket_cors(Bucket=self.bucket)["CORSRules"]
                return rules
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "NoSuchCORSConfiguration":
                    return None
                raise

    def put_cors_rules(self, rules: list[dict[str, Any]]) -> None:
        """Replace the bucket's CORS rules (S3's CORSRules shape)."""
        with _store_errors("PUT bucket CORS"):
            self._client.put_bucket_cors(Bucket=self.bucket, CORSConfiguration={"CORSRules": rules})

    def put_object(self, key: str, body: bytes, content_type: str) -> None:
        """Store ``body`` at ``key`` directly (tests and the storage check, never the upload path)."""
        with _store_errors("PUT"):
            self._client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)

    def get_notification_configuration(self) -> dict[str, list[dict[str, Any]]]:
        """The bucket's event notifications: ``QueueConfigurations``, ``TopicConfigurations``,
        ``LambdaFunctionConfigurations`` as S3 returns them, and ``EventBridgeConfiguration``
        as a list of zero or one (absent kinds are empty lists).

        Raises:
            StorageUnavailable: the store refused or does not implement the call (R2 and
                Spaces answer NotImplemented or an error: their events are set up elsewhere).
        """
        with _store_errors("GET bucket notification"):
            response: dict[str, Any] = dict(self._client.get_bucket_notification_configuration(Bucket=self.bucket))
        kinds = ("QueueConfigurations", "TopicConfigurations", "LambdaFunctionConfigurations")
        config = {kind: [dict(entry) for entry in response.get(kind, [])] for kind in kinds}
        bridge = response.get("EventBridgeConfiguration")
        config["EventBridgeConfiguration"] = [dict(bridge)] if bridge is not None else []
        return config

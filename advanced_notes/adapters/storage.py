"""The S3 storage adapter: with the SQS adapter (adapters/queue.py), the only importer of boto3/botocore.

Built once per process (DESIGN §6 rule 1: a client costs ~3-80 ms, a presign ~150 µs)
and shared by every request. Every botocore failure leaves this module as
:class:`~advanced_notes.errors.StorageUnavailable`, so callers never see botocore types.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache, partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore import UNSIGNED
from botocore.auth import SIGV4_TIMESTAMP, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from advanced_notes.domain.clock import utcnow, window_start
from advanced_notes.domain.errors import ObjectVanished, StorageUnavailable
from advanced_notes.domain.rangeio import RangedReader
from advanced_notes.settings import Settings

log = logging.getLogger(__name__)

_MISSING_CODES = {"404", "NoSuchKey", "NotFound"}
#: The store no longer knows the multipart upload (completed or aborted). AWS says
#: NoSuchUpload; Ceph radosgw answers ListParts of an aborted upload with NoSuchKey.
_NO_UPLOAD_CODES = {"NoSuchUpload", "NoSuchKey"}
#: CompleteMultipartUpload refusals that the client can fix by uploading parts again.
_BAD_PARTS_CODES = {"InvalidPart", "InvalidPartOrder", "EntityTooSmall"}
#: Signed playback URLs kept per process (about 1 KB each): the clips played in one window.
GET_CACHE_ENTRIES = 4096


#: File transfers of the processing worker: 8 MiB parts, at most two in flight and a
#: short write-behind queue, so a transfer holds about 2 x 8 MiB + 8 x 256 KiB whatever
#: the file's size (boto3's defaults allow 10 parts and a 100-chunk queue: some 100 MiB).
FILE_TRANSFER = TransferConfig(
    multipart_threshold=8 * 1024 * 1024,
    multipart_chunksize=8 * 1024 * 1024,
    max_concurrency=2,
    max_io_queue=8,
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


@dataclass(frozen=True)
class ObjectInfo:
    """What a HEAD reported. ``size`` in bytes; ``checksum_sha256`` only when asked and stored;
    ``last_modified`` aware UTC (when the store sent it)."""

    size: int
    etag: str | None
    content_type: str | None
    checksum_sha256: str | None = None
    last_modified: dt.datetime | None = None


@dataclass(frozen=True)
class ListedObject:
    """One entry of a bucket listing. ``size`` in bytes, ``last_modified`` aware UTC."""

    key: str
    size: int
    last_modified: dt.datetime


@dataclass(frozen=True)
class UploadedPart:
    """One part the store holds for a multipart upload (ListParts). ``size`` in bytes."""

    part_number: int
    size: int
    etag: str
    last_modified: dt.datetime | None = None


@dataclass(frozen=True)
class InProgressUpload:
    """An unfinished multipart upload (ListMultipartUploads); ``initiated`` aware UTC."""

    key: str
    upload_id: str
    initiated: dt.datetime | None


class PartsRefused(Exception):
    """CompleteMultipartUpload refused the parts (``code``: InvalidPart, EntityTooSmall, ...)."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


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


class _S3QueryAuthAt(S3SigV4QueryAuth):
    """botocore's S3 SigV4 query-string signer, signing at a chosen time instead of "now".

    Why this shape (as botocore 1.44 is written): ``SigV4Auth.add_auth`` reads the time
    from ``botocore.auth.get_current_datetime()``, a module global, and a client's
    ``generate_presigned_url`` builds its signer internally per call (``RequestSigner.
    get_auth_instance``, from the process-wide ``AUTH_TYPE_MAPS``) with no time parameter.
    Patching the global, or the registry, would change what every other thread signs at
    that moment. So the client builds the URL *unsigned* (its endpoint, addressing style and
    query encoding untouched) and this object, made per call and used by one thread, signs
    it. ``add_auth`` writes the time into ``request.context["timestamp"]`` and then calls
    ``_modify_request_before_signing``; everything after that (``X-Amz-Date``, the
    credential scope, the string to sign, the signing key) reads the context, so the chosen
    time is put there. If a botocore upgrade changes that order, the URL's ``X-Amz-Date``
    is "now" again: tests/test_playback_cache.py fails (it checks ``X-Amz-Date`` against the
    chosen time, AWS's published example signature, and botocore's own presigner).
    """

    def __init__(self, credentials: Any, region_name: str, expires: int, signed_at: dt.datetime):
        super().__init__(credentials, "s3", region_name, expires=expires)
        self._timestamp = signed_at.astimezone(dt.UTC).strftime(SIGV4_TIMESTAMP)

    def _modify_request_before_signing(self, request: Any) -> None:
        request.context["timestamp"] = self._timestamp
        super()._modify_request_before_signing(request)


def sign_query_at(url: str, credentials: Any, region: str, expires: int, signed_at: dt.datetime) -> str:
    """Sign the unsigned GET ``url`` (SigV4 query string, S3) as if at ``signed_at``.

    Args:
        url: the URL to sign, with its operation parameters (``response-content-type``...).
        credentials: botocore's frozen credentials (access key, secret, optional token,
            signed in as ``X-Amz-Security-Token``).
        region: the signing region of the credential scope.
        expires: ``X-Amz-Expires`` in seconds (1..604800, SigV4's maximum).
        signed_at: ``X-Amz-Date`` (whole seconds; the date is the credential scope's day).
    Returns:
        the presigned URL: the same bytes for the same inputs, in any process.
    """
    request = AWSRequest(method="GET", url=url)
    _S3QueryAuthAt(credentials, region, expires, signed_at).add_auth(request)
    return str(request.url)


@contextmanager
def _store_errors(action: str) -> Iterator[None]:
    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "?")
        log.warning("storage %s failed: %s", action, code)
        raise StorageUnavailable(f"The object store refused {action} ({code}); retry later.") from exc
    except (BotoCoreError, Boto3Error) as exc:
        # Boto3Error: the managed transfers' own failures (S3UploadFailedError, RetriesExceededError).
        log.warning("storage %s failed: %s", action, exc.__class__.__name__)
        raise StorageUnavailable(f"The object store could not be reached for {action}; retry later.") from exc


class S3Storage:
    """Presigns URLs and checks objects in one bucket.

    Args:
        settings: bucket, region, credentials, endpoints, addressing style, expiries.
        clock: the current time (aware UTC) for playback URLs; tests pass a fake one.

    Two clients share one Config: ``_client`` talks to ``S3_ENDPOINT_URL`` (possibly an
    internal address), ``_presigner`` signs URLs for ``S3_PUBLIC_ENDPOINT_URL`` because
    SigV4 signs the Host header: a URL signed for another host fails with
    SignatureDoesNotMatch (DESIGN §6 rule 5). A third, ``_url_builder``, is the presigner
    without credentials: it builds playback URLs unsigned, for :func:`sign_query_at` to sign
    at the window's start (:meth:`presign_get`). Presigning makes no network call.
    """

    def __init__(self, settings: Settings, clock: Callable[[], dt.datetime] = utcnow):
        self.bucket = settings.s3_bucket
        self.region = settings.aws_region
        self.put_expires_seconds = settings.presign_put_expires_seconds
        self.get_expires_seconds = settings.presign_get_expires_seconds
        self.get_window_seconds = settings.presign_get_window_seconds
        self.conditional_writes = settings.s3_conditional_writes
        self.clock = clock
        # Signed into windowed URLs: a browser keeps the audio no longer than every URL handed
        # out is sure to live (expires - window seconds), and no shared cache stores it.
        self.get_cache_control = (
            f"private, max-age={self.get_expires_seconds - self.get_window_seconds}, immutable"
            if self.get_window_seconds
            else None
        )
        # Keyed by everything signed (key, type, filename, window start); thread safe.
        self._signed_gets = lru_cache(maxsize=GET_CACHE_ENTRIES)(self._sign_get)
        self._session = session = boto3.session.Session(
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
        self._url_builder = session.client(
            "s3", endpoint_url=settings.s3_public_endpoint_url, config=config.merge(Config(signature_version=UNSIGNED))
        )

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

        Time-bucketed (``S3_PRESIGN_GET_WINDOW_SECONDS`` = W > 0; E =
        ``S3_PRESIGN_GET_EXPIRES_SECONDS``, W < E; docs/api.md, "Cacheable playback"):

        - the URL is signed at t0 = floor(now / W) * W (Unix time, so every worker and
          machine signs the byte-identical URL for the key within a window):
          ``X-Amz-Date`` = t0, ``X-Amz-Expires`` = E (SigV4 allows at most 604800 s);
        - ``expires_at`` = t0 + E (earlier if the signing credentials expire first);
        - it is handed out only while now is in [t0, t0 + W), so it has at least E - W
          seconds left; the next window signs a new URL;
        - ``response-cache-control`` = ``private, max-age=<E - W>, immutable`` is signed in:
          a browser keeps the audio no longer than the URL lives (clips are write-once);
        - signed URLs are kept in a bounded in-process LRU (:data:`GET_CACHE_ENTRIES`)
          keyed by (key, type, filename, t0): a past window's URL is never looked up, and
          an entry whose ``expires_at`` has passed is signed again;
        - ``cache_seconds`` = seconds until the window ends (or the URL expires), at least 1.

        With W = 0 the URL is signed at now (whole seconds) for this request alone, with no
        ``response-cache-control`` and ``cache_seconds`` None, as before windows existed.

        Raises:
            StorageUnavailable: no credentials to sign with.
        """
        now = self.clock()
        window = self.get_window_seconds
        if not window:
            return self._sign_get(key, content_type, filename, now.replace(microsecond=0))
        start = window_start(now, window)
        signed = self._signed_gets(key, content_type, filename, start)
        if signed.expires_at <= now:
            # Only expiring credentials end a URL inside its window, and every URL signed
            # with them ended too: start the cache afresh, signed with the new credentials.
            self._signed_gets.cache_clear()
            signed = self._signed_gets(key, content_type, filename, start)
        reusable_until = min(start + dt.timedelta(seconds=window), signed.expires_at)
        return replace(signed, cache_seconds=max(1, int((reusable_until - now).total_seconds())))

    def _sign_get(self, key: str, content_type: str, filename: str, signed_at: dt.datetime) -> PresignedRequest:
        """The GET URL of :meth:`presign_get`, signed at ``signed_at`` (no cache)."""
        params = {
            "Bucket": self.bucket,
            "Key": key,
            "ResponseContentType": content_type,
            "ResponseContentDisposition": f'inline; filename="{filename}"',
        }
        if self.get_cache_control is not None:
            params["ResponseCacheControl"] = self.get_cache_control
        with _store_errors("presigning"):
            unsigned = self._url_builder.generate_presigned_url("get_object", Params=params)
            credentials = self._session.get_credentials()
            if credentials is None:
                raise NoCredentialsError()
            region = self._presigner.meta.region_name
            url = sign_query_at(
                unsigned, credentials.get_frozen_credentials(), region, self.get_expires_seconds, signed_at
            )
        return PresignedRequest("GET", url, self._expiry(signed_at, self.get_expires_seconds))

    def _presign(
        self, operation: str, params: Mapping[str, object], expires: int, method: str, headers: dict[str, str]
    ) -> PresignedRequest:
        # Taken before signing so the reported expiry is never later than the real one.
        signed_at = utcnow().replace(microsecond=0)
        with _store_errors("presigning"):
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

    # -- multipart uploads (docs/multipart.md) ----------------------------------------

    def create_multipart_upload(self, key: str, content_type: str) -> str:
        """Start a multipart upload of ``key`` stored as ``content_type``; returns S3's UploadId.

        The content type is fixed here (parts carry none), so complete's HEAD sees it.
        Raises StorageUnavailable.
        """
        with _store_errors("CreateMultipartUpload"):
            response = self._client.create_multipart_upload(Bucket=self.bucket, Key=key, ContentType=content_type)
        return str(response["UploadId"])

    def presign_upload_part(
        self, key: str, upload_id: str, part_number: int, content_length: int, *, expires_seconds: int
    ) -> PresignedRequest:
        """Presign the PUT of part ``part_number`` of exactly ``content_length`` bytes.

        ``Content-Length`` is signed (a strict store refuses another length); the part
        number and upload id are in the query. Makes no network call.
        """
        params = {
            "Bucket": self.bucket,
            "Key": key,
            "UploadId": upload_id,
            "PartNumber": part_number,
            "ContentLength": content_length,
        }
        return self._presign("upload_part", params, expires_seconds, "PUT", {"Content-Length": str(content_length)})

    def list_parts(self, key: str, upload_id: str) -> list[UploadedPart] | None:
        """Every part the store holds for the upload, by part number (all pages of ListParts).

        Returns:
            the parts, or None when the store no longer knows the upload (completed or aborted).
        Raises:
            StorageUnavailable.
        """
        parts: list[UploadedPart] = []
        with _store_errors("ListParts"):
            try:
                for page in self._client.get_paginator("list_parts").paginate(
                    Bucket=self.bucket, Key=key, UploadId=upload_id
                ):
                    parts += [
                        UploadedPart(int(p["PartNumber"]), int(p["Size"]), p["ETag"], p.get("LastModified"))
                        for p in page.get("Parts", [])
                    ]
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in _NO_UPLOAD_CODES:
                    return None
                raise
        return sorted(parts, key=lambda p: p.part_number)

    def complete_multipart_upload(self, key: str, upload_id: str, parts: list[UploadedPart]) -> bool:
        """Assemble ``parts`` (in order) into the object at ``key``.

        Returns:
            True when assembled; False when the store no longer knows the upload (a
            concurrent complete finished it, or it was aborted).
        Raises:
            PartsRefused: the store refused the parts (too small, unknown ETag, ...).
            StorageUnavailable.
        """
        listing = [{"PartNumber": p.part_number, "ETag": p.etag} for p in parts]
        with _store_errors("CompleteMultipartUpload"):
            try:
                self._client.complete_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": listing}
                )
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code in _NO_UPLOAD_CODES:
                    return False
                if code in _BAD_PARTS_CODES:
                    raise PartsRefused(code) from exc
                raise
        return True

    def abort_multipart_upload(self, key: str, upload_id: str) -> bool:
        """Abort the upload and free its parts; False when the store did not know it (already gone)."""
        with _store_errors("AbortMultipartUpload"):
            try:
                self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in _NO_UPLOAD_CODES:
                    return False
                raise
        return True

    def list_multipart_uploads(self, prefix: str) -> Iterator[list[InProgressUpload]]:
        """Pages of the unfinished multipart uploads under ``prefix`` (ListMultipartUploads).

        Raises:
            StorageUnavailable: the listing failed (pages already yielded stay valid).
        """
        pages = self._client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=prefix)
        with _store_errors("ListMultipartUploads"):
            for page in pages:
                yield [InProgressUpload(u["Key"], u["UploadId"], u.get("Initiated")) for u in page.get("Uploads", [])]

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
            last_modified=response.get("LastModified"),
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

    def open_reader(
        self,
        key: str,
        size: int,
        max_fetch_bytes: int,
        *,
        max_calls: int | None = None,
        max_seconds: float | None = None,
    ) -> RangedReader:
        """A seekable file object over ``key`` that fetches 64 KiB blocks by ranged GET.

        Args:
            key: object key; size: its size in bytes (from HEAD);
            max_fetch_bytes: the most the reader may fetch in all (ReadBudgetExceeded beyond).
            max_calls: the most read/seek calls; max_seconds: the most time (seconds) not
                spent fetching (ProbeTooComplex beyond either; None: no bound).
        """
        return RangedReader(
            partial(self.get_range, key),
            size,
            max_fetch_bytes=max_fetch_bytes,
            max_calls=max_calls,
            max_seconds=max_seconds,
        )

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

    @cached_property
    def public_origin(self) -> str:
        """``scheme://host[:port]`` of the URLs handed to clients (the bucket as browsers reach it).

        Built the way every presigned URL is (public endpoint, addressing style: the bucket
        is in the host name under virtual-hosted addressing), without signing or network.
        Pages allow it in their Content-Security-Policy (``connect-src``, ``media-src``).
        """
        url = self._url_builder.generate_presigned_url("get_object", Params={"Bucket": self.bucket, "Key": "k"})
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}"

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

    def download_file(self, key: str, path: Path) -> None:
        """Write the object at ``key`` to the local file ``path``, streamed to disk.

        boto3's managed transfer (:data:`FILE_TRANSFER`): ranged GETs in chunks written
        straight to the file (a temporary name, renamed when complete), so memory does not
        grow with the object.

        Raises:
            ObjectVanished: no object at ``key``.
            StorageUnavailable: network failure, timeout, 5xx, access denied.
        """
        try:
            with _store_errors("download"):
                self._client.download_file(self.bucket, key, str(path), Config=FILE_TRANSFER)
        except StorageUnavailable as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") in _MISSING_CODES:
                raise ObjectVanished("The object is no longer in the store.") from cause
            raise

    def upload_file(self, key: str, path: Path, content_type: str) -> None:
        """Store the local file ``path`` at ``key`` with ``Content-Type: content_type``.

        boto3's managed transfer (:data:`FILE_TRANSFER`): read from disk in chunks
        (multipart past 8 MiB), so memory does not grow with the file. Overwrites an object at ``key`` (a retried
        job writes the same bytes again).

        Raises:
            StorageUnavailable: network failure, timeout, 5xx, access denied.
        """
        with _store_errors("upload"):
            self._client.upload_file(
                str(path), self.bucket, key, ExtraArgs={"ContentType": content_type}, Config=FILE_TRANSFER
            )

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

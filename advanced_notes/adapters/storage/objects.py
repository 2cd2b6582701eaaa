"""The request path: presigned PUT and playback URLs, HEAD, ranged reads, listing, delete.

What create, complete, playback, delete and the sweeper ask of the store. Presigning
makes no network call.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache, partial
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from advanced_notes.adapters.storage.connection import (
    MISSING_CODES,
    PresignedRequest,
    StoreConnection,
    error_code,
    store_errors,
)
from advanced_notes.adapters.storage.signing import sign_query_at
from advanced_notes.domain.clock import utcnow, window_start
from advanced_notes.domain.errors import ObjectVanished, StorageUnavailable
from advanced_notes.domain.rangeio import RangedReader
from advanced_notes.settings import Settings

#: Signed playback URLs kept per process (about 1 KB each): the clips played in one window.
GET_CACHE_ENTRIES = 4096


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


class ObjectRequests(StoreConnection):
    """Presigns URLs and checks, reads, lists and deletes objects in one bucket.

    Args:
        settings: the connection's, and the URLs' expiries and playback window.
        clock: the current time (aware UTC) for playback URLs; tests pass a fake one.
    """

    def __init__(self, settings: Settings, clock: Callable[[], dt.datetime] = utcnow):
        super().__init__(settings)
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
        headers = {"Content-Type": content_type, "Content-Length": str(content_length)}
        if checksum_sha256:
            headers["x-amz-checksum-sha256"] = checksum_sha256
        if self.conditional_writes if conditional is None else conditional:
            headers["If-None-Match"] = "*"
        expires = expires_seconds or self.put_expires_seconds
        # The time is taken before signing, so the reported expiry is never later than the real one.
        signed_at = utcnow().replace(microsecond=0)
        with store_errors("presigning"):
            url = sign_query_at(
                self._object_url(key),
                self._signing_credentials(),
                self._signing_region,
                expires,
                signed_at,
                "PUT",
                headers,
            )
        return PresignedRequest("PUT", url, self._expiry(signed_at, expires), headers)

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
        with store_errors("presigning"):
            unsigned = self._url_builder.generate_presigned_url("get_object", Params=params)
            url = sign_query_at(
                unsigned, self._signing_credentials(), self._signing_region, self.get_expires_seconds, signed_at
            )
        return PresignedRequest("GET", url, self._expiry(signed_at, self.get_expires_seconds))

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
        with store_errors("HEAD"):
            try:
                response = self._client.head_object(**kwargs)
            except ClientError as exc:
                if error_code(exc) in MISSING_CODES:
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
            with store_errors("ranged GET"):
                response = self._client.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={start}-{end}")
                body: bytes = response["Body"].read()
                return body
        except StorageUnavailable as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError) and error_code(cause) in MISSING_CODES:
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
        with store_errors("LIST"):
            for page in pages:
                yield [ListedObject(o["Key"], int(o["Size"]), o["LastModified"]) for o in page.get("Contents", [])]

    def delete(self, key: str) -> None:
        """Delete ``key`` (deleting a missing key succeeds, as S3 does)."""
        with store_errors("DELETE"):
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

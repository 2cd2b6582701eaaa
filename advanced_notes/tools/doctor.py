"""The storage doctor: try the real upload path against the configured bucket and say
plainly what is wrong, with the fix.

Uses the app's storage adapter to presign, and a plain HTTP client (as a phone or a
browser would) to PUT and GET. It writes one small probe object under
``<prefix>/doctor/`` (outside ``audio-clips/``, so the sweeper never counts it) and
deletes it at the end. Besides "does it work", it checks what emulators do not
enforce: the signed Content-Type, Content-Length, checksum and expiry, write-once
conditional PUTs, the bucket's CORS rules for the browser origins in CORS_ORIGINS, and
whether the bucket publishes ObjectCreated events for our keys (docs/events.md).

The checks live here (the probe object) and in :mod:`~advanced_notes.tools.doctor_bucket`
(the bucket's configuration); the findings and their printing in
:mod:`~advanced_notes.tools.doctor_report`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from urllib.parse import parse_qs, urlsplit

import requests

from advanced_notes.adapters.storage import S3Storage
from advanced_notes.domain.errors import StorageUnavailable
from advanced_notes.domain.redact import redact_url
from advanced_notes.settings import Settings, gunicorn_workers, shared_rate_limit_problem
from advanced_notes.tools.doctor_bucket import cors_findings, notification_findings
from advanced_notes.tools.doctor_report import FAIL, INFO, OK, WARN, Finding, store_code

PROBE_BODY = b"advanced-notes storage probe \x00\x01\x02" * 8


def _sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


class StorageDoctor:
    """Runs the checks; :meth:`run` yields :class:`Finding` objects as it goes.

    Args:
        storage: the app's adapter; settings: the app's settings (prefix, CORS origins).
        http: a requests session (tests may pass one); timeout: seconds per HTTP call.
        workers: how many processes serve the app (default: what gunicorn.conf.py would
            start, :func:`~advanced_notes.settings.gunicorn_workers` of the environment).
    """

    def __init__(
        self,
        storage: S3Storage,
        settings: Settings,
        http: requests.Session | None = None,
        timeout: float = 15.0,
        workers: int | None = None,
    ):
        self.storage = storage
        self.settings = settings
        self.workers = workers if workers is not None else gunicorn_workers(os.environ)
        self.http = http or requests.Session()
        self.timeout = timeout
        self.key = f"{settings.key_prefix}/doctor/probe-{uuid.uuid4()}.ogg"

    def _put(self, url: str, data: bytes, headers: dict[str, str]) -> requests.Response:
        return self.http.put(url, data=data, headers=headers, timeout=self.timeout)

    def run(self) -> Iterator[Finding]:
        """Every check, in order; stops early when the bucket cannot be used at all."""
        signing = self.storage.signing
        yield Finding(
            INFO,
            "settings",
            f"provider {self.settings.s3_provider}, bucket {self.storage.bucket}, "
            f"endpoint {redact_url(self.settings.s3_endpoint_url) if self.settings.s3_endpoint_url else 'AWS'}, "
            f"URLs signed for {redact_url(signing['endpoint'] or '')}, region {signing['region']}, "
            f"addressing {signing['addressing_style']}, "
            f"key prefix {self.settings.key_prefix}/",
        )
        problem = shared_rate_limit_problem(self.settings, self.workers)
        if problem is not None:
            yield Finding(
                WARN,
                "rate limits across workers",
                problem,
                "Set RATELIMIT_STORAGE_URI=redis://<host>:6379/<db> so every worker and machine shares the counters.",
            )
        yield self._credentials()
        try:
            self.storage.check_bucket()
        except StorageUnavailable as exc:
            yield Finding(
                FAIL,
                "bucket reachable",
                exc.message,
                "Check S3_BUCKET, S3_ENDPOINT_URL, the credentials, and that the bucket exists.",
            )
            return
        yield Finding(OK, "bucket reachable", f"HEAD {self.storage.bucket} answered")
        try:
            if not (yield from self._upload_and_read()):
                return
            yield from self._enforcement()
            yield from self._conditional_writes()
        finally:
            with contextlib.suppress(StorageUnavailable):
                self.storage.delete(self.key)
        yield from cors_findings(self.storage, self.settings)
        yield from notification_findings(self.storage, self.settings)

    def _credentials(self) -> Finding:
        """Temporary credentials (STS, an IAM role, a container's) cut every presigned URL short."""
        if not self.storage.temporary_credentials:
            return Finding(OK, "credentials", "long-term keys: presigned URLs live their whole X-Amz-Expires")
        expiry = self.storage.credentials_expire_at()
        when = f"expire at {expiry.isoformat()}" if expiry else "expire at a time boto3 does not know"
        return Finding(
            WARN,
            "credentials",
            f"temporary credentials (a session token) {when}: a presigned URL stops working when the "
            "credentials that signed it expire, whatever its X-Amz-Expires; the API reports the earlier "
            "of the two as expires_at when it knows the credentials' expiry",
            "For long uploads (expires_in, phones in the background), sign with long-term keys of a user "
            "allowed only on this bucket, or keep S3_PRESIGN_MAX_EXPIRES_SECONDS under the credentials' lifetime.",
        )

    def _upload_and_read(self) -> Generator[Finding, None, bool]:
        upload = self.storage.presign_put(self.key, "audio/ogg", len(PROBE_BODY), conditional=False)
        params = {k: v[0] for k, v in parse_qs(urlsplit(upload.url).query).items()}
        algorithm = params.get("X-Amz-Algorithm", "none (SigV2)")
        scope = params.get("X-Amz-Credential", "").split("/")
        region = scope[2] if len(scope) > 2 else "?"
        level = OK if algorithm == "AWS4-HMAC-SHA256" else FAIL
        yield Finding(
            level,
            "signature",
            f"{algorithm}, credential scope region {region}, signed headers {params.get('X-Amz-SignedHeaders')}",
            "" if level == OK else "Upgrade boto3/botocore.",
        )
        response = self._put(upload.url, PROBE_BODY, upload.headers)
        if response.status_code != 200:
            code = store_code(response)
            fixes = {
                "SignatureDoesNotMatch": "The host or region signed into the URL is not the one the store checks: "
                "set S3_PUBLIC_ENDPOINT_URL to the address clients use, AWS_REGION to the "
                "bucket's region (auto on R2), and S3_ADDRESSING_STYLE=path for MinIO or "
                "IP endpoints.",
                "AccessDenied": "The credentials may not s3:PutObject on this bucket (or the clocks differ).",
                "NotImplemented": "The store refuses a signed header; report it with this output.",
            }
            yield Finding(
                FAIL,
                "presigned PUT",
                f"{response.status_code} {code}",
                fixes.get(code, "See the store's error code above."),
            )
            return False
        yield Finding(OK, "presigned PUT", f"{len(PROBE_BODY)} bytes stored with the signed headers")
        info = self.storage.head(self.key)
        if info is None or info.size != len(PROBE_BODY):
            yield Finding(
                FAIL,
                "HEAD",
                f"the probe object is {'missing' if info is None else f'{info.size} bytes'}",
                "The store did not keep what it acknowledged; check replication or the endpoint.",
            )
            return False
        yield Finding(OK, "HEAD", f"size {info.size}, type {info.content_type}, ETag {info.etag}")
        get = self.storage.presign_get(self.key, "audio/ogg", "probe.ogg")
        ranged = self.http.get(get.url, headers={"Range": "bytes=0-9"}, timeout=self.timeout)
        if ranged.status_code == 206 and ranged.content == PROBE_BODY[:10]:
            yield Finding(OK, "presigned GET with Range", "206 with the first 10 bytes")
        else:
            yield Finding(
                FAIL,
                "presigned GET with Range",
                f"{ranged.status_code} {store_code(ranged)}",
                "Playback needs ranged GETs; check the public endpoint and s3:GetObject.",
            )
        if ranged.headers.get("Content-Type") != "audio/ogg":
            yield Finding(
                WARN,
                "forced playback type",
                f"served as {ranged.headers.get('Content-Type')!r}",
                "The store ignores response-content-type; browsers may sniff the bytes.",
            )
        return True

    def _expect_refused(
        self, check: str, attempt: Callable[[], requests.Response], what: str, safety_net: str
    ) -> Finding:
        response = attempt()
        if response.status_code >= 400:
            return Finding(OK, check, f"refused ({response.status_code} {store_code(response)})")
        return Finding(
            WARN,
            check,
            f"NOT enforced: the store accepted {what}",
            "Emulators (moto and most test servers) enforce nothing; AWS S3, R2, Spaces and MinIO do. " + safety_net,
        )

    def _enforcement(self) -> Iterator[Finding]:
        key, body = self.key, PROBE_BODY

        def wrong_type() -> requests.Response:
            upload = self.storage.presign_put(key, "audio/ogg", len(body), conditional=False)
            return self._put(upload.url, body, {**upload.headers, "Content-Type": "text/html"})

        def wrong_length() -> requests.Response:
            upload = self.storage.presign_put(key, "audio/ogg", len(body) - 1, conditional=False)
            return self._put(upload.url, body, {"Content-Type": "audio/ogg"})

        def wrong_checksum() -> requests.Response:
            upload = self.storage.presign_put(key, "audio/ogg", len(body), _sha256_b64(b"other"), conditional=False)
            return self._put(upload.url, body, upload.headers)

        def expired() -> requests.Response:
            upload = self.storage.presign_put(key, "audio/ogg", len(body), expires_seconds=1, conditional=False)
            time.sleep(2.5)
            return self._put(upload.url, body, upload.headers)

        checked = "complete re-checks it, so such an object is rejected, never ready."
        yield self._expect_refused(
            "signed Content-Type enforced", wrong_type, "a PUT with another Content-Type", checked
        )
        yield self._expect_refused("signed Content-Length enforced", wrong_length, "a body of another size", checked)
        yield self._expect_refused(
            "signed checksum enforced",
            wrong_checksum,
            "a body with another SHA-256",
            "complete compares the checksum the store reports, if it reports one.",
        )
        yield self._expect_refused(
            "URL expiry enforced",
            expired,
            "a PUT after the URL expired",
            "The sweeper deletes late objects of expired, rejected and deleted clips.",
        )

    def _conditional_writes(self) -> Iterator[Finding]:
        upload = self.storage.presign_put(self.key, "audio/ogg", len(PROBE_BODY), conditional=True)
        response = self._put(upload.url, PROBE_BODY, upload.headers)
        on = self.settings.s3_conditional_writes
        if response.status_code == 412:
            yield Finding(
                OK,
                "conditional writes (If-None-Match: *)",
                "supported: 412 on an existing key",
                "" if on else "You may set S3_CONDITIONAL_WRITES=on to make upload URLs write-once.",
            )
        else:
            yield Finding(
                FAIL if on else INFO,
                "conditional writes (If-None-Match: *)",
                f"not supported: {response.status_code} {store_code(response)} on an existing key",
                "Set S3_CONDITIONAL_WRITES=off for this store." if on else "Leave S3_CONDITIONAL_WRITES off.",
            )

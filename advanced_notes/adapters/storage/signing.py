"""SigV4 query signing at a chosen time, over a URL the caller built: every presigned URL.

The request path (:meth:`~advanced_notes.adapters.storage.S3Storage.presign_get`) signs a
playback URL at the start of its time window, so every worker and machine hands out the
byte-identical URL within the window (docs/api.md, "Cacheable playback"). Upload URLs
(:meth:`~advanced_notes.adapters.storage.S3Storage.presign_put`) are signed by the same
signer at the time they are made, with their headers signed in, over a URL built without a
client call (a client's ``generate_presigned_url`` resolves the endpoint and validates and
serializes the parameters on every call, which costs more than the signature itself).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from botocore.auth import SIGV4_TIMESTAMP, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest


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
    is "now" again: tests/playback/test_playback_cache.py fails (it checks ``X-Amz-Date`` against the
    chosen time, AWS's published example signature, and botocore's own presigner).
    """

    def __init__(self, credentials: Any, region_name: str, expires: int, signed_at: dt.datetime):
        super().__init__(credentials, "s3", region_name, expires=expires)
        self._timestamp = signed_at.astimezone(dt.UTC).strftime(SIGV4_TIMESTAMP)

    def _modify_request_before_signing(self, request: Any) -> None:
        request.context["timestamp"] = self._timestamp
        super()._modify_request_before_signing(request)


def sign_query_at(
    url: str,
    credentials: Any,
    region: str,
    expires: int,
    signed_at: dt.datetime,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
) -> str:
    """Sign the unsigned ``url`` (SigV4 query string, S3) as if at ``signed_at``.

    Args:
        url: the URL to sign, with its operation parameters (``response-content-type``...).
        credentials: botocore's frozen credentials (access key, secret, optional token,
            signed in as ``X-Amz-Security-Token``).
        region: the signing region of the credential scope.
        expires: ``X-Amz-Expires`` in seconds (1..604800, SigV4's maximum).
        signed_at: ``X-Amz-Date`` (whole seconds; the date is the credential scope's day).
        method: the HTTP method the URL is for (``GET``, ``PUT``).
        headers: headers signed in besides ``host`` (``X-Amz-SignedHeaders``): the client
            must send each with exactly this value, or the store refuses the request.
    Returns:
        the presigned URL: the same bytes for the same inputs, in any process.
    """
    request = AWSRequest(method=method, url=url, headers=dict(headers or {}))
    _S3QueryAuthAt(credentials, region, expires, signed_at).add_auth(request)
    return str(request.url)

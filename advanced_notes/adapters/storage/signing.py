"""SigV4 query signing at a chosen time, over a URL the caller built: every presigned URL.

The request path (:meth:`~advanced_notes.adapters.storage.S3Storage.presign_get`) signs a
playback URL at the start of its time window, so every worker and machine hands out the
byte-identical URL within the window (docs/api.md, "Cacheable playback"). Upload URLs
(:meth:`~advanced_notes.adapters.storage.S3Storage.presign_put`) are signed by the same
signer at the time they are made, with their headers signed in, over a URL built without a
client call (a client's ``generate_presigned_url`` resolves the endpoint and validates and
serializes the parameters on every call, which costs more than the signature itself).

Why not botocore's signer object (``S3SigV4QueryAuth``): it reads the time from a module
global (``botocore.auth.get_current_datetime``), so signing at a chosen time meant
subclassing it and relying on the order of its internal steps, and it builds a request
object, parses the URL four times and derives the signing key (four HMACs) on every URL.
This is the same algorithm, step for step as botocore 1.44 writes it (``SigV4QueryAuth.
_modify_request_before_signing``, ``SigV4Auth.canonical_request``/``string_to_sign``/
``signature``, S3's unnormalized path and ``UNSIGNED-PAYLOAD``), with botocore's own
encoders, and the signing key kept per secret, day and region. tests/uploads/test_create_cost.py
and tests/playback/test_playback_cache.py compare its URLs byte for byte with botocore's presigner
(every addressing style, optional header, temporary credentials) and with AWS's published
example signature; testkit/sigv4.py verifies them independently.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from botocore.auth import SIGNED_HEADERS_BLACKLIST, SIGV4_TIMESTAMP, UNSIGNED_PAYLOAD
from botocore.utils import percent_encode_sequence

#: botocore drops this Content-Type from presigned URLs (its own default for form bodies).
_FORM_CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_NOT_SIGNED = frozenset(SIGNED_HEADERS_BLACKLIST)


@lru_cache(maxsize=16)
def _signing_key(secret_key: str, day: str, region: str) -> bytes:
    """SigV4's derived key for ``day`` (YYYYMMDD), ``region`` and S3: the same all day."""
    key = hmac.new(f"AWS4{secret_key}".encode(), day.encode(), hashlib.sha256).digest()
    for part in (region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _host(parts: Any) -> str:
    """The Host header a client sends to the URL (botocore's ``_host_from_url``): lower case,
    no user info, IPv6 in brackets, the port only when it is not the scheme's default."""
    host: str = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


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
    timestamp = signed_at.astimezone(dt.UTC).strftime(SIGV4_TIMESTAMP)
    day = timestamp[:8]
    parts = urlsplit(url)
    to_sign = {}
    for name, value in (headers or {}).items():
        lower = name.lower()
        if lower not in _NOT_SIGNED and not (lower == "content-type" and value == _FORM_CONTENT_TYPE):
            to_sign[lower] = value
    to_sign.setdefault("host", _host(parts))
    names = sorted(to_sign)
    signed_headers = ";".join(names)
    scope = f"{day}/{region}/s3/aws4_request"
    auth_params = {
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": f"{credentials.access_key}/{scope}",
        "X-Amz-Date": timestamp,
        "X-Amz-Expires": expires,
        "X-Amz-SignedHeaders": signed_headers,
    }
    if credentials.token is not None:
        auth_params["X-Amz-Security-Token"] = credentials.token
    # The operation's parameters first, then the signature's (botocore's order).
    operation = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    query = (percent_encode_sequence(operation) + "&" if operation else "") + percent_encode_sequence(auth_params)
    canonical_query = "&".join(f"{k}={v}" for k, v in sorted(pair.partition("=")[::2] for pair in query.split("&")))
    canonical_request = "\n".join(
        [
            method.upper(),
            parts.path,  # S3 signs the path as sent, unnormalized
            canonical_query,
            "".join(f"{name}:{' '.join(to_sign[name].split())}\n" for name in names),
            signed_headers,
            UNSIGNED_PAYLOAD,
        ]
    )
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", timestamp, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    signature = hmac.new(
        _signing_key(credentials.secret_key, day, region), string_to_sign.encode(), hashlib.sha256
    ).hexdigest()
    unsigned: str = urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
    return f"{unsigned}&X-Amz-Signature={signature}"

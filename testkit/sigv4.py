"""An independent SigV4 query-string verifier for presigned S3 URLs.

moto (like most emulators) does not check signatures, so a wrong signed header would
pass every PUT in tests and fail on AWS, R2 or Spaces. This recomputes the signature
from the URL, the method and the headers a client would send, following AWS's
"Authenticating Requests: Using Query Parameters (AWS Signature Version 4)", written
separately from botocore so a botocore mistake cannot hide itself.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import parse_qsl, quote, urlsplit


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signed_params(url: str) -> dict[str, str]:
    """The query parameters of a presigned URL, decoded."""
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def signature_matches(url: str, method: str, headers: dict[str, str], secret_key: str) -> bool:
    """True when ``url`` carries a valid SigV4 signature for ``method`` with ``headers``.

    Args:
        url: the presigned URL.
        method: ``PUT`` or ``GET``.
        headers: the headers the client sends (``Host`` is taken from the URL).
        secret_key: the AWS secret access key the server signed with.
    """
    parts = urlsplit(url)
    params = parse_qsl(parts.query, keep_blank_values=True)
    given = dict(params)
    date = given["X-Amz-Date"]
    _, day, region, service, _ = given["X-Amz-Credential"].split("/")
    sent = {k.lower(): " ".join(v.split()) for k, v in headers.items()}
    sent["host"] = parts.netloc
    signed = given["X-Amz-SignedHeaders"].split(";")
    if any(name not in sent for name in signed):
        return False
    canonical_query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(params) if k != "X-Amz-Signature"
    )
    canonical_request = "\n".join(
        [
            method,
            quote(parts.path, safe="/-_.~%"),
            canonical_query,
            "".join(f"{name}:{sent[name]}\n" for name in signed),
            ";".join(signed),
            "UNSIGNED-PAYLOAD",
        ]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{secret_key}".encode(), day), region), service), "aws4_request")
    expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, given["X-Amz-Signature"])

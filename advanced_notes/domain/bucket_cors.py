"""The bucket CORS rules a browser upload needs (pure: no boto3, no Flask).

A browser PUTs to the presigned URL from the app's origin, so the bucket must allow
that origin, the PUT and GET methods, every header the presigner signs (listed in
``upload.headers``), and expose ``ETag``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: Headers a browser may send with a presigned PUT (what upload.headers can contain).
UPLOAD_HEADERS = ("content-type", "x-amz-checksum-sha256", "if-none-match")
#: Seconds a browser may cache the preflight answer.
MAX_AGE_SECONDS = 3600


def required_cors_rules(origins: Sequence[str]) -> list[dict[str, Any]]:
    """The minimal CORS rules for direct uploads and playback from ``origins``.

    Returns:
        S3's ``CORSRules`` list: one rule allowing PUT, GET and HEAD from the origins with
        the upload headers, exposing ETag (clients may show it) and Content-Range (for
        ranged playback).
    """
    return [
        {
            "AllowedOrigins": list(origins),
            "AllowedMethods": ["PUT", "GET", "HEAD"],
            "AllowedHeaders": list(UPLOAD_HEADERS),
            "ExposeHeaders": ["ETag", "Content-Range", "Content-Length"],
            "MaxAgeSeconds": MAX_AGE_SECONDS,
        }
    ]


def cors_problems(rules: list[dict[str, Any]] | None, origins: Sequence[str]) -> list[str]:
    """What the bucket's CORS rules lack for direct uploads from each origin, in plain words.

    Args:
        rules: the bucket's rules (None: it has none); origins: where the app is served.
    Returns:
        one sentence per problem; empty when every origin can PUT and GET.
    """
    if not origins:
        return []
    if not rules:
        return ["The bucket has no CORS rules: browsers cannot PUT to presigned URLs."]
    problems = []
    for origin in origins:
        matching = [r for r in rules if origin in r.get("AllowedOrigins", []) or "*" in r.get("AllowedOrigins", [])]
        if not matching:
            problems.append(f"No CORS rule allows the origin {origin}.")
            continue
        methods = {m.upper() for r in matching for m in r.get("AllowedMethods", [])}
        for method in ("PUT", "GET"):
            if method not in methods:
                problems.append(f"CORS rules for {origin} do not allow {method}.")
        allowed = {h.lower() for r in matching for h in r.get("AllowedHeaders", [])}
        missing = [h for h in UPLOAD_HEADERS if h not in allowed and "*" not in allowed]
        if missing:
            problems.append(f"CORS rules for {origin} do not allow the signed headers {', '.join(missing)}.")
        exposed = {h.lower() for r in matching for h in r.get("ExposeHeaders", [])}
        if "etag" not in exposed:
            problems.append(f"CORS rules for {origin} do not expose ETag.")
    return problems

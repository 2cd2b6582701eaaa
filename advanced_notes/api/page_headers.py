"""Browser protections for the pages the service serves (``/demo``, ``/uppy``) and every answer.

The pages load only their own files (no inline script or style, no CDN) and talk to two
origins: the API's own, and the bucket's, which the presigned URLs point at
(:attr:`~advanced_notes.adapters.storage.S3Storage.public_origin`: the public endpoint,
with the bucket in the host name under virtual-hosted addressing). The browser needs:

- ``connect-src``: the API (``fetch``) and the bucket (XMLHttpRequest ``PUT`` of the file or
  of each part; a multipart upload's parts are presigned PUTs to the same origin);
- ``media-src``: the bucket, where ``<audio>`` plays the presigned GET (ranged requests);
- ``img-src data:``: the pages' empty ``data:`` favicon, which stops a request for
  ``/favicon.ico``.

Everything else is refused; the pages cannot be framed (``frame-ancestors 'none'`` and, for
browsers without CSP level 2, ``X-Frame-Options: DENY``), and they send no ``Referer``: the
bucket and any link see no page address. Every answer of the app, JSON included, carries
``X-Content-Type-Options: nosniff``, so no browser runs an answer as another type.
"""

from __future__ import annotations

from flask import Flask, Response

from advanced_notes.api.context import current_services

#: Directives of the pages' policy that do not depend on the deployment.
_FIXED = (
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
)


def page_policy(bucket_origin: str) -> str:
    """The ``Content-Security-Policy`` of ``/demo`` and ``/uppy`` and their assets.

    Args:
        bucket_origin: ``scheme://host[:port]`` the presigned URLs point at.
    Returns:
        the header value: the fixed directives, plus ``connect-src`` and ``media-src``
        allowing the page's own origin and ``bucket_origin``.
    """
    return "; ".join((*_FIXED, f"connect-src 'self' {bucket_origin}", f"media-src 'self' {bucket_origin}"))


def add_page_headers(response: Response) -> Response:
    """``after_request`` of the page blueprints: CSP, framing, referrer and sniffing rules."""
    response.headers["Content-Security-Policy"] = page_policy(current_services().storage.public_origin)
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _nosniff(response: Response) -> Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


def init_nosniff(app: Flask) -> None:
    """Send ``X-Content-Type-Options: nosniff`` with every answer of ``app`` (errors included)."""
    app.after_request(_nosniff)

"""Browser protections for the pages the service serves (``/``, ``/app``) and every answer.

The pages load only their own files (no inline script, no CDN; one inline style, by its
hash, below) and talk to two
origins: the API's own, and the bucket's, which the presigned URLs point at
(:attr:`~advanced_notes.adapters.storage.S3Storage.public_origin`: the public endpoint,
with the bucket in the host name under virtual-hosted addressing). The browser needs:

- ``connect-src``: the API (``fetch``) and the bucket (XMLHttpRequest ``PUT`` of the file or
  of each part; a multipart upload's parts are presigned PUTs to the same origin);
- ``connect-src`` also covers the page's ``fetch`` of a clip's peaks (a presigned GET);
- ``media-src``: the bucket, where ``<audio>`` plays the presigned GET (ranged requests), and
  ``blob:``, where Uppy's recorder plays a recording back before it is added (a ``blob:`` URL
  is made by the page itself, of data it holds);
- ``style-src``: the page's stylesheet, and the one ``<style>`` element wavesurfer.js writes
  into its player's shadow root (fixed text for the page's options), allowed by its SHA-256
  only: no other inline style applies;
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

#: The SHA-256 of the ``<style>`` text wavesurfer.js 8.0.1 puts in its shadow root for the
#: page's player (``height: 64``, one canvas row; web/uppy/src/clips.js). Chromium names the
#: hash it expected in its console when the text changes (a new wavesurfer.js or other
#: options), and tests/pages/test_page_security.py fails on that violation.
WAVEFORM_STYLE_SHA256 = "sha256-fF0LBso7Nz75zaFRDBUefBDvPe19hjaiDnnc8lt+2Js="

#: Directives of the pages' policy that do not depend on the deployment.
_FIXED = (
    "default-src 'self'",
    "script-src 'self'",
    f"style-src 'self' '{WAVEFORM_STYLE_SHA256}'",
    "img-src 'self' data:",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
)


def page_policy(bucket_origin: str) -> str:
    """The ``Content-Security-Policy`` of the pages (``/``, ``/app``) and their assets.

    Args:
        bucket_origin: ``scheme://host[:port]`` the presigned URLs point at.
    Returns:
        the header value: the fixed directives, plus ``connect-src`` and ``media-src``
        allowing the page's own origin and ``bucket_origin`` (``media-src`` also ``blob:``).
    """
    return "; ".join((*_FIXED, f"connect-src 'self' {bucket_origin}", f"media-src 'self' blob: {bucket_origin}"))


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

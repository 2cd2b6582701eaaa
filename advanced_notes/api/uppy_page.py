"""``/uppy``: a page that uploads with Uppy (``@uppy/core`` + ``@uppy/aws-s3``), multipart and resumable.

Static: ``index.html`` and the esbuild bundle ``uppy-page.js`` under
``advanced_notes/static/uppy/`` (the bundle is committed; ``web/uppy`` holds its pinned
sources: ``npm ci && npm run build`` there rebuilds it). Like ``/demo`` it calls the API
with the bearer token the user gives it and PUTs the parts straight to the bucket (which
needs CORS rules for this origin). See docs/multipart.md.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, send_from_directory

from advanced_notes.api.page_headers import add_page_headers

STATIC_DIR = Path(__file__).resolve().parent.parent / "static" / "uppy"

blp = Blueprint("uppy", __name__, static_folder=STATIC_DIR, static_url_path="/uppy/static")
# The page and its assets: CSP, no framing, no Referer, nosniff (api/page_headers.py).
blp.after_request(add_page_headers)


@blp.route("/uppy")
def uppy_page() -> Response:
    """The Uppy page: pick an audio file, upload it in parts (pause, reload, resume), play it."""
    return send_from_directory(STATIC_DIR, "index.html", mimetype="text/html")

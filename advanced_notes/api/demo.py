"""The browser page (``/app``), the service's home (``/``), and ``/demo``'s redirect to the page.

``/app`` is Uppy's Dashboard (drag and drop, per-file progress, pause/resume, retry) with
``@uppy/audio`` for the microphone and ``@uppy/aws-s3`` for single PUTs and multipart alike,
then each clip's status through processing and a wavesurfer.js player drawn from the
service's peaks. It is static: ``index.html`` and the committed esbuild bundle
(``app.js``, ``app.css``) under ``advanced_notes/static/app/``, served at ``/app/static/``;
``web/uppy`` holds its pinned sources (``make uppy`` rebuilds it). It needs no auth of its
own: it calls the API with the bearer token the user gives it (the URL fragment
``#token=...``, which browsers never send to a server, or typed in). Being served by the
API's own origin it needs no CORS on the API; the bucket needs CORS rules for this origin
(``advanced_notes.domain.bucket_cors.required_cors_rules``) because the browser PUTs and
GETs straight to the store. See docs/multipart.md and docs/processing.md.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, redirect, send_from_directory
from werkzeug.wrappers import Response as BaseResponse

from advanced_notes.api.page_headers import add_page_headers

#: The page and its assets (``static_folder`` below, as an absolute path).
STATIC_DIR = Path(__file__).resolve().parent.parent / "static" / "app"
#: Where the page lives; the old addresses redirect here.
PAGE_PATH = "/app"

blp = Blueprint("demo", __name__, static_folder=STATIC_DIR, static_url_path="/app/static")
# The pages and their assets: CSP, no framing, no Referer, nosniff (api/page_headers.py).
blp.after_request(add_page_headers)


@blp.route(PAGE_PATH)
def app_page() -> Response:
    """The browser page: upload or record audio with Uppy, follow processing, play with a waveform."""
    return send_from_directory(STATIC_DIR, "index.html", mimetype="text/html")


@blp.route("/")
def home() -> Response:
    """A small HTML page linking the browser page, ``/api/docs`` and ``/api/openapi.json``."""
    return send_from_directory(STATIC_DIR, "home.html", mimetype="text/html")


@blp.route("/demo")
def demo() -> BaseResponse:
    """``302`` to :data:`PAGE_PATH` (the former demo page); browsers keep a ``#token=`` fragment."""
    return redirect(PAGE_PATH, code=302)

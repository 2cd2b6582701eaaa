"""``/demo``: a browser demo of the three steps (plain HTML/JS, no build step).

The page is static: ``index.html``, ``demo.js`` and ``demo.css`` under
``advanced_notes/static/demo/``, the last two served at ``/demo/static/``. It needs no
auth of its own; it calls the API with the bearer token the user gives it (read from the
URL fragment ``#token=...``, which browsers never send to a server, or typed in).
Being served by the API's own origin, it needs no CORS on the API; the bucket needs
CORS rules for this origin (``advanced_notes.cors.required_cors_rules``) because the
browser PUTs the file straight to the store.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, send_from_directory

from advanced_notes.api.page_headers import add_page_headers

#: The page and its assets (``static_folder`` below, as an absolute path).
STATIC_DIR = Path(__file__).resolve().parent.parent / "static" / "demo"

blp = Blueprint("demo", __name__, static_folder=STATIC_DIR, static_url_path="/demo/static")
# The page and its assets: CSP, no framing, no Referer, nosniff (api/page_headers.py).
blp.after_request(add_page_headers)


@blp.route("/demo")
def demo() -> Response:
    """The demo page: pick or record audio, upload it in three steps, play it back."""
    return send_from_directory(STATIC_DIR, "index.html", mimetype="text/html")

"""``/uppy``: the former Uppy page's address, now a redirect to the browser page (``api/demo.py``)."""

from __future__ import annotations

from flask import Blueprint, redirect
from werkzeug.wrappers import Response as BaseResponse

from advanced_notes.api.demo import PAGE_PATH

blp = Blueprint("uppy", __name__)


@blp.route("/uppy")
def uppy_page() -> BaseResponse:
    """``302`` to the browser page; browsers keep a ``#token=`` fragment across the redirect."""
    return redirect(PAGE_PATH, code=302)

"""Swagger UI's assets served by the API itself, so ``/api/docs`` works offline.

flask-smorest's page loads ``swagger-ui.css``, ``swagger-ui-bundle.js`` and
``swagger-ui-standalone-preset.js`` from ``OPENAPI_SWAGGER_UI_URL``; a CDN there leaves a
blank page on a plane, on a machine without internet, and behind a CSP that allows only
the page's own origin for scripts and styles. The files come from
the ``swagger-ui-bundle`` package (Swagger UI's release files, packaged on PyPI by the
maintainers of connexion) and are served under :data:`ASSETS_URL`.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, send_from_directory
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]  # ships no py.typed

#: Where the assets are served; what ``OPENAPI_SWAGGER_UI_URL`` is set to.
ASSETS_URL = "/api/docs/assets/"
#: The files the page loads (the package also ships source maps and other variants).
ASSET_FILES = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js"})
#: The files change only with the package version: a day of caching is safe.
MAX_AGE_SECONDS = 86_400

blp = Blueprint("swagger_assets", __name__)


@blp.route(ASSETS_URL + "<name>")
def swagger_asset(name: str) -> Response:
    """One of :data:`ASSET_FILES`; any other name is a 404."""
    if name not in ASSET_FILES:
        abort(404)
    return send_from_directory(str(swagger_ui_path), name, max_age=MAX_AGE_SECONDS)

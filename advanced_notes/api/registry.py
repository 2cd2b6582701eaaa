"""The API of one app: flask-smorest's Api (the OpenAPI document), every blueprint, the API's hooks."""

from __future__ import annotations

from flask import Flask, Response
from flask_smorest import Api as _SmorestApi
from werkzeug.exceptions import HTTPException

from advanced_notes.api import demo, swagger_assets, uppy_page
from advanced_notes.api.clips import clips_blueprint
from advanced_notes.api.errors import http_exception_response
from advanced_notes.api.health import health_blueprint
from advanced_notes.api.json_bodies import init_json_bodies
from advanced_notes.api.multipart import multipart_blueprint
from advanced_notes.api.multipart_s3 import multipart_s3_blueprint
from advanced_notes.api.notes import notes_blueprint
from advanced_notes.api.page_headers import init_nosniff
from advanced_notes.api.ratelimit import init_rate_limits
from advanced_notes.api.schemas import ErrorSchema, build_schemas
from advanced_notes.api.storage_events import SECURITY_SCHEME, storage_events_blueprint
from advanced_notes.settings import Settings

API_TITLE = "Advanced Notes audio clips"
API_VERSION = "1.0.0"


class Api(_SmorestApi):
    """flask-smorest's Api with the DESIGN §4 error shape for every HTTP error.

    Documents our ErrorSchema as the default error response, and answers werkzeug
    errors (404, 405, 413, webargs' 400/422) in our shape instead of flask-smorest's.
    """

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException) -> Response:
        return http_exception_response(error)


def init_api(app: Flask, settings: Settings) -> Api:
    """Configure flask-smorest on ``app`` and register every API blueprint, each built for this app.

    Serves the OpenAPI 3 document at ``/api/openapi.json`` and Swagger UI at ``/api/docs``
    (its assets from the app too, :mod:`advanced_notes.api.swagger_assets`).
    The limits that are settings (``MAX_UPLOAD_BYTES``, ``MAX_DURATION_MS``,
    ``ALLOWED_MIME_TYPES``) are validators of schemas built here from ``settings``
    (:func:`~advanced_notes.api.schemas.build_schemas`), so the document shows the bounds
    this deployment enforces (apispec writes them from the same validators), and two apps
    in one process each enforce and document their own.

    Args:
        app: the app being created.
        settings: its settings.
    Returns:
        the app's :class:`Api` (its ``spec`` is the OpenAPI document).
    """
    app.config.update(
        API_TITLE=API_TITLE,
        API_VERSION=API_VERSION,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        # Served by the app itself (swagger_assets): the docs work offline.
        OPENAPI_SWAGGER_UI_URL=swagger_assets.ASSETS_URL,
    )
    # A new Api per app: its own APISpec and marshmallow plugin, so no schema reference
    # (component name -> class) is cached across apps.
    api = Api(
        app,
        spec_kwargs={
            "info": {"description": "Direct-to-bucket audio uploads with presigned S3 URLs."},
            "security": [{"bearerAuth": []}],
        },
    )
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    schemas = build_schemas(settings)
    authenticated = [clips_blueprint(schemas), multipart_blueprint(), multipart_s3_blueprint(), notes_blueprint()]
    optional = []
    if settings.storage_events_token:
        # Off (no route, 404, not in the document) until its token is set: docs/events.md.
        api.spec.components.security_scheme(
            SECURITY_SCHEME,
            {"type": "http", "scheme": "bearer", "description": "STORAGE_EVENTS_TOKEN (MinIO webhook auth_token)."},
        )
        optional.append(storage_events_blueprint())
    for blueprint in (*authenticated, health_blueprint(), *optional):
        api.register_blueprint(blueprint)
    init_rate_limits(app, settings, authenticated, optional)
    init_json_bodies(app)
    init_nosniff(app)
    app.register_blueprint(demo.blp)  # a page, not part of the API document
    app.register_blueprint(uppy_page.blp)  # likewise
    app.register_blueprint(swagger_assets.blp)
    return api

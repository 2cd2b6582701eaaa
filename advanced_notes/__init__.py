"""Advanced Notes audio clips: direct-to-bucket uploads with presigned S3 URLs.

``create_app`` builds everything a process needs once (settings, engine and pool,
the boto3 client, the token verifier) and shares it across requests.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask

from .auth import TokenVerifier
from .config import Settings, load_settings
from .db import Database
from .errors import register_error_handlers
from .logs import configure_logging, init_request_logging
from .services.clips import ClipService
from .storage import S3Storage

__all__ = ["create_app", "AppServices"]
__version__ = "0.1.0"

DEFAULT_SQLITE_FILENAME = "advanced_notes.sqlite"


@dataclass(frozen=True)
class AppServices:
    """Process-wide objects, at ``app.extensions["advanced_notes"]``."""

    settings: Settings
    db: Database
    storage: S3Storage
    verifier: TokenVerifier
    clips: ClipService


def default_database_url(instance_path: str) -> str:
    """The embedded default: a SQLite file under the app's ``instance/`` folder."""
    Path(instance_path).mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{Path(instance_path) / DEFAULT_SQLITE_FILENAME}"


def environment_with(overrides: Mapping[str, Any] | None) -> dict[str, str]:
    """``os.environ`` with ``overrides`` applied; an override of None removes the variable."""
    env = dict(os.environ)
    for name, value in (overrides or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = str(value)
    return env


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the Flask app.

    Args:
        test_config: settings by environment-variable name (``{"DATABASE_URL": ...,
            "S3_ENDPOINT_URL": ...}``) applied over ``os.environ``; None removes one.
    Returns:
        the app, with :class:`AppServices` at ``app.extensions["advanced_notes"]``.
    Raises:
        ConfigError: one message naming every bad setting.
    """
    settings = load_settings(environment_with(test_config))
    app = Flask(__name__, instance_relative_config=True)
    # Audio never passes through the API: a JSON body over this limit is a 413.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]

    db = Database(settings.database_url or default_database_url(app.instance_path))
    storage = S3Storage(settings)
    app.extensions["advanced_notes"] = AppServices(
        settings=settings, db=db, storage=storage, verifier=TokenVerifier(settings),
        clips=ClipService(db, storage, settings),
    )

    configure_logging(settings)
    register_error_handlers(app)
    init_request_logging(app)
    from .api import init_api

    init_api(app, settings)
    if settings.cors_origins:
        from flask_cors import CORS

        CORS(app, resources={r"/api/*": {"origins": list(settings.cors_origins)}},
             allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
             expose_headers=["Retry-After", "X-Request-ID", "Idempotent-Replayed"], max_age=600)

    from .metrics import init_metrics

    init_metrics(app, db, __version__)
    from .cli import register_app_commands

    register_app_commands(app)
    logging.getLogger(__name__).debug("app created: env=%s prefix=%s", settings.environment, settings.key_prefix)
    return app

"""The composition root: ``create_app`` builds the process-wide services and the Flask app.

Each ``register_*`` step wires one concern onto the app, in the order requests meet
them. Command-line commands are not registered here: ``wsgi.py`` and the
``advanced-notes`` entry point add them (:mod:`advanced_notes.tools.cli`), so building
an app never imports the tools.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from advanced_notes import __version__
from advanced_notes.adapters.db import Database
from advanced_notes.adapters.storage import S3Storage
from advanced_notes.api.auth import TokenVerifier, auth_mode
from advanced_notes.api.context import AppServices, attach_services
from advanced_notes.api.cors import init_cors
from advanced_notes.api.errors import register_error_handlers
from advanced_notes.api.logs import configure_logging, init_request_logging
from advanced_notes.api.metrics import init_metrics
from advanced_notes.api.proxy import init_proxy_fix
from advanced_notes.api.registry import init_api
from advanced_notes.services.clips import ClipService
from advanced_notes.services.completion import ClipCompleter
from advanced_notes.services.deletions import DeletionQueue
from advanced_notes.services.events import StorageEventService
from advanced_notes.services.multipart import MultipartService
from advanced_notes.services.uploads import UploadService
from advanced_notes.services.webhooks import WebhookOutbox
from advanced_notes.settings import Settings, load_settings, shared_rate_limit_problem

__all__ = ["create_app"]

DEFAULT_SQLITE_FILENAME = "advanced_notes.sqlite"


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


def build_services(settings: Settings, instance_path: str) -> AppServices:
    """The process-wide objects: engine and pool, boto3 client, token verifier, services.

    The one place that constructs them: each constructor takes its collaborators.
    """
    db = Database(settings.database_url or default_database_url(instance_path))
    storage = S3Storage(settings)
    deletions = DeletionQueue(db, storage)
    webhooks = WebhookOutbox(settings)
    clips = ClipService(db, storage, deletions, webhooks)
    completer = ClipCompleter(db, storage, deletions, settings, webhooks)
    multipart = MultipartService(db, storage, clips, settings)
    return AppServices(
        settings=settings,
        db=db,
        storage=storage,
        verifier=TokenVerifier(settings),
        deletions=deletions,
        webhooks=webhooks,
        clips=clips,
        completer=completer,
        multipart=multipart,
        uploads=UploadService(db, storage, clips, completer, multipart, settings),
        events=StorageEventService(db, storage, completer, deletions, settings),
    )


def register_extensions(app: Flask, services: AppServices) -> None:
    """Logging, request logs, CORS, metrics and proxy headers: what wraps every request."""
    configure_logging(services.settings)
    init_proxy_fix(app, services.settings)
    init_request_logging(app)
    init_cors(app, services.settings)
    init_metrics(app, services.db, __version__, services.settings.metrics_cache_seconds)


def register_blueprints(app: Flask, services: AppServices) -> None:
    """The API (flask-smorest, OpenAPI document), its rate limits, and the demo page."""
    init_api(app, services.settings)


def create_app(
    test_config: Mapping[str, Any] | None = None, *, tokens: bool = True, start_log_level: int = logging.INFO
) -> Flask:
    """Build the Flask app.

    Args:
        test_config: settings by environment-variable name (``{"DATABASE_URL": ...,
            "S3_ENDPOINT_URL": ...}``) applied over ``os.environ``; None removes one.
        tokens: False for a command that verifies and mints no tokens: no token key is
            then required (:func:`~advanced_notes.settings.load_settings`).
        start_log_level: the level of the "app created" line: servers say it (INFO),
            commands keep it out of their output (DEBUG).
    Returns:
        the app; its :class:`~advanced_notes.api.context.AppServices` through
        :func:`~advanced_notes.api.context.services_of`.
    Raises:
        ConfigError: one message naming every bad setting.
    """
    environ = environment_with(test_config)
    settings = load_settings(environ, tokens=tokens)
    app = Flask(__name__, instance_relative_config=True)
    # Audio never passes through the API: a JSON body over this limit is a 413.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]

    services = build_services(settings, app.instance_path)
    attach_services(app, services)
    register_error_handlers(app)
    register_extensions(app, services)
    register_blueprints(app, services)
    # Which environment and auth mode a process runs in is the first thing to check when
    # tokens are accepted that should not be: a server says it at every start.
    logging.getLogger(__name__).log(
        start_log_level,
        "app created: environment=%s key_prefix=%s auth=%s",
        settings.environment,
        settings.key_prefix,
        auth_mode(settings),
    )
    warn_unshared_rate_limits(settings, environ)
    return app


def warn_unshared_rate_limits(settings: Settings, environ: Mapping[str, str]) -> str | None:
    """Log a warning when production rate limits are counted per process under several
    workers (:func:`~advanced_notes.settings.shared_rate_limit_problem`).

    The worker count is ``GUNICORN_WORKERS``, which gunicorn.conf.py's master exports to
    its workers; without it (one process: ``flask run``, tests, commands) nothing is said.
    Returns:
        the warning logged, or None.
    """
    configured = environ.get("GUNICORN_WORKERS", "")
    if not configured.strip().isdigit():
        return None
    problem = shared_rate_limit_problem(settings, int(configured))
    if problem is not None:
        logging.getLogger(__name__).warning("rate limits do not hold across workers: %s", problem)
    return problem

"""The process-wide services an app holds, and the typed way to reach them.

``create_app`` builds one :class:`AppServices` per process (settings, the engine and its
pool, the boto3 client, the token verifier, the services) and stores it on the app;
blueprints, commands and tests read it through :func:`services_of` or
:func:`current_services` instead of spelling out ``app.extensions[...]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from flask import Flask, current_app

if TYPE_CHECKING:  # types only: reading the services must not import the engine, boto3 or every service
    from advanced_notes.adapters.db import Database
    from advanced_notes.adapters.storage import S3Storage
    from advanced_notes.services.clips import ClipService
    from advanced_notes.services.completion import ClipCompleter
    from advanced_notes.services.deletions import DeletionQueue
    from advanced_notes.services.events import StorageEventService
    from advanced_notes.services.multipart import MultipartService
    from advanced_notes.services.uploads import UploadService
    from advanced_notes.services.webhooks import WebhookOutbox
    from advanced_notes.settings import Settings

_EXTENSION = "advanced_notes"


class BearerVerifier(Protocol):
    """What the request's authentication needs of a token verifier
    (:class:`advanced_notes.api.auth.TokenVerifier` is the one ``build_services`` makes).

    Typed by this protocol, the services name no class of :mod:`advanced_notes.api.auth`,
    which reads the services: the two modules do not import each other.
    """

    def verify(self, token: str) -> dict[str, Any]:
        """The verified claims of ``token`` (``sub`` is the owner id). Raises Unauthorized."""
        ...


@dataclass(frozen=True)
class AppServices:
    """Process-wide objects, shared by every request and thread of one process."""

    settings: Settings
    db: Database
    storage: S3Storage
    verifier: BearerVerifier
    deletions: DeletionQueue
    webhooks: WebhookOutbox
    clips: ClipService
    completer: ClipCompleter
    multipart: MultipartService
    uploads: UploadService
    events: StorageEventService


def attach_services(app: Flask, services: AppServices) -> None:
    """Store ``services`` on ``app`` (once, at creation)."""
    app.extensions[_EXTENSION] = services


def services_of(app: Flask) -> AppServices:
    """The :class:`AppServices` of ``app``. Raises KeyError for an app not built by create_app."""
    services: AppServices = app.extensions[_EXTENSION]
    return services


def current_services() -> AppServices:
    """The :class:`AppServices` of the app handling the current request or command."""
    return services_of(current_app)

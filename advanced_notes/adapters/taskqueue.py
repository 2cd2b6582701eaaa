"""The task-queue adapter: where the broker is, and publishing processing wake-ups to it.

Besides ``advanced_notes.worker``, the only module that uses Celery, and it imports
Celery lazily (inside :class:`CeleryPublisher`): only the relay publishes, and the web
app, which imports the adapters, must never load Celery or kombu (setup.cfg's contract and
``tests/processing/test_processing.py`` check it).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from advanced_notes.settings import ConfigError, Settings

#: The Celery task names (``advanced_notes.worker.tasks``).
PROCESS_CLIP_TASK = "advanced_notes.process_clip"
RELAY_TASK = "advanced_notes.relay"
DEV_BROKER_FILENAME = "broker.sqlite"
#: Seconds to wait for the broker when connecting or publishing: a dead broker must not
#: hold the relay (the jobs stay in the outbox and are published on a later run).
BROKER_TIMEOUT_SECONDS = 3.0


class BrokerUnavailable(Exception):
    """The broker could not be reached or refused the message."""


def broker_url(settings: Settings, instance_path: str | Path) -> str:
    """The Celery broker URL: ``PROCESSING_BROKER_URL``, or in dev kombu's SQLAlchemy
    transport on ``<instance>/broker.sqlite`` (no server to install).

    Raises:
        ConfigError: outside dev with ``PROCESSING_BROKER_URL`` unset.
    """
    if settings.processing_broker_url:
        return settings.processing_broker_url
    if not settings.is_dev:
        raise ConfigError(
            {"PROCESSING_BROKER_URL": "is required outside dev (the worker's broker, e.g. redis://host:6379/0)"}
        )
    path = Path(instance_path)
    path.mkdir(parents=True, exist_ok=True)
    return f"sqla+sqlite:///{path / DEV_BROKER_FILENAME}"


def transport_options(settings: Settings, url: str) -> dict[str, Any]:
    """kombu transport options for the broker at ``url``.

    Redis: ``visibility_timeout`` (seconds before an unacknowledged message is given to
    another worker) outlives a job's hard time limit, and connecting or sending gives up
    after :data:`BROKER_TIMEOUT_SECONDS`. Other transports take none (the SQLAlchemy
    transport passes its options to ``create_engine``).
    """
    if not url.startswith(("redis://", "rediss://")):
        return {}
    return {
        "visibility_timeout": settings.processing_time_limit_seconds + 120,
        "socket_connect_timeout": BROKER_TIMEOUT_SECONDS,
        "socket_timeout": BROKER_TIMEOUT_SECONDS,
    }


class CeleryPublisher:
    """Publishes ``advanced_notes.process_clip(clip_id)`` messages to ``PROCESSING_QUEUE``.

    Args:
        url: the broker URL (:func:`broker_url`); settings: the queue and time limits.
        app: a Celery app to publish with (the worker's own); default one made for ``url``.

    Call it as ``publisher(clip_id)``; raises :class:`BrokerUnavailable`.
    """

    def __init__(self, url: str, settings: Settings, app: Any = None):
        self.url = url
        self.queue = settings.processing_queue
        self._options = transport_options(settings, url)
        self._app = app
        self._owned = app is None

    def _celery(self) -> Any:
        if self._app is None:
            from celery import Celery  # only the relay's process loads Celery

            self._app = Celery(
                "advanced-notes-relay",
                broker=self.url,
                set_as_current=False,
                config_source={
                    "broker_transport_options": self._options,
                    "broker_connection_timeout": BROKER_TIMEOUT_SECONDS,
                    "broker_connection_retry_on_startup": False,
                    "task_ignore_result": True,
                },
            )
        return self._app

    def __call__(self, clip_id: uuid.UUID) -> None:
        """Publish one wake-up for ``clip_id``'s job (no retry: the outbox retries)."""
        try:
            self._celery().send_task(PROCESS_CLIP_TASK, args=[str(clip_id)], queue=self.queue, retry=False)
        except Exception as exc:  # kombu's and redis-py's connection errors share no base
            raise BrokerUnavailable(f"The broker refused the message ({exc.__class__.__name__}).") from exc

    def close(self) -> None:
        """Release the broker connections of a Celery app this publisher made."""
        if self._owned and self._app is not None:
            self._app.close()
            self._app = None


@dataclass(frozen=True)
class BrokerStatus:
    """What :func:`broker_status` found: ``broker_error`` None when the broker answered;
    ``workers``: names of the Celery workers that answered a ping; ``pingable``: False on a
    transport without remote control (kombu's SQLAlchemy transport has no broadcast), where
    no worker can answer a ping whether it runs or not."""

    broker_error: str | None
    workers: list[str]
    pingable: bool = True


def broker_status(url: str, settings: Settings, timeout: float = 2.0) -> BrokerStatus:
    """Is the broker at ``url`` reachable, and which workers answer ``inspect ping`` within
    ``timeout`` seconds (Celery's remote control, broadcast over the broker)."""
    from celery import Celery

    app = Celery("advanced-notes-check", broker=url, set_as_current=False)
    app.conf.update(broker_transport_options=transport_options(settings, url), broker_connection_timeout=timeout)
    try:
        with app.connection_for_write() as conn:
            try:
                conn.ensure_connection(max_retries=1, timeout=timeout)
            except Exception as exc:  # kombu and redis-py errors share no base
                return BrokerStatus(f"{exc.__class__.__name__}: {exc}", [])
            # Celery's remote control is a broadcast: a fanout exchange on the broker.
            if "fanout" not in conn.transport.implements.exchange_type:
                return BrokerStatus(None, [], pingable=False)
        try:
            answers = app.control.inspect(timeout=timeout).ping() or {}
        except Exception as exc:  # kombu and redis-py errors share no base
            return BrokerStatus(f"{exc.__class__.__name__}: {exc}", [])
        return BrokerStatus(None, sorted(answers))
    finally:
        app.close()

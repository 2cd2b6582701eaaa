"""The worker's tasks, thin: each calls a service (``services.processing_relay``, ``services.processing_runner``).

The services are built once per worker child, on its first task (after the fork: a
database pool or boto3 client must not be shared across processes).
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass

from advanced_notes.adapters.taskqueue import PROCESS_CLIP_TASK, RELAY_TASK, CeleryPublisher, broker_url
from advanced_notes.app import build_services
from advanced_notes.services.processing_relay import ProcessingRelay
from advanced_notes.services.processing_runner import ProcessingRunner
from advanced_notes.worker.celery_app import INSTANCE, SETTINGS, app
from advanced_notes.worker.engine import media_engine


@dataclass(frozen=True)
class Runtime:
    """The services of one worker child."""

    runner: ProcessingRunner
    relay: ProcessingRelay


@functools.cache
def runtime() -> Runtime:
    """This child's services (built on first use)."""
    settings, instance = SETTINGS, INSTANCE
    services = build_services(settings, instance)
    engine = media_engine(settings)
    runner = ProcessingRunner(services.db, services.storage, services.deletions, engine, settings, services.webhooks)
    publisher = CeleryPublisher(broker_url(settings, instance), settings, app=app)
    return Runtime(runner, ProcessingRelay(services.db, publisher, settings))


@app.task(name=PROCESS_CLIP_TASK)
def process_clip(clip_id: str) -> str:
    """Run the processing job of ``clip_id`` (a UUID string); returns the runner's outcome."""
    return runtime().runner.run(uuid.UUID(clip_id))


@app.task(name=RELAY_TASK)
def relay() -> int:
    """Publish the due processing jobs; returns how many were published."""
    return runtime().relay.publish_due().published

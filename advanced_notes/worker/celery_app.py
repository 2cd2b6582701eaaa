"""The Celery app of the processing worker, built from the settings (docs/processing.md).

``celery -A advanced_notes.worker.celery_app worker --concurrency N`` runs jobs;
``celery -A advanced_notes.worker.celery_app beat`` (or ``worker -B`` on one machine) runs
the relay every ``PROCESSING_RELAY_INTERVAL_SECONDS``. Settings come from the environment
(and a ``.env`` file in the working directory, as for ``wsgi.py``).

Delivery: ``task_acks_late`` + ``task_reject_on_worker_lost`` (a message is acknowledged
after its task returns, and requeued when the child running it dies), prefetch 1 (a
worker holds no message it is not running), Celery's soft/hard time limits after the
engine's own (``PROCESSING_TIME_LIMIT_SECONDS``), children replaced past
``PROCESSING_MAX_MEMORY_MB``, no result backend: the database is the truth.
"""

from __future__ import annotations

from pathlib import Path

from celery import Celery
from dotenv import load_dotenv
from flask import Flask

from advanced_notes.adapters.taskqueue import RELAY_TASK, broker_url, transport_options
from advanced_notes.app import environment_with
from advanced_notes.services.processing_runner import time_limits
from advanced_notes.settings import Settings, load_settings

#: A relay message older than this many relay intervals is dropped unread: while every
#: worker is busy, beat's messages must not pile up.
RELAY_EXPIRES_INTERVALS = 5


def instance_path() -> str:
    """The web app's ``instance/`` folder (where dev keeps its SQLite database and broker)."""
    return Flask("advanced_notes.app", instance_relative_config=True).instance_path


def build_celery_app(settings: Settings, instance: str | Path) -> Celery:
    """The worker's Celery app for ``settings`` (broker, queue, limits, beat schedule)."""
    soft, hard, _lease = time_limits(settings)
    interval = settings.processing_relay_interval_seconds
    url = broker_url(settings, instance)
    celery = Celery("advanced_notes", broker=url, include=["advanced_notes.worker.tasks"])
    celery.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_soft_time_limit=soft,
        task_time_limit=hard,
        worker_max_memory_per_child=settings.processing_max_memory_mb * 1024,  # KiB
        task_ignore_result=True,
        task_default_queue=settings.processing_queue,
        broker_transport_options=transport_options(settings, url),
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        beat_schedule={
            "processing-relay": {
                "task": RELAY_TASK,
                "schedule": float(interval),
                "options": {"expires": float(interval * RELAY_EXPIRES_INTERVALS)},
            }
        },
        beat_schedule_filename=str(Path(instance) / "celerybeat-schedule"),
    )
    return celery


load_dotenv(override=False)
#: The settings and instance folder this worker process runs with.
SETTINGS = load_settings(environment_with(None))
INSTANCE = instance_path()
app = build_celery_app(SETTINGS, INSTANCE)

"""The processing worker with its engine timed: ``celery -A bench.timed_worker worker``.

The same Celery app and tasks as ``advanced_notes.worker.celery_app``; each engine call
(``process_file``: decode, measure, transcode, peaks) prints ``ENGINE_SECONDS <s>`` to the
worker's output, so bench/processing_latency.py can set the transcode time measured in
the same run, under the same load, beside the time from ready to done.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from advanced_notes.worker import tasks
from advanced_notes.worker.celery_app import app

__all__ = ["app"]

_media_engine = tasks.media_engine


def timed_media_engine(settings: Any) -> Any:
    """``worker.engine.media_engine`` whose engine prints its wall time (seconds)."""
    engine = _media_engine(settings)

    def timed(source: Path, workdir: Path) -> Any:
        started = time.monotonic()
        try:
            return engine(source, workdir)
        finally:
            print(f"ENGINE_SECONDS {time.monotonic() - started:.3f}", flush=True)

    return timed


# runtime() looks the name up when a child builds its services, after this module ran.
tasks.media_engine = timed_media_engine

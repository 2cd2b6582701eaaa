"""The dev server's bucket-event consumer: uploads whose client never calls complete finish by themselves.

``advanced-notes dev`` points the emulator bucket's ObjectCreated notifications at an SQS
queue of the same emulator (:func:`advanced_notes.tools.embedded_s3.deliver_bucket_events`)
and runs this consumer in a thread of its own process: the same
:class:`~advanced_notes.services.events.EventConsumer` as ``events consume``, with a short
long-poll, so a PUT is finished (``path="event"``: the checks of ``complete``) within about a
second of its arrival. docs/events.md, "In development"; docs/design-choices.md says why
events rather than a sweeper on a short grace.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from advanced_notes.adapters.queue import SqsQueue
from advanced_notes.domain.errors import StorageUnavailable
from advanced_notes.services.events import EventConsumer

log = logging.getLogger(__name__)

#: Long-poll of one receive, seconds: also how long :meth:`DevEventConsumer.stop` may wait.
POLL_SECONDS = 1
#: Pause after the queue could not be reached, seconds, before the next try.
RETRY_SECONDS = 1.0


class DevEventConsumer:
    """Consumes ``settings.s3_events_queue_url`` in a daemon thread until :meth:`stop`.

    Args:
        services: the app's :class:`~advanced_notes.api.context.AppServices` (its settings
            name the queue; its ``events`` settles the records).
    """

    def __init__(self, services: Any):
        settings = services.settings
        if not settings.s3_events_queue_url:
            raise ValueError("S3_EVENTS_QUEUE_URL is not set")
        self.consumer = EventConsumer(
            SqsQueue(settings, settings.s3_events_queue_url), services.events, None, settings.s3_events_max_receives
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dev-bucket-events", daemon=True)

    def start(self) -> None:
        """Start consuming (returns at once)."""
        self._thread.start()

    def stop(self, timeout: float = POLL_SECONDS + 5) -> None:
        """Finish the message in hand and the receive in flight, then return (at most ``timeout`` s)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.consumer.run(once=False, should_stop=self._stop.is_set, wait_seconds=POLL_SECONDS)
            except StorageUnavailable as exc:
                # The emulator runs in this process: it is stopping, or was never reached.
                log.warning("bucket events: %s; trying again", exc.message)
                self._stop.wait(RETRY_SECONDS)

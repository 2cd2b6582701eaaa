"""The processing relay: publish due jobs from the outbox to the broker (docs/processing.md).

The database is the truth: a job row is written by the statement that makes a clip ready
(revision 0009); the broker only carries wake-ups. :class:`ProcessingRelay` claims due
rows and publishes one message per row through an injected publisher (the task-queue
adapter), so this module never imports Celery.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from advanced_notes.adapters import processing_sql as sql
from advanced_notes.adapters.db import Database
from advanced_notes.domain.clock import utcnow
from advanced_notes.settings import Settings

log = logging.getLogger(__name__)

#: ``publish(clip_id)``: send one wake-up for the job; raises on a broker fault.
Publisher = Callable[[uuid.UUID], None]


@dataclass
class RelayResult:
    """What one :meth:`ProcessingRelay.publish_due` did: jobs published, and whether the
    publisher failed (the remaining claimed jobs were released, due again at once)."""

    published: int = 0
    failed: bool = False


class ProcessingRelay:
    """Publishes due processing jobs (the outbox relay).

    Args:
        db: the database; publisher: sends one wake-up per job (the task-queue adapter);
        settings: ``processing_enabled``, ``processing_republish_seconds``.
        clock: the current time (aware UTC).
    """

    def __init__(
        self, db: Database, publisher: Publisher, settings: Settings, clock: Callable[[], dt.datetime] = utcnow
    ):
        self.db = db
        self.publisher = publisher
        self.enabled = settings.processing_enabled
        self.republish = dt.timedelta(seconds=settings.processing_republish_seconds)
        self.clock = clock

    def publish_due(self, limit: int = 100) -> RelayResult:
        """Claim up to ``limit`` due jobs and publish one message for each.

        A claimed job is due again ``PROCESSING_REPUBLISH_SECONDS`` later (a message lost,
        or a worker that died before claiming it, costs that wait); a worker's claim moves it
        to the end of its lease. When the publisher fails, the claimed jobs not yet
        published are released (due at once) and the run stops: the broker being down
        delays processing, never skips it. Nothing is published with
        ``PROCESSING_ENABLED=off``.
        """
        result = RelayResult()
        if not self.enabled:
            return result
        now = self.clock()
        claimed_at = now + self.republish
        with self.db.transaction() as session:
            claimed = sql.claim_due_jobs(session, now=now, limit=limit, republish_at=claimed_at)
        for index, (clip_id, previous) in enumerate(claimed):
            try:
                self.publisher(clip_id)
            except Exception as exc:  # any broker fault: the jobs stay in the outbox
                log.warning("processing relay: publishing failed (%s); jobs stay queued", exc.__class__.__name__)
                rest = [c for c, _ in claimed[index:]]
                with self.db.transaction() as session:
                    sql.release_jobs(session, clip_ids=rest, at=min(previous, now), claimed_at=claimed_at)
                result.failed = True
                break
            result.published += 1
        return result

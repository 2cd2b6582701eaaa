"""The processing job runner: what one ``process_clip`` message does (docs/processing.md).

Claim the job (a lease), download the original, call the injected engine, upload its
outputs under the clip's derived keys, and record ``done`` (or ``failed``, or a retry)
with its webhook in one transaction. The worker (``advanced_notes.worker``) injects the
engine; this module never imports the media engine, PyAV or Celery (import-linter's
contracts).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from advanced_notes.adapters import processing_sql as sql
from advanced_notes.adapters.db import Database
from advanced_notes.adapters.models import ClipRecord, ProcessingStatus
from advanced_notes.adapters.storage import S3Storage
from advanced_notes.domain.clock import utcnow
from advanced_notes.domain.errors import ObjectVanished, StorageUnavailable
from advanced_notes.domain.mime import extension_for
from advanced_notes.services.deletions import DeletionQueue
from advanced_notes.services.processing_engine import Engine, EngineFailure, output_files, results_json
from advanced_notes.services.webhooks import WebhookOutbox
from advanced_notes.settings import Settings

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED = (s.value for s in ProcessingStatus)
#: The job's lease outlives the media run's limit by this much: Celery's soft limit comes
#: 15 s after it, its hard limit (the child is killed) 30 s after it.
SOFT_LIMIT_MARGIN = dt.timedelta(seconds=15)
HARD_LIMIT_MARGIN = dt.timedelta(seconds=30)
LEASE_MARGIN = dt.timedelta(seconds=45)
BACKOFF_BASE_SECONDS = 10
BACKOFF_MAX_SECONDS = 1800


def backoff(attempts: int) -> dt.timedelta:
    """Delay before run number ``attempts + 1`` after a store fault: 10 s, 20 s, 40 s, ... at most 30 min."""
    return dt.timedelta(seconds=min(BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0), BACKOFF_MAX_SECONDS))


def time_limits(settings: Settings) -> tuple[float, float, dt.timedelta]:
    """``(soft, hard, lease)``: Celery's soft and hard time limits (seconds) and the job lease,
    from ``PROCESSING_TIME_LIMIT_SECONDS`` (the engine's own wall-time limit)."""
    limit = dt.timedelta(seconds=settings.processing_time_limit_seconds)
    return (
        (limit + SOFT_LIMIT_MARGIN).total_seconds(),
        (limit + HARD_LIMIT_MARGIN).total_seconds(),
        limit + LEASE_MARGIN,
    )


class ProcessingRunner:
    """Runs one processing job (what a ``process_clip`` message does).

    Args:
        db: the database; storage: the S3 adapter; deletions: the deletion outbox;
        engine: the media engine (``advanced_notes.media.process_file`` bound to the
            limits, injected by the worker); settings: ``processing_time_limit_seconds``,
            ``processing_max_attempts``; webhooks: the outbox; clock: the current time (aware UTC);
        workdir_root: where each run's temporary directory is made (default the system's).
    """

    def __init__(
        self,
        db: Database,
        storage: S3Storage,
        deletions: DeletionQueue,
        engine: Engine,
        settings: Settings,
        webhooks: WebhookOutbox,
        clock: Callable[[], dt.datetime] = utcnow,
        workdir_root: Path | None = None,
    ):
        self.db = db
        self.storage = storage
        self.deletions = deletions
        self.engine = engine
        self.webhooks = webhooks
        self.max_attempts = settings.processing_max_attempts
        self.lease = time_limits(settings)[2]
        self.clock = clock
        self.workdir_root = workdir_root

    def run(self, clip_id: uuid.UUID) -> str:
        """Process the clip ``clip_id`` once, if its job is due to run here.

        Returns:
            ``done``; ``failed`` (the engine refused the file, the store kept failing past
            ``PROCESSING_MAX_ATTEMPTS``, or runs kept dying); ``retry`` (a store fault:
            the job is due again after a backoff, the clip ``queued``); ``busy`` (another
            worker holds the job, or it already finished: a duplicate message); ``dropped``
            (the clip is gone or not ready: nothing to process).
        Never raises for the file or the store; a database fault propagates (the message
        is then redelivered or republished).
        """
        now = self.clock()
        with self.db.transaction() as session:
            claimed = sql.claim_job(session, clip_id=clip_id, now=now, lease_until=now + self.lease)
            clip = sql.ready_clip(session, clip_id=clip_id) if claimed is not None else None
            if claimed is not None and clip is None:
                sql.drop_job(session, clip_id=clip_id)
        if claimed is None:
            return "busy"
        if clip is None:
            return "dropped"
        if claimed.attempts > self.max_attempts:
            # Earlier runs took the lease and never finished: the worker was killed (memory,
            # time) or crashed. This file must not take down workers forever.
            return self._fail(clip, "worker_lost", f"Processing stopped {claimed.attempts - 1} times before finishing.")
        try:
            with tempfile.TemporaryDirectory(prefix="an-processing-", dir=self.workdir_root) as tmp:
                return self._process(clip, claimed.attempts, Path(tmp))
        except StorageUnavailable as exc:
            return self._retry(clip, claimed.attempts, "store_unavailable", exc.message)

    def _process(self, clip: ClipRecord, attempts: int, workdir: Path) -> str:
        source = workdir / f"original.{extension_for(clip.mime_type)}"
        try:
            self.storage.download_file(clip.storage_key, source)
        except ObjectVanished:
            if self._clip_gone(clip):
                return "dropped"
            return self._fail(clip, "original_missing", "The recording is no longer in the store.")
        outputs = workdir / "out"
        outputs.mkdir()
        try:
            result = self.engine(source, outputs)
        except EngineFailure as failure:
            return self._fail(clip, failure.reason, failure.message)
        written: list[str] = []
        for key, path, content_type in output_files(clip, result):
            self.storage.upload_file(key, path, content_type)
            written.append(key)
        return self._done(clip, results_json(clip, result), written)

    def _clip_gone(self, clip: ClipRecord) -> bool:
        with self.db.transaction() as session:
            if sql.ready_clip(session, clip_id=clip.id) is None:
                sql.drop_job(session, clip_id=clip.id)
                return True
        return False

    def _done(self, clip: ClipRecord, results: dict[str, Any], written: list[str]) -> str:
        records = []
        with self.db.transaction() as session:
            stored = sql.set_clip_processing(session, clip_id=clip.id, status=DONE, processing=json.dumps(results))
            if stored is None:
                # Deleted while we worked: the objects just written must go too (DELETE
                # recorded the derived keys as well; whichever runs last finds them).
                records = DeletionQueue.enqueue_keys(session, clip.id, written, "deleted")
                sql.drop_job(session, clip_id=clip.id)
            else:
                sql.finish_job(session, clip_id=clip.id)
                self.webhooks.enqueue(session, "clip.processed", stored, {"processing": results})
        if records:
            self.deletions.attempt(records)
            return "dropped"
        log.info("processing done: clip %s", clip.id)
        return DONE

    def _fail(self, clip: ClipRecord, reason: str, message: str) -> str:
        results = {"reason": {"code": reason, "message": message}}
        with self.db.transaction() as session:
            stored = sql.set_clip_processing(session, clip_id=clip.id, status=FAILED, processing=json.dumps(results))
            if stored is None:
                sql.drop_job(session, clip_id=clip.id)
                return "dropped"
            sql.finish_job(session, clip_id=clip.id, error=f"{reason}: {message}")
            self.webhooks.enqueue(session, "clip.processing_failed", stored, {"processing": results})
        log.info("processing failed: clip %s (%s)", clip.id, reason)
        return FAILED

    def _retry(self, clip: ClipRecord, attempts: int, reason: str, message: str) -> str:
        if attempts >= self.max_attempts:
            return self._fail(clip, reason, f"{message} Processing gave up after {attempts} attempts.")
        with self.db.transaction() as session:
            sql.back_off_job(session, clip_id=clip.id, next_attempt_at=self.clock() + backoff(attempts), error=message)
        log.warning("processing of clip %s: %s (attempt %d); will retry", clip.id, reason, attempts)
        return "retry"

"""The processing stage: publish due jobs (relay), run one job (runner). docs/processing.md.

The database is the truth: a job row is written by the statement that makes a clip ready
(revision 0009); the broker only carries wake-ups. :class:`ProcessingRelay` claims due
rows and publishes one message per row through an injected publisher (the task-queue
adapter); :class:`ProcessingRunner` is what a message runs: claim the job (a lease),
download the original, call the injected engine, upload its outputs under the clip's
derived keys, and record ``done`` (or ``failed``, or a retry) with its webhook in one
transaction.

This module never imports the media engine, PyAV or Celery (import-linter's contracts):
the worker (``advanced_notes.worker``) injects both.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import tempfile
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from advanced_notes.adapters import processing_sql as sql
from advanced_notes.adapters.db import Database
from advanced_notes.adapters.models import ClipRecord, ProcessingStatus
from advanced_notes.adapters.storage import S3Storage
from advanced_notes.domain.clock import utcnow
from advanced_notes.domain.errors import ObjectVanished, StorageUnavailable
from advanced_notes.domain.keys import PEAKS_FILE, RENDITION_FILES, derived_key
from advanced_notes.domain.mime import extension_for
from advanced_notes.services.deletions import DeletionQueue
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
PEAKS_TYPE = "application/json"


def backoff(attempts: int) -> dt.timedelta:
    """Delay before run number ``attempts + 1`` after a store fault: 10 s, 20 s, 40 s, ... at most 30 min."""
    return dt.timedelta(seconds=min(BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0), BACKOFF_MAX_SECONDS))


class EngineFailure(Exception):
    """The engine could not process the file; retrying would not help (the worker raises it
    for the engine's ``MediaError``).

    Attributes:
        reason: a short code (``not_audio``, ``corrupt``, ``too_long``, ``timeout``,
            ``ffmpeg_error``). message: one sentence for a person.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


# What the runner reads of the engine's result (advanced_notes.media.results), as protocols:
# the service never imports the engine.
class RenditionResult(Protocol):
    @property
    def path(self) -> Path | None: ...
    @property
    def media_type(self) -> str | None: ...
    @property
    def codec(self) -> str | None: ...
    @property
    def bytes(self) -> int | None: ...
    @property
    def skipped(self) -> str | None: ...


class PeaksResult(Protocol):
    @property
    def path(self) -> Path: ...
    @property
    def samples_per_pixel(self) -> int: ...
    @property
    def length(self) -> int: ...


class LoudnessResult(Protocol):
    @property
    def integrated_lufs(self) -> float: ...
    @property
    def true_peak_dbtp(self) -> float: ...


class EngineResult(Protocol):
    @property
    def duration_ms(self) -> int: ...
    @property
    def loudness(self) -> LoudnessResult: ...
    @property
    def peaks(self) -> PeaksResult: ...
    @property
    def seekable(self) -> RenditionResult: ...
    @property
    def universal(self) -> RenditionResult: ...
    @property
    def normalized(self) -> RenditionResult | None: ...


#: ``engine(source, workdir)``: process the local file ``source`` into ``workdir``; raises
#: :class:`EngineFailure` for a file that cannot be processed.
Engine = Callable[[Path, Path], EngineResult]
#: ``publish(clip_id)``: send one wake-up for the job; raises on a broker fault.
Publisher = Callable[[uuid.UUID], None]


def time_limits(settings: Settings) -> tuple[float, float, dt.timedelta]:
    """``(soft, hard, lease)``: Celery's soft and hard time limits (seconds) and the job lease,
    from ``PROCESSING_TIME_LIMIT_SECONDS`` (the engine's own wall-time limit)."""
    limit = dt.timedelta(seconds=settings.processing_time_limit_seconds)
    return (
        (limit + SOFT_LIMIT_MARGIN).total_seconds(),
        (limit + HARD_LIMIT_MARGIN).total_seconds(),
        limit + LEASE_MARGIN,
    )


def _finite(value: float) -> float | None:
    # Digital silence has a true peak of -inf: JSON has no such number.
    return round(value, 2) if math.isfinite(value) else None


def results_json(clip: ClipRecord, result: EngineResult) -> dict[str, Any]:
    """The ``processing`` column of a done clip (docs/processing.md, "Results")."""
    renditions: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for name in RENDITION_FILES:
        rendition: RenditionResult | None = getattr(result, name)
        if rendition is None:
            continue
        if rendition.path is None:
            skipped[name] = rendition.skipped or "Not made."
            continue
        renditions[name] = {
            "key": derived_key(clip.storage_key, RENDITION_FILES[name]),
            "mime_type": rendition.media_type,
            "bytes": rendition.bytes,
            "codec": rendition.codec,
            "duration_ms": result.duration_ms,
        }
    return {
        "reason": None,
        "duration_ms": result.duration_ms,
        "loudness_lufs": _finite(result.loudness.integrated_lufs),
        "true_peak_dbtp": _finite(result.loudness.true_peak_dbtp),
        "renditions": renditions,
        "skipped": skipped,
        "peaks": {
            "key": derived_key(clip.storage_key, PEAKS_FILE),
            "samples_per_pixel": result.peaks.samples_per_pixel,
            "length": result.peaks.length,
            "bits": 8,
        },
    }


def _uploads(clip: ClipRecord, result: EngineResult) -> Iterable[tuple[str, Path, str]]:
    """``(key, local path, content type)`` of every output to store."""
    for name in RENDITION_FILES:
        rendition: RenditionResult | None = getattr(result, name)
        if rendition is not None and rendition.path is not None:
            key = derived_key(clip.storage_key, RENDITION_FILES[name])
            yield key, rendition.path, rendition.media_type or "audio/mp4"
    yield derived_key(clip.storage_key, PEAKS_FILE), result.peaks.path, PEAKS_TYPE


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
        for key, path, content_type in _uploads(clip, result):
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

"""The media engine as the runner's injected callable (``services.processing_engine.Engine``)."""

from __future__ import annotations

from pathlib import Path

from advanced_notes.media import MediaError, MediaLimits, MediaResult, process_file
from advanced_notes.services.processing_engine import Engine, EngineFailure
from advanced_notes.settings import Settings

#: The decoded duration may exceed what ``complete`` measured by parsing headers (a VBR
#: estimate); a clip that passed complete is not refused for that.
DURATION_SLACK_MS = 60_000


def media_engine(settings: Settings) -> Engine:
    """``process_file`` bound to the settings' limits, raising ``EngineFailure`` for ``MediaError``.

    Limits: ``MAX_DURATION_MS`` plus :data:`DURATION_SLACK_MS` (decoded duration, ms) and
    ``PROCESSING_TIME_LIMIT_SECONDS`` (wall time, seconds); ``PROCESSING_NORMALIZE_AUDIO`` and
    ``PROCESSING_TARGET_LUFS``
    (LUFS) ask for the normalized rendition.
    """
    limits = MediaLimits(
        max_duration_ms=settings.max_duration_ms + DURATION_SLACK_MS, max_seconds=settings.processing_time_limit_seconds
    )
    normalize, target = settings.processing_normalize_audio, settings.processing_target_lufs

    def engine(source: Path, workdir: Path) -> MediaResult:
        try:
            return process_file(source, workdir, limits=limits, normalize=normalize, target_lufs=target)
        except MediaError as exc:
            raise EngineFailure(exc.reason, exc.message) from exc

    return engine

"""The processing engine as the runner sees it: its failure, its result, and what a done
clip records of it (docs/processing.md, "Results").

The engine itself (``advanced_notes.media``, PyAV) is injected by the worker; this module
describes its result as protocols, so the services never import the engine, PyAV or
Celery (import-linter's contracts).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from advanced_notes.adapters.models import ClipRecord
from advanced_notes.domain.keys import PEAKS_FILE, RENDITION_FILES, derived_key

PEAKS_TYPE = "application/json"


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


def output_files(clip: ClipRecord, result: EngineResult) -> Iterable[tuple[str, Path, str]]:
    """``(key, local path, content type)`` of every output to store."""
    for name in RENDITION_FILES:
        rendition: RenditionResult | None = getattr(result, name)
        if rendition is not None and rendition.path is not None:
            key = derived_key(clip.storage_key, RENDITION_FILES[name])
            yield key, rendition.path, rendition.media_type or "audio/mp4"
    yield derived_key(clip.storage_key, PEAKS_FILE), result.peaks.path, PEAKS_TYPE

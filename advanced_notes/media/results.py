"""The engine's inputs (limits), outputs (typed results) and its one error."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class MediaError(Exception):
    """The file could not be processed; nothing about it should be retried as is.

    Attributes:
        reason: a short code: ``not_audio`` (no audio stream, not a media file, an
            impostor), ``corrupt`` (an audio stream with more damaged packets
            than a run tolerates), ``too_long`` (decoded duration past ``MediaLimits.max_duration_ms``),
            ``timeout`` (wall time past ``MediaLimits.max_seconds``), ``ffmpeg_error`` (any
            other failure inside FFmpeg while encoding or writing).
        message: one sentence for a person; never paths, codec internals or FFmpeg's text.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class MediaLimits:
    """Bounds of one processing run.

    Attributes:
        max_duration_ms: decoded audio past this many milliseconds stops the run
            (``too_long``); checked as each frame is decoded, so a long file costs no
            more than the limit's worth of work.
        max_seconds: wall time (seconds) past which the run stops (``timeout``), checked
            between packets.
    """

    max_duration_ms: int = 4 * 60 * 60 * 1000
    max_seconds: float = 600.0


@dataclass(frozen=True)
class Rendition:
    """One derived audio file, or why it was not made.

    Attributes:
        name: ``seekable``, ``universal`` or ``normalized``.
        path: the file written in the caller's workdir; None when skipped.
        media_type: e.g. ``audio/webm``, ``audio/mp4``.
        codec: FFmpeg's codec name of its audio (``opus``, ``vorbis``, ``aac``).
        bitrate_bps: the encoder's target bitrate (bits/s); None for a remux (the
            original's packets, whatever their rate).
        sample_rate: Hz. channels: 1 or 2 for encoded renditions.
        bytes: the file's size.
        skipped: why it was not made (path is None then), e.g. ``already AAC-LC in MP4``.
    """

    name: str
    path: Path | None
    media_type: str | None = None
    codec: str | None = None
    bitrate_bps: int | None = None
    sample_rate: int | None = None
    channels: int | None = None
    bytes: int | None = None
    skipped: str | None = None


@dataclass(frozen=True)
class Loudness:
    """EBU R128 measurements of the whole decoded stream (FFmpeg's ``ebur128`` filter).

    Attributes:
        integrated_lufs: integrated loudness, LUFS (ITU-R BS.1770-4 gating); -70.0 for
            silence (below the absolute gate).
        true_peak_dbtp: the highest true peak over all channels, dBTP (4x oversampled,
            BS.1770-4 Annex 2); -inf for digital silence.
        loudness_range_lu: loudness range (EBU Tech 3342), LU.
    """

    integrated_lufs: float
    true_peak_dbtp: float
    loudness_range_lu: float


@dataclass(frozen=True)
class PeaksFile:
    """The waveform written as audiowaveform JSON version 2 (see :mod:`.peaks`).

    Attributes:
        path: the JSON file in the workdir. sample_rate: Hz of the decoded stream.
        samples_per_pixel: samples per (min, max) pair. length: number of pairs.
    """

    path: Path
    sample_rate: int
    samples_per_pixel: int
    length: int


@dataclass(frozen=True)
class MediaResult:
    """Everything one run made and measured.

    Attributes:
        duration_ms: exact duration of the decoded audio, milliseconds (samples the
            decoder output, after FFmpeg drops the codec's delay and padding, over the
            sample rate).
        samples: decoded samples per channel. sample_rate: Hz. channels: of the original.
        skipped_packets: packets the decoder rejected and the run skipped (damage it
            tolerates: see ``engine.TOLERATED_BAD_PACKETS``); 0 for a clean file.
        codec: FFmpeg's name of the original's codec. container: FFmpeg's demuxer name.
        loudness: EBU R128 measurements. peaks: the waveform file.
        seekable, universal, normalized: the renditions (``skipped`` says why one is not
            made; ``normalized`` is None unless asked for).
        elapsed_s: wall time of the run, seconds.
    """

    duration_ms: int
    samples: int
    skipped_packets: int
    sample_rate: int
    channels: int
    codec: str
    container: str
    loudness: Loudness
    peaks: PeaksFile
    seekable: Rendition
    universal: Rendition
    normalized: Rendition | None
    elapsed_s: float

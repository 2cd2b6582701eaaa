"""One pass over a local audio file: renditions, peaks, loudness and the exact duration.

:func:`process_file` demuxes the first audio stream once. Each packet is remuxed as is
into the ``seekable`` WebM (when one is made) and decoded once; each decoded frame is
counted (the exact duration) and pushed into one FFmpeg filter graph
(:mod:`.fanout`) that feeds FFmpeg's ``ebur128`` meter (loudness, true peak), the
waveform accumulator and the AAC encoder of the ``universal`` rendition, in chunks of
bounded size. Memory is flat in duration: no more than a chunk of PCM is held. An
optional ``normalized`` rendition needs the integrated loudness first, so it takes a
second decode pass.

FFmpeg is PyAV's own (its wheels ship it); the service needs no ffmpeg binary.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av

from advanced_notes.domain import webm
from advanced_notes.domain.keys import PEAKS_FILE
from advanced_notes.media.aac import AacWriter
from advanced_notes.media.fanout import FanOut
from advanced_notes.media.peaks import PeakAccumulator
from advanced_notes.media.results import Loudness, MediaError, MediaLimits, MediaResult, PeaksFile, Rendition

#: The loudest the normalized rendition may peak, dBTP (EBU R128 s1's streaming ceiling).
NORMALIZED_MAX_TRUE_PEAK_DBTP = -1.0
#: File names inside the caller's workdir.
SEEKABLE_NAME = "seekable.webm"
UNIVERSAL_NAME = "universal.m4a"
NORMALIZED_NAME = "normalized.m4a"

_WEBM_CODECS = frozenset({"opus", "vorbis"})
#: Packets the decoder rejects are skipped, as the ffmpeg command line does, while they
#: are at most this many plus 1% of the packets read; past that the file is ``corrupt``.
TOLERATED_BAD_PACKETS = 10


def _is_matroska(container: str) -> bool:
    return "matroska" in container or "webm" in container


def _is_mp4(container: str) -> bool:
    return "mp4" in container or "mov" in container


class _Clock:
    """Wall-time bound: raises ``timeout`` once ``max_seconds`` have passed since start."""

    def __init__(self, max_seconds: float) -> None:
        self.start = time.monotonic()
        self.max_seconds = max_seconds

    def check(self) -> None:
        if time.monotonic() - self.start > self.max_seconds:
            raise MediaError("timeout", "Processing this recording took too long.")

    def elapsed(self) -> float:
        return time.monotonic() - self.start


@dataclass
class _Source:
    container: av.container.InputContainer
    stream: av.audio.stream.AudioStream


def _open(source: Path) -> _Source:
    try:
        container = av.open(str(source), "r")
    except av.FFmpegError:
        raise MediaError("not_audio", "This file is not a recording we can read.") from None
    if not container.streams.audio:
        container.close()
        raise MediaError("not_audio", "This file has no audio.")
    return _Source(container, container.streams.audio[0])


def _needs_seekable(source: Path, container: str, codec: str) -> str | None:
    """None when the seekable rendition is to be made; else why it is not."""
    if not _is_matroska(container):
        return "not WebM/Matroska: its container indexes itself"
    if codec not in _WEBM_CODECS:
        return f"{codec} cannot be remuxed into WebM"
    try:
        with source.open("rb") as f:
            index = webm.seek_index(f, source.stat().st_size)
    except (webm.WebmError, EOFError):
        return None  # a head the walker cannot read: FFmpeg's remux writes a clean one
    if index.has_duration and index.has_cues:
        return "already has Duration and Cues"
    return None


def process_file(
    source: Path,
    workdir: Path,
    *,
    limits: MediaLimits,
    normalize: bool = False,
    target_lufs: float = -16.0,
) -> MediaResult:
    """Process the audio file ``source`` into renditions and measurements in ``workdir``.

    Args:
        source: a local file (any container and codec FFmpeg reads; the first audio
            stream is used).
        workdir: an existing directory; the outputs are written there as
            ``seekable.webm``, ``universal.m4a``, ``normalized.m4a`` and ``peaks.json``.
        limits: duration (ms) and wall-time (seconds) bounds.
        normalize: also make ``normalized.m4a``, gained to ``target_lufs`` (LUFS) but
            never past -1 dBTP; costs a second decode pass.
        target_lufs: the normalized rendition's integrated loudness, LUFS.
    Returns:
        a :class:`MediaResult`.
    Raises:
        MediaError: ``not_audio``, ``corrupt``, ``too_long``, ``timeout`` or
            ``ffmpeg_error`` (see :class:`MediaError`); outputs already written in
            ``workdir`` are left for the caller to discard.
    """
    clock = _Clock(limits.max_seconds)
    src = _open(source)
    try:
        return _process(src, source, workdir, limits, clock, normalize, target_lufs)
    except av.FFmpegError as exc:
        raise _ffmpeg_error(exc) from None
    finally:
        src.container.close()


def _ffmpeg_error(exc: av.FFmpegError) -> MediaError:
    if isinstance(exc, av.InvalidDataError):
        return MediaError("corrupt", "This recording is damaged and cannot be decoded.")
    return MediaError("ffmpeg_error", "This recording could not be processed.")


def _process(
    src: _Source,
    source: Path,
    workdir: Path,
    limits: MediaLimits,
    clock: _Clock,
    normalize: bool,
    target_lufs: float,
) -> MediaResult:
    stream, ctx = src.stream, src.stream.codec_context
    container_name = src.container.format.name
    codec = ctx.codec.canonical_name  # ffprobe's codec_name (ctx.name is the decoder's: mp3float)
    rate, channels = ctx.sample_rate, ctx.layout.nb_channels
    if not rate or not channels:
        raise MediaError("not_audio", "This file has no audio.")

    seekable_skip = _needs_seekable(source, container_name, codec)
    remux: av.container.OutputContainer | None = None
    remux_stream: Any = None
    if seekable_skip is None:
        remux = av.open(str(workdir / SEEKABLE_NAME), "w", format="webm")
        remux_stream = remux.add_stream_from_template(stream)

    universal_skip = None
    if _is_mp4(container_name) and codec == "aac" and ctx.profile == "LC":
        universal_skip = "already AAC-LC in MP4"
    aac = None if universal_skip else AacWriter(workdir / UNIVERSAL_NAME, rate, channels)

    peaks = PeakAccumulator(rate)
    fanout = FanOut(peaks, aac.write if aac is not None else None)
    max_samples = limits.max_duration_ms * rate // 1000
    decoded = 0
    frames = _Frames(src, clock)
    try:
        for packet, decoded_frames in frames:
            for frame in decoded_frames:
                decoded += frame.samples
                if decoded > max_samples:
                    raise MediaError("too_long", "This recording is longer than allowed.")
                fanout.push(frame)
            if remux is not None and packet is not None and packet.dts is not None and packet.size:
                packet.stream = remux_stream
                remux.mux(packet)
        if decoded == 0:
            raise MediaError("not_audio", "This file has no audio.")
        measured = fanout.finish()
    except BaseException:
        # Release the outputs' files now, not at garbage collection; their contents are
        # the caller's to discard, so a failure to finish them changes nothing.
        for output in (remux, aac.container if aac else None):
            if output is not None:
                with contextlib.suppress(av.FFmpegError, OSError):
                    output.close()
        raise

    seekable = Rendition(name="seekable", path=None, skipped=seekable_skip)
    if remux is not None:
        remux.close()
        path = workdir / SEEKABLE_NAME
        seekable = Rendition(
            name="seekable",
            path=path,
            media_type="audio/webm",
            codec=codec,
            sample_rate=rate,
            channels=channels,
            bytes=path.stat().st_size,
        )
    universal = Rendition(name="universal", path=None, skipped=universal_skip)
    if aac is not None:
        aac.write(None)
        universal = aac.close()

    waveform = peaks.result()
    peaks_path = workdir / PEAKS_FILE
    peaks_path.write_text(json.dumps(waveform.audiowaveform_json(), separators=(",", ":")))

    normalized = None
    if normalize:
        normalized = _normalize(source, workdir, measured, target_lufs, clock)

    return MediaResult(
        duration_ms=round(decoded * 1000 / rate),
        samples=decoded,
        skipped_packets=frames.bad_packets,
        sample_rate=rate,
        channels=channels,
        codec=codec,
        container=container_name,
        loudness=measured,
        peaks=PeaksFile(peaks_path, waveform.sample_rate, waveform.samples_per_pixel, waveform.length),
        seekable=seekable,
        universal=universal,
        normalized=normalized,
        elapsed_s=clock.elapsed(),
    )


class _Frames:
    """Iterates ``(packet, frames decoded from it)`` over the first audio stream, then
    ``(None, the decoder's last frames)``.

    Checks the wall time at every packet. Packets the decoder rejects are skipped, as the
    ffmpeg command line does, while they are at most ``TOLERATED_BAD_PACKETS`` plus 1% of
    the packets read; past that :class:`av.InvalidDataError` is raised (``corrupt``).
    """

    def __init__(self, src: _Source, clock: _Clock) -> None:
        self.src = src
        self.clock = clock
        self.packets = 0
        self.bad_packets = 0

    def __iter__(self) -> Iterator[tuple[Any, list[av.AudioFrame]]]:
        ctx = self.src.stream.codec_context
        for packet in self.src.container.demux(self.src.stream):
            self.clock.check()
            self.packets += 1
            try:
                frames = _decode(ctx, packet)
            except av.InvalidDataError:
                self.bad_packets += 1
                if self.bad_packets > TOLERATED_BAD_PACKETS + self.packets // 100:
                    raise
                frames = []
            yield packet, frames
        yield None, _decode(ctx, None)


def _decode(ctx: Any, packet: Any) -> list[av.AudioFrame]:
    """The frames ``packet`` completes; None (or demux's last, empty packet) flushes the decoder."""
    try:
        frames: list[av.AudioFrame] = ctx.decode(packet)
    except av.EOFError:
        return []  # already flushed
    return frames


def normalization_gain_db(loudness: Loudness, target_lufs: float) -> float:
    """The gain (dB) to bring ``loudness`` to ``target_lufs`` without passing -1 dBTP.

    Silence (-70 LUFS or no peak) gets 0 dB: there is nothing to bring up.
    """
    if loudness.integrated_lufs <= -70.0 or math.isinf(loudness.true_peak_dbtp):
        return 0.0
    return min(target_lufs - loudness.integrated_lufs, NORMALIZED_MAX_TRUE_PEAK_DBTP - loudness.true_peak_dbtp)


def _normalize(source: Path, workdir: Path, loudness: Loudness, target_lufs: float, clock: _Clock) -> Rendition:
    """Second pass: decode again, apply the gain, encode ``normalized.m4a``."""
    gain_db = normalization_gain_db(loudness, target_lufs)
    src = _open(source)
    try:
        ctx = src.stream.codec_context
        writer = AacWriter(
            workdir / NORMALIZED_NAME, ctx.sample_rate, ctx.layout.nb_channels, name="normalized", gain_db=gain_db
        )
        try:
            for _, frames in _Frames(src, clock):
                for frame in frames:
                    writer.write(frame)
            writer.write(None)
        except BaseException:
            with contextlib.suppress(av.FFmpegError, OSError):
                writer.abort()
            raise
        return writer.close()
    finally:
        src.container.close()

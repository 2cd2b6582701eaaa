"""One pass over a local audio file: renditions, peaks, loudness and the exact duration.

:func:`process_file` demuxes the first audio stream once. Each packet is remuxed as is
into the ``seekable`` WebM (when one is made) and decoded; each decoded frame feeds the
AAC encoder of the ``universal`` rendition, FFmpeg's ``ebur128`` filter (loudness, true
peak) and the waveform accumulator, and its samples are counted (the exact duration).
Nothing holds more than a frame of PCM, so memory is flat in duration. An optional
``normalized`` rendition needs the integrated loudness first, so it takes a second
decode pass.

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
import numpy as np
import numpy.typing as npt

from advanced_notes.domain import webm
from advanced_notes.domain.keys import PEAKS_FILE
from advanced_notes.media.peaks import PeakAccumulator
from advanced_notes.media.results import Loudness, MediaError, MediaLimits, MediaResult, PeaksFile, Rendition

#: AAC-LC bitrates of the universal rendition, bits/s, by channel count. FFmpeg's native
#: encoder is transparent for speech at these rates; voice notes are mostly mono.
AAC_BITRATE_BPS = {1: 64_000, 2: 128_000}
#: The universal rendition keeps at most this many channels (more are downmixed).
MAX_CHANNELS = 2
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


def aac_rate(sample_rate: int) -> int:
    """The universal rendition's rate (Hz) for a source at ``sample_rate`` Hz.

    44.1 kHz for the 11.025 kHz family (CD-derived sources: resampling by a ratio of
    small integers), 48 kHz for every other rate (Opus is always 48 kHz).
    """
    return 44_100 if sample_rate % 11_025 == 0 else 48_000


def _mono(frame: av.AudioFrame) -> npt.NDArray[np.float32]:
    """The frame's samples mixed to mono (the mean of its channels), as float32, full scale 1.0."""
    channels = frame.layout.nb_channels
    array = frame.to_ndarray()
    if not frame.format.is_planar:
        array = array.reshape(-1, channels).T
    if array.dtype == np.uint8:
        samples = (array.astype(np.float32) - 128.0) / 128.0
    elif array.dtype.kind == "i":
        samples = array.astype(np.float32) / float(2 ** (8 * array.dtype.itemsize - 1))
    else:
        samples = array.astype(np.float32, copy=False)
    mono: npt.NDArray[np.float32] = samples[0] if channels == 1 else samples.mean(axis=0, dtype=np.float32)
    return mono


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


class _Loudness:
    """FFmpeg's ``ebur128`` filter (``peak=true:metadata=1``) fed decoded frames.

    The filter writes its running measurements into each output frame's metadata
    (``lavfi.r128.I``, ``lavfi.r128.LRA``, ``lavfi.r128.true_peak`` linear): the values of
    the last frame are those of the whole stream, as its log summary prints them.
    """

    def __init__(self, stream: av.audio.stream.AudioStream) -> None:
        ctx = stream.codec_context
        self.graph = av.filter.Graph()
        self.source = self.graph.add_abuffer(
            format=ctx.format.name, sample_rate=ctx.sample_rate, layout=ctx.layout.name, time_base=stream.time_base
        )
        meter = self.graph.add("ebur128", "peak=true:metadata=1")
        sink = self.graph.add("abuffersink")
        self.source.link_to(meter)
        meter.link_to(sink)
        self.sink = sink
        self.graph.configure()
        self.last: dict[str, str] = {}
        self.true_peak = 0.0

    def push(self, frame: av.AudioFrame | None) -> None:
        self.source.push(frame)
        while True:
            try:
                out = self.sink.pull()
            except (av.BlockingIOError, av.EOFError):
                return
            metadata = dict(out.metadata)
            if "lavfi.r128.I" in metadata:
                self.last = metadata
                self.true_peak = max(self.true_peak, float(metadata.get("lavfi.r128.true_peak", 0.0)))

    def result(self) -> Loudness:
        integrated = float(self.last.get("lavfi.r128.I", -70.0))
        lra = float(self.last.get("lavfi.r128.LRA", 0.0))
        peak_db = 20 * math.log10(self.true_peak) if self.true_peak > 0 else -math.inf
        return Loudness(integrated_lufs=integrated, true_peak_dbtp=peak_db, loudness_range_lu=lra)


class _AacWriter:
    """The universal rendition: AAC-LC in MP4 (``.m4a``, ``movflags=+faststart``).

    PyAV's encoder resamples what it is given to the encoder's format, layout and rate
    and cuts it into 1024-sample frames, as AAC needs.
    """

    def __init__(self, path: Path, source_rate: int, source_channels: int, gain_db: float = 0.0) -> None:
        self.path = path
        self.channels = min(source_channels, MAX_CHANNELS)
        self.rate = aac_rate(source_rate)
        self.bitrate = AAC_BITRATE_BPS[self.channels]
        self.container = av.open(str(path), "w", format="ipod", options={"movflags": "+faststart"})
        self.stream = self.container.add_stream(
            "aac", rate=self.rate, layout="mono" if self.channels == 1 else "stereo"
        )
        self.stream.codec_context.bit_rate = self.bitrate
        self.gain: av.filter.Graph | None = None
        self.gain_db = gain_db

    def _with_gain(self, frame: av.AudioFrame | None) -> Iterator[av.AudioFrame | None]:
        if self.gain_db == 0.0:
            yield frame
            return
        if self.gain is None:
            assert frame is not None
            self.gain = av.filter.Graph()
            self._gain_source = self.gain.add_abuffer(
                format=frame.format.name,
                sample_rate=frame.sample_rate,
                layout=frame.layout.name,
                time_base=frame.time_base,
            )
            volume = self.gain.add("volume", f"volume={self.gain_db:.3f}dB:precision=float")
            self._gain_sink = self.gain.add("abuffersink")
            self._gain_source.link_to(volume)
            volume.link_to(self._gain_sink)
            self.gain.configure()
        self._gain_source.push(frame)
        while True:
            try:
                gained = self._gain_sink.pull()
            except (av.BlockingIOError, av.EOFError):
                break
            assert isinstance(gained, av.AudioFrame)
            yield gained
        if frame is None:
            yield None

    def write(self, frame: av.AudioFrame | None) -> None:
        """Encode ``frame`` (None: flush the encoder)."""
        for item in self._with_gain(frame):
            for packet in self.stream.encode(item):
                self.container.mux(packet)

    def close(self) -> Rendition:
        self.container.close()
        return Rendition(
            name="universal",
            path=self.path,
            media_type="audio/mp4",
            codec="aac",
            bitrate_bps=self.bitrate,
            sample_rate=self.rate,
            channels=self.channels,
            bytes=self.path.stat().st_size,
        )


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
    aac = None if universal_skip else _AacWriter(workdir / UNIVERSAL_NAME, rate, channels)

    loudness = _Loudness(stream)
    peaks = PeakAccumulator(rate)
    max_samples = limits.max_duration_ms * rate // 1000
    decoded = packets = bad_packets = 0

    def take(frame: av.AudioFrame) -> None:
        nonlocal decoded
        decoded += frame.samples
        if decoded > max_samples:
            raise MediaError("too_long", "This recording is longer than allowed.")
        loudness.push(frame)
        peaks.add(_mono(frame))
        if aac is not None:
            aac.write(frame)

    try:
        for packet in src.container.demux(stream):
            clock.check()
            packets += 1
            try:
                frames = _decode(ctx, packet)
            except av.InvalidDataError:
                bad_packets += 1
                if bad_packets > TOLERATED_BAD_PACKETS + packets // 100:
                    raise
                frames = []
            for frame in frames:
                take(frame)
            if remux is not None and packet.dts is not None and packet.size:
                packet.stream = remux_stream
                remux.mux(packet)
        for frame in _decode(ctx, None):
            take(frame)
        if decoded == 0:
            raise MediaError("not_audio", "This file has no audio.")
    except BaseException:
        # Release the outputs' files now, not at garbage collection; their contents are
        # the caller's to discard, so a failure to finish them changes nothing.
        for output in (remux, aac.container if aac else None):
            if output is not None:
                with contextlib.suppress(av.FFmpegError, OSError):
                    output.close()
        raise
    loudness.push(None)
    measured = loudness.result()

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
        skipped_packets=bad_packets,
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
        writer = _AacWriter(workdir / NORMALIZED_NAME, ctx.sample_rate, ctx.layout.nb_channels, gain_db=gain_db)
        for packet in src.container.demux(src.stream):
            clock.check()
            for frame in _decode(ctx, packet):
                writer.write(frame)
        for frame in _decode(ctx, None):
            writer.write(frame)
        writer.write(None)
        universal = writer.close()
    finally:
        src.container.close()
    return Rendition(
        name="normalized",
        path=universal.path,
        media_type=universal.media_type,
        codec=universal.codec,
        bitrate_bps=universal.bitrate_bps,
        sample_rate=universal.sample_rate,
        channels=universal.channels,
        bytes=universal.bytes,
    )

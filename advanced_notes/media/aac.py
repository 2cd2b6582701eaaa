"""The AAC-LC renditions (``universal.m4a``, ``normalized.m4a``): FFmpeg's native ``aac``
encoder into MP4 with the index first (``movflags=+faststart``)."""

from __future__ import annotations

from pathlib import Path

import av

from advanced_notes.media.results import Rendition

#: AAC-LC bitrates of the universal rendition, bits/s, by channel count. FFmpeg's native
#: encoder is transparent for speech at these rates; voice notes are mostly mono.
AAC_BITRATE_BPS = {1: 64_000, 2: 128_000}
#: The universal rendition keeps at most this many channels (more are downmixed).
MAX_CHANNELS = 2
#: Samples per channel of the chunks the gain graph hands to the encoder.
GAIN_CHUNK = 8_192


def aac_rate(sample_rate: int) -> int:
    """The universal rendition's rate (Hz) for a source at ``sample_rate`` Hz.

    44.1 kHz for the 11.025 kHz family (CD-derived sources: resampling by a ratio of
    small integers), 48 kHz for every other rate (Opus is always 48 kHz).
    """
    return 44_100 if sample_rate % 11_025 == 0 else 48_000


class AacWriter:
    """An AAC-LC rendition in MP4 (``.m4a``, ``movflags=+faststart``), fed decoded audio.

    PyAV's encoder resamples what it is given to the encoder's format, layout and rate
    and cuts it into 1024-sample frames, as AAC needs: frames of any length and sample
    format may be written.

    Args:
        path: the file to write. source_rate: Hz of the frames written.
        source_channels: their channel count (more than ``MAX_CHANNELS`` are downmixed).
        name: the rendition's name in the result (``universal`` or ``normalized``).
        gain_db: a gain applied before encoding (FFmpeg's ``volume`` filter, float precision).
    """

    def __init__(
        self, path: Path, source_rate: int, source_channels: int, *, name: str = "universal", gain_db: float = 0.0
    ) -> None:
        self.path = path
        self.name = name
        self.channels = min(source_channels, MAX_CHANNELS)
        self.rate = aac_rate(source_rate)
        self.bitrate = AAC_BITRATE_BPS[self.channels]
        self.container = av.open(str(path), "w", format="ipod", options={"movflags": "+faststart"})
        layout = "mono" if self.channels == 1 else "stereo"
        self.stream = self.container.add_stream("aac", rate=self.rate, layout=layout)
        self.stream.codec_context.bit_rate = self.bitrate
        self.gain_db = gain_db
        self.gain: av.filter.Graph | None = None
        self.pending = 0

    def write(self, frame: av.AudioFrame | None) -> None:
        """Encode ``frame`` (None: flush the gain and the encoder)."""
        if self.gain_db == 0.0:
            self._encode(frame)
            return
        if self.gain is None:
            if frame is None:
                self._encode(None)
                return
            self._build_gain(frame)
        self._gain_source.push(frame)
        self.pending += frame.samples if frame is not None else 0
        if frame is None or self.pending >= GAIN_CHUNK:
            self.pending = 0
            while True:
                try:
                    gained = self._gain_sink.pull()
                except (av.BlockingIOError, av.EOFError):
                    break
                assert isinstance(gained, av.AudioFrame)
                self._encode(gained)
        if frame is None:
            self._encode(None)

    def _build_gain(self, frame: av.AudioFrame) -> None:
        self.gain = av.filter.Graph()
        self._gain_source = self.gain.add_abuffer(
            format=frame.format.name, sample_rate=frame.sample_rate, layout=frame.layout.name, time_base=frame.time_base
        )
        volume = self.gain.add("volume", f"volume={self.gain_db:.3f}dB:precision=float")
        chunks = self.gain.add("asetnsamples", f"n={GAIN_CHUNK}:p=0")
        self._gain_sink = self.gain.add("abuffersink")
        self._gain_source.link_to(volume)
        volume.link_to(chunks)
        chunks.link_to(self._gain_sink)
        self.gain.configure()

    def _encode(self, frame: av.AudioFrame | None) -> None:
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def abort(self) -> None:
        """Release the file now (a failed run: its contents are the caller's to discard)."""
        self.container.close()

    def close(self) -> Rendition:
        """Write the index and close the file; the rendition as made."""
        self.container.close()
        return Rendition(
            name=self.name,
            path=self.path,
            media_type="audio/mp4",
            codec="aac",
            bitrate_bps=self.bitrate,
            sample_rate=self.rate,
            channels=self.channels,
            bytes=self.path.stat().st_size,
        )

"""One FFmpeg filter graph that fans each decoded frame out to the loudness meter, the
waveform and the AAC encoder, so that Python touches a few large chunks, not every frame.

The graph, built from the first decoded frame::

    abuffer -> asplit -> aformat=fltp -> asetnsamples=PEAKS_CHUNK -> sink     (waveform)
                      -> ebur128=peak=true:metadata=1 -> ametadata=select:lavfi.r128.I -> sink
                      -> asetnsamples=ENCODER_CHUNK -> sink                 (AAC encoder)

Every branch works in C. Python pushes the decoded frames and drains the sinks once per
``DRAIN_SAMPLES`` pushed: the meter's sink keeps only the frames that carry new
measurements (one per 100 ms block: ``ebur128`` writes its metadata only then), and the
two others hand over chunks of tens of milliseconds or more.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import av
import numpy as np
import numpy.typing as npt

from advanced_notes.media.peaks import PeakAccumulator
from advanced_notes.media.results import Loudness

#: Samples per channel of the chunks the waveform branch hands to numpy (about 1.4 s at
#: 48 kHz): large enough that the per-chunk cost is negligible, small enough to be a
#: fixed, small amount of memory (256 KiB a channel).
PEAKS_CHUNK = 65_536
#: Samples per channel of the chunks given to the AAC encoder (PyAV's encoder cuts them
#: into the 1024-sample frames AAC needs; the encoder sees the same frames either way).
ENCODER_CHUNK = 8_192
#: Samples pushed between two drains of the sinks: bounds the frames queued in the graph.
DRAIN_SAMPLES = 16_384


def mono(frame: av.AudioFrame) -> npt.NDArray[np.float32]:
    """A planar float frame's samples mixed to mono (the mean of its channels), full scale 1.0."""
    planes = frame.to_ndarray()
    if planes.shape[0] == 1:
        result: npt.NDArray[np.float32] = planes[0]
        return result
    mixed: npt.NDArray[np.float32] = planes.mean(axis=0, dtype=np.float32)
    return mixed


class FanOut:
    """The filter graph of one decode: loudness, waveform peaks and the AAC encoder's input.

    Args:
        peaks: the accumulator the waveform branch feeds (mono, float32, full scale 1.0).
        encode: called with each chunk for the AAC encoder (None: no AAC rendition).
    """

    def __init__(self, peaks: PeakAccumulator, encode: Callable[[av.AudioFrame], None] | None) -> None:
        self.peaks = peaks
        self.encode = encode
        self.graph: av.filter.Graph | None = None
        self.pending = 0
        self.measured: av.AudioFrame | None = None

    def _build(self, frame: av.AudioFrame) -> None:
        graph = av.filter.Graph()
        self.source = graph.add_abuffer(
            format=frame.format.name, sample_rate=frame.sample_rate, layout=frame.layout.name, time_base=frame.time_base
        )
        split = graph.add("asplit", "2" if self.encode is None else "3")
        self.source.link_to(split)
        planar = graph.add("aformat", "sample_fmts=fltp")
        chunks = graph.add("asetnsamples", f"n={PEAKS_CHUNK}:p=0")
        self.peaks_sink = graph.add("abuffersink")
        split.link_to(planar, 0)
        planar.link_to(chunks)
        chunks.link_to(self.peaks_sink)
        meter = graph.add("ebur128", "peak=true:metadata=1")
        measured = graph.add("ametadata", "mode=select:key=lavfi.r128.I")
        self.meter_sink = graph.add("abuffersink")
        split.link_to(meter, 1)
        meter.link_to(measured)
        measured.link_to(self.meter_sink)
        self.encoder_sink = None
        if self.encode is not None:
            encoder_chunks = graph.add("asetnsamples", f"n={ENCODER_CHUNK}:p=0")
            self.encoder_sink = graph.add("abuffersink")
            split.link_to(encoder_chunks, 2)
            encoder_chunks.link_to(self.encoder_sink)
        graph.configure()
        self.graph = graph

    def push(self, frame: av.AudioFrame) -> None:
        """Feed the next decoded frame (the graph is built from the first one's format)."""
        if self.graph is None:
            self._build(frame)
        self.source.push(frame)
        self.pending += frame.samples
        if self.pending >= DRAIN_SAMPLES:
            self.pending = 0
            self._drain()

    def finish(self) -> Loudness:
        """Flush the graph (end of stream) and return the loudness of everything pushed."""
        if self.graph is not None:
            self.source.push(None)
            self._drain()
        # The last measured frame's values are those of the whole stream, as the filter's
        # log summary prints them.
        last = dict(self.measured.metadata) if self.measured is not None else {}
        integrated = float(last.get("lavfi.r128.I", -70.0))
        lra = float(last.get("lavfi.r128.LRA", 0.0))
        true_peak = float(last.get("lavfi.r128.true_peak", 0.0))
        peak_db = 20 * math.log10(true_peak) if true_peak > 0 else -math.inf
        return Loudness(integrated_lufs=integrated, true_peak_dbtp=peak_db, loudness_range_lu=lra)

    def _drain(self) -> None:
        # Only the newest measured frame is kept: its values are running ones, the whole
        # stream's so far (the true peak included: the running maximum).
        for out in _pull_all(self.meter_sink):
            self.measured = out
        for out in _pull_all(self.peaks_sink):
            self.peaks.add(mono(out))
        if self.encoder_sink is not None and self.encode is not None:
            for out in _pull_all(self.encoder_sink):
                self.encode(out)


def _pull_all(sink: av.filter.context.FilterContext) -> list[av.AudioFrame]:
    """Every frame ``sink`` has ready now (the graph runs to produce them)."""
    frames: list[av.AudioFrame] = []
    while True:
        try:
            frame = sink.pull()
        except (av.BlockingIOError, av.EOFError):
            return frames
        assert isinstance(frame, av.AudioFrame)
        frames.append(frame)

"""Waveform peaks in BBC audiowaveform's JSON format, version 2, in memory flat in duration.

The format (github.com/bbc/audiowaveform, doc/DataFormat.md) is what wavesurfer.js and
peaks.js load directly: ``{"version": 2, "channels", "sample_rate", "samples_per_pixel",
"bits", "length", "data"}``, ``data`` holding a (min, max) pair per pixel, channels
interleaved. Here there is one channel, the mono mix (the mean of the decoded channels),
and ``bits`` is 8: each value is ``floor(sample * 128)`` clipped to -128..127, the top
byte of a 16-bit sample, as audiowaveform's 8-bit output.

Pixel ``i`` covers samples ``[i * spp, (i + 1) * spp)`` of the decoded stream (the last one
may cover fewer). Memory stays flat: pixels are made at a fine ``samples_per_pixel``
and, whenever there are more than ``max_pixels`` of them, neighbours are merged in pairs
and ``samples_per_pixel`` doubles. Merging is exact: the min of two mins is the min of
their union.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

#: The finest resolution, samples per pixel: about 1.3 ms at 48 kHz.
FINEST_SAMPLES_PER_PIXEL = 64
#: An overview for a phone's width: between half this and this many pixels once the
#: recording is longer than ``FINEST_SAMPLES_PER_PIXEL * MAX_PIXELS`` samples.
MAX_PIXELS = 2000


def quantize8(values: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.int8]:
    """Float samples (full scale -1.0..1.0) as audiowaveform's 8-bit values (-128..127)."""
    return np.clip(np.floor(values.astype(np.float64) * 128.0), -128, 127).astype(np.int8)


@dataclass(frozen=True)
class Waveform:
    """Peaks of a whole recording: ``mins[i]``/``maxs[i]`` (float, full scale 1.0) of pixel i.

    ``sample_rate`` is the decoded rate (Hz); ``samples_per_pixel`` is in those samples.
    """

    sample_rate: int
    samples_per_pixel: int
    mins: npt.NDArray[np.float32]
    maxs: npt.NDArray[np.float32]

    @property
    def length(self) -> int:
        """Number of (min, max) pairs."""
        return len(self.mins)

    def audiowaveform_json(self) -> dict[str, Any]:
        """The audiowaveform JSON (version 2, 1 channel, 8 bits) as a dict ready for json.dump."""
        pairs = np.empty(2 * self.length, dtype=np.int8)
        pairs[0::2] = quantize8(self.mins)
        pairs[1::2] = quantize8(self.maxs)
        return {
            "version": 2,
            "channels": 1,
            "sample_rate": self.sample_rate,
            "samples_per_pixel": self.samples_per_pixel,
            "bits": 8,
            "length": self.length,
            "data": pairs.tolist(),
        }


class PeakAccumulator:
    """Min/max per pixel of a mono stream fed in chunks, at most ``max_pixels`` pixels kept.

    Args:
        sample_rate: of the samples fed, Hz.
        samples_per_pixel: the finest resolution (a power of two keeps pixels aligned on
            the same boundaries as they merge).
        max_pixels: the bound (even, >= 2) past which pixels merge in pairs.
    """

    def __init__(
        self, sample_rate: int, samples_per_pixel: int = FINEST_SAMPLES_PER_PIXEL, max_pixels: int = MAX_PIXELS
    ) -> None:
        if samples_per_pixel < 1 or max_pixels < 2:
            raise ValueError("samples_per_pixel must be >= 1 and max_pixels >= 2")
        self.sample_rate = sample_rate
        self.samples_per_pixel = samples_per_pixel
        self.max_pixels = max_pixels
        self._mins = np.empty(0, dtype=np.float32)
        self._maxs = np.empty(0, dtype=np.float32)
        # The pixel being filled: its min, max and number of samples (< samples_per_pixel).
        self._partial_min = 0.0
        self._partial_max = 0.0
        self._partial_count = 0
        self.samples = 0

    def add(self, mono: npt.NDArray[np.float32]) -> None:
        """Feed the next samples (1-D float array, full scale 1.0)."""
        n = len(mono)
        self.samples += n
        start = 0
        while start < n:
            spp = self.samples_per_pixel  # may double at each append
            if self._partial_count:
                take = min(spp - self._partial_count, n - start)
                head = mono[start : start + take]
                self._partial_min = min(self._partial_min, float(head.min()))
                self._partial_max = max(self._partial_max, float(head.max()))
                self._partial_count += take
                start += take
                if self._partial_count == spp:
                    self._partial_count = 0
                    self._append(np.array([self._partial_min], np.float32), np.array([self._partial_max], np.float32))
                continue
            # At most one pixel past the bound per append, so one merge restores it.
            whole = min((n - start) // spp, self.max_pixels + 1 - len(self._mins))
            if whole == 0:
                rest = mono[start:]
                self._partial_min, self._partial_max = float(rest.min()), float(rest.max())
                self._partial_count = n - start
                return
            windows = mono[start : start + whole * spp].reshape(whole, spp)
            start += whole * spp
            self._append(windows.min(axis=1), windows.max(axis=1))

    def _append(self, mins: npt.NDArray[np.float32], maxs: npt.NDArray[np.float32]) -> None:
        self._mins = np.concatenate((self._mins, mins.astype(np.float32, copy=False)))
        self._maxs = np.concatenate((self._maxs, maxs.astype(np.float32, copy=False)))
        if len(self._mins) > self.max_pixels:
            self._merge_pairs()

    def _merge_pairs(self) -> None:
        """Double samples_per_pixel: pixels 2k and 2k+1 become pixel k."""
        count = len(self._mins)
        if count % 2:
            # The odd last pixel and the partial one make the new partial pixel.
            last_min, last_max = float(self._mins[-1]), float(self._maxs[-1])
            if self._partial_count:
                last_min = min(last_min, self._partial_min)
                last_max = max(last_max, self._partial_max)
            self._partial_min, self._partial_max = last_min, last_max
            self._partial_count += self.samples_per_pixel
            count -= 1
        self._mins = self._mins[:count].reshape(-1, 2).min(axis=1)
        self._maxs = self._maxs[:count].reshape(-1, 2).max(axis=1)
        self.samples_per_pixel *= 2

    def result(self) -> Waveform:
        """The waveform so far, the partial last pixel included."""
        mins, maxs = self._mins, self._maxs
        if self._partial_count:
            mins = np.append(mins, np.float32(self._partial_min))
            maxs = np.append(maxs, np.float32(self._partial_max))
        return Waveform(self.sample_rate, self.samples_per_pixel, mins, maxs)

"""Long WAV files: a real one built from the spoken-word fixture (for multipart uploads), and
silent ones of any size (for what verification reads of a large object).

The fixture's PCM frames are repeated with the stdlib ``wave`` module until the file
reaches the asked size, so the result is a valid WAV whose header states its length.
"""

from __future__ import annotations

import io
import struct
import wave
from pathlib import Path


def build_long_wav(source: Path, min_bytes: int) -> bytes:
    """A WAV of at least ``min_bytes`` bytes: ``source``'s audio repeated (same format).

    Returns the file's bytes; its duration is the source's times the repeats.
    """
    with wave.open(str(source), "rb") as src:
        params = src.getparams()
        frames = src.readframes(params.nframes)
    repeats = -(-min_bytes // len(frames))
    out = io.BytesIO()
    with wave.open(out, "wb") as dst:
        dst.setparams(params)
        dst.writeframes(frames * repeats)
    return out.getvalue()


def silent_wav(total_bytes: int, rate: int = 16000) -> bytes:
    """A mono 16-bit PCM WAV of exactly ``total_bytes`` bytes (44-byte header + silence).

    Its duration is ``(total_bytes - 44) / (2 * rate)`` seconds; ``rate`` in Hz.
    """
    pcm = total_bytes - 44
    header = (
        b"RIFF"
        + struct.pack("<I", 36 + pcm)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", pcm)
    )
    return header + bytes(pcm)

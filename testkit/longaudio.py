"""A long, real WAV built from the spoken-word fixture (for multipart uploads).

The fixture's PCM frames are repeated with the stdlib ``wave`` module until the file
reaches the asked size, so the result is a valid WAV whose header states its length.
"""

from __future__ import annotations

import io
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

"""What the client declares for a local audio file: type, size, duration and SHA-256."""

from __future__ import annotations

import base64
import hashlib
import os
from contextlib import suppress
from types import ModuleType
from typing import Any

from advanced_notes.domain.mime import CONTAINERS, mime_type_for_filename

#: Read size for hashing, bytes.
CHUNK_BYTES = 256 * 1024


def sha256_base64(path: str) -> str:
    """Base64 SHA-256 of the file at ``path`` (the ``checksum_sha256`` the API takes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return base64.b64encode(digest.digest()).decode()


def _audio_parsing() -> ModuleType | None:
    """The audio sniffing and parsing module, or None where its libraries are not installed.

    The SDK needs only ``requests`` (and ``tqdm``): a client installed without mutagen,
    enzyme and puremagic takes the type from the file name and leaves the duration to
    the server, which measures it at complete anyway.
    """
    try:
        from advanced_notes.domain import audio
    except ImportError:
        return None
    return audio


def describe_file(path: str) -> dict[str, Any]:
    """What to declare for an audio file: ``mime_type``, ``bytes``, ``duration_ms``, ``checksum_sha256``.

    The type comes from the extension, else from the file's first bytes; the duration
    is parsed from the file (None when the container does not say).

    Raises:
        ValueError: the file is not audio of a known container.
    """
    audio = _audio_parsing()
    with open(path, "rb") as f:
        container = audio.sniff_container(f.read(audio.SNIFF_BYTES)) if audio else None
        mime_type = mime_type_for_filename(path) or (CONTAINERS[container].mime_type if container else None)
        if mime_type is None:
            raise ValueError(f"{path!r} is not audio of a known type")
        duration_ms = None  # the server measures and decides; the declaration is optional
        if audio and container:
            with suppress(audio.UnreadableAudio):
                duration_ms = audio.measure_duration_ms(f, container)
    return {
        "mime_type": mime_type,
        "bytes": os.path.getsize(path),
        "duration_ms": duration_ms,
        "checksum_sha256": sha256_base64(path),
    }

"""Audio MIME types: the allow-list and the file extension of each type (DESIGN §4, §8).

Pure data and functions, no Flask or boto3.
"""

from __future__ import annotations

from collections.abc import Iterable

#: Every MIME type the API accepts by default, with the object key extension it maps to.
#: Aliases (``audio/x-m4a``, ``audio/mp3``, ...) are what real clients send: iOS
#: records ``audio/m4a``/``audio/x-m4a``, browsers' MediaRecorder ``audio/webm``.
MIME_EXTENSIONS: dict[str, str] = {
    "audio/mp4": "m4a",
    "audio/m4a": "m4a",
    "audio/x-m4a": "m4a",
    "audio/aac": "aac",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/webm": "webm",
    "audio/ogg": "ogg",
    "audio/opus": "opus",
    "audio/flac": "flac",
    "audio/x-flac": "flac",
    "audio/3gpp": "3gp",
}

DEFAULT_ALLOWED_MIME_TYPES: tuple[str, ...] = tuple(MIME_EXTENSIONS)

#: For clients that only have a file name: the MIME type to declare per extension.
EXTENSION_MIME_TYPES: dict[str, str] = {
    "m4a": "audio/mp4",
    "mp4": "audio/mp4",
    "aac": "audio/aac",
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "webm": "audio/webm",
    "ogg": "audio/ogg",
    "oga": "audio/ogg",
    "opus": "audio/opus",
    "flac": "audio/flac",
    "3gp": "audio/3gpp",
}


def normalize_mime_type(value: str) -> str:
    """Lower-case a MIME type and drop parameters (``"Audio/Webm;codecs=opus"`` -> ``"audio/webm"``)."""
    return value.split(";", 1)[0].strip().lower()


def parse_allowed_mime_types(values: Iterable[str]) -> tuple[str, ...]:
    """Normalize a configured allow-list; raises ValueError naming any type without a known extension."""
    normalized = tuple(dict.fromkeys(normalize_mime_type(v) for v in values if v.strip()))
    unknown = [v for v in normalized if v not in MIME_EXTENSIONS]
    if unknown:
        raise ValueError(f"no object key extension known for {', '.join(unknown)}")
    if not normalized:
        raise ValueError("the allow-list is empty")
    return normalized


def extension_for(mime_type: str) -> str:
    """The object key extension of an allowed MIME type (``audio/x-m4a`` -> ``m4a``).

    Raises:
        KeyError: the type is not in :data:`MIME_EXTENSIONS`.
    """
    return MIME_EXTENSIONS[normalize_mime_type(mime_type)]


def mime_type_for_filename(filename: str) -> str | None:
    """The MIME type a client should declare for ``filename``, or None for an unknown extension."""
    _, _, ext = filename.rpartition(".")
    return EXTENSION_MIME_TYPES.get(ext.lower()) if ext else None

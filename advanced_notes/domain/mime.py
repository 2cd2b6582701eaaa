"""The one table of accepted audio types and the containers that carry them (DESIGN §4, §6 rule 7, §8).

Every fact about an accepted type (its aliases, object key extension, the file names that
declare it, the containers that may carry it) is a row of :data:`AUDIO_TYPES`; every fact
about a container (its name for people, the type a file of it declares, the extensions
its signatures go by) is an entry of :data:`CONTAINERS`. Settings, the audio sniffing, the
object keys and the client SDK read them through the functions below.

Pure data and functions, no Flask or boto3: the client SDK imports this module too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class AudioType:
    """One accepted audio MIME type.

    Attributes:
        mime_type: the canonical type, lower-case, without parameters.
        key_extension: the extension of its objects' keys (``<clip id>.<ext>``, DESIGN §8).
        containers: the families of :data:`CONTAINERS` whose bytes may carry it (checked at
            complete against the sniffed container, DESIGN §6 rule 7).
        aliases: other names clients send for the same type, accepted and stored as sent
            with the same extension and containers (iOS records ``audio/m4a`` and
            ``audio/x-m4a``).
        file_extensions: the file name extensions (lower-case, no dot) that declare this
            type when a client has only a file name.
    """

    mime_type: str
    key_extension: str
    containers: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    file_extensions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Container:
    """A container family, as recognised from an object's first bytes.

    Attributes:
        label: the name people know its files by (rejection messages quote it).
        mime_type: the type to declare for a file of this container when its name says
            nothing.
        file_extensions: the extensions its signatures go by in puremagic's database
            (more than uploads use: ``mov``, ``mka``), lower-case, no dot.
    """

    label: str
    mime_type: str
    file_extensions: tuple[str, ...]


#: Every accepted type, in the order of the default allow-list. The aliases are what real
#: clients send: iOS records ``audio/m4a``/``audio/x-m4a``, browsers' MediaRecorder
#: ``audio/webm``; many recorders label AAC in MP4 ``audio/aac``.
AUDIO_TYPES: tuple[AudioType, ...] = (
    AudioType("audio/mp4", "m4a", ("mp4",), aliases=("audio/m4a", "audio/x-m4a"), file_extensions=("m4a", "mp4")),
    AudioType("audio/aac", "aac", ("aac", "mp4"), file_extensions=("aac",)),
    AudioType("audio/mpeg", "mp3", ("mp3",), aliases=("audio/mp3",), file_extensions=("mp3",)),
    AudioType("audio/wav", "wav", ("wav",), aliases=("audio/x-wav", "audio/wave"), file_extensions=("wav",)),
    AudioType("audio/webm", "webm", ("webm",), file_extensions=("webm",)),
    AudioType("audio/ogg", "ogg", ("ogg",), file_extensions=("ogg", "oga")),
    AudioType("audio/opus", "opus", ("ogg", "webm"), file_extensions=("opus",)),
    AudioType("audio/flac", "flac", ("flac",), aliases=("audio/x-flac",), file_extensions=("flac",)),
    AudioType("audio/3gpp", "3gp", ("mp4",), file_extensions=("3gp",)),
)

#: Every container family the sniffing recognises, by the name :func:`container_for_extension`
#: returns.
CONTAINERS: dict[str, Container] = {
    "mp4": Container("MP4/M4A", "audio/mp4", ("mp4", "m4a", "f4a", "m4b", "3gp", "3g2", "mov")),
    "mp3": Container("MP3", "audio/mpeg", ("mp3", "mpga")),
    "wav": Container("WAV", "audio/wav", ("wav",)),
    "ogg": Container("Ogg (Opus/Vorbis)", "audio/ogg", ("ogg", "oga", "opus", "spx")),
    "webm": Container("WebM", "audio/webm", ("webm", "mkv", "mka")),
    "flac": Container("FLAC", "audio/flac", ("flac",)),
    "aac": Container("AAC", "audio/aac", ("aac", "adts")),
}

_TYPE_BY_NAME: dict[str, AudioType] = {name: t for t in AUDIO_TYPES for name in (t.mime_type, *t.aliases)}
_TYPE_BY_FILE_EXTENSION: dict[str, str] = {ext: t.mime_type for t in AUDIO_TYPES for ext in t.file_extensions}
_CONTAINER_BY_EXTENSION: dict[str, str] = {
    ext: family for family, container in CONTAINERS.items() for ext in container.file_extensions
}

#: Every accepted type and alias: the default of ``ALLOWED_MIME_TYPES``.
DEFAULT_ALLOWED_MIME_TYPES: tuple[str, ...] = tuple(_TYPE_BY_NAME)


def normalize_mime_type(value: str) -> str:
    """Lower-case a MIME type and drop parameters (``"Audio/Webm;codecs=opus"`` -> ``"audio/webm"``)."""
    return value.split(";", 1)[0].strip().lower()


def parse_allowed_mime_types(values: Iterable[str]) -> tuple[str, ...]:
    """Normalize a configured allow-list, keeping its order and dropping repeats.

    Raises:
        ValueError: a type is not in :data:`AUDIO_TYPES` (its text names each), or the
            list is empty.
    """
    normalized = tuple(dict.fromkeys(normalize_mime_type(v) for v in values if v.strip()))
    unknown = [v for v in normalized if v not in _TYPE_BY_NAME]
    if unknown:
        raise ValueError(f"no object key extension known for {', '.join(unknown)}")
    if not normalized:
        raise ValueError("the allow-list is empty")
    return normalized


def extension_for(mime_type: str) -> str:
    """The object key extension of an accepted MIME type (``audio/x-m4a`` -> ``m4a``).

    Raises:
        KeyError: the type (after :func:`normalize_mime_type`) is not in :data:`AUDIO_TYPES`.
    """
    return _TYPE_BY_NAME[normalize_mime_type(mime_type)].key_extension


def containers_for(mime_type: str) -> tuple[str, ...]:
    """The container families that may carry ``mime_type`` (lower-case); () for an unknown type."""
    audio_type = _TYPE_BY_NAME.get(mime_type)
    return audio_type.containers if audio_type else ()


def mime_type_for_filename(filename: str) -> str | None:
    """The MIME type a client declares for ``filename``, or None for an unknown extension."""
    _, _, ext = filename.rpartition(".")
    return _TYPE_BY_FILE_EXTENSION.get(ext.lower()) if ext else None


def container_for_extension(extension: str) -> str | None:
    """The container family a file extension (``".m4a"`` or ``"m4a"``, any case) names, or None."""
    return _CONTAINER_BY_EXTENSION.get(extension.lower().lstrip("."))

"""Is it really audio, of the declared kind, and how long is it? (DESIGN §6 rule 7)

Pure functions over bytes and seekable file objects; no Flask, no boto3.

- :func:`sniff_container` names the container from the first bytes with puremagic
  (a maintained magic-number database), never from the client's Content-Type.
- :func:`container_fits` says whether that container may carry the declared MIME type
  (by the one table of types and containers, :mod:`advanced_notes.domain.mime`).
- :func:`measure_duration_ms` parses the stream with mutagen (MP4, MP3, WAV, Ogg, FLAC,
  ADTS AAC; MP4 by its edit list when it has one) or enzyme (WebM/Matroska; a WebM written
  as it streamed, which enzyme cannot read, by :mod:`advanced_notes.domain.webm`),
  reading only what the parser seeks to.
"""

from __future__ import annotations

import functools
import logging
import struct
from typing import Any, BinaryIO

import enzyme
import mutagen
import puremagic
from enzyme.parsers import ebml
from mutagen.aac import AAC
from mutagen.flac import FLAC
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4, Atoms  # type: ignore[attr-defined]  # public in mutagen.mp4, not re-exported
from mutagen.oggflac import OggFLAC
from mutagen.oggopus import OggOpus
from mutagen.oggspeex import OggSpeex
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE

from advanced_notes.domain import webm
from advanced_notes.domain.mime import CONTAINERS, container_for_extension, containers_for

# enzyme logs every EBML element at INFO and elements newer than its spec table (such as
# Opus's CodecDelay/SeekPreRoll, in every browser recording) at ERROR; our own verdict is
# what matters, so only its critical messages pass.
logging.getLogger("enzyme").setLevel(logging.CRITICAL)
# enzyme 0.5 reads its Matroska spec (an XML file, through minidom) again on every MKV():
# CPU and a DOM of megabytes per WebM verified, whose freed memory stays in the web
# worker. The spec is the same for the life of the process and only looked up, so it is
# read once; MKV() takes no parameter to hand it over.
ebml.get_matroska_specs = functools.cache(ebml.get_matroska_specs)

#: Bytes of the object's start used to recognise the container.
SNIFF_BYTES = 64 * 1024

_MUTAGEN_TYPES: dict[str, list[type]] = {
    "mp4": [MP4],
    "mp3": [MP3],
    "wav": [WAVE],
    "flac": [FLAC],
    "aac": [AAC],
    "ogg": [OggOpus, OggVorbis, OggFLAC, OggSpeex],
}


class UnreadableAudio(ValueError):
    """The stream has a known container's signature but cannot be parsed as audio.

    Its text names the parser's exception: for logs. What the uploader reads is
    :func:`unreadable_message`.

    Args:
        message: what the parser said (for the log).
        no_audio: True when the container parsed but holds no audio stream or track.
    """

    def __init__(self, message: str, *, no_audio: bool = False):
        super().__init__(message)
        self.no_audio = no_audio


def unreadable_message(container: str, exc: UnreadableAudio | None = None) -> str:
    """The rejection message for audio of ``container`` that does not parse, in the uploader's terms.

    Never quotes the parser's exception (class names and Python reprs mean nothing to a
    user and tell an attacker which parser runs): that goes to the log.

    Args:
        container: a family from :func:`sniff_container`; exc: the parse failure, if any.
    Returns:
        e.g. "The file is not a readable MP4/M4A audio file: it may be truncated or
        damaged; export it again."
    """
    known = CONTAINERS.get(container)
    name = known.label if known else "audio"
    if exc is not None and exc.no_audio:
        return f"The file is a {name} file with no audio in it; record or export it again."
    return f"The file is not a readable {name} audio file: it may be truncated or damaged; export it again."


def _family(extension: str, mime_type: str) -> str | None:
    # puremagic names a signature by a file extension and a MIME type; its generic
    # EBML signature has no extension, only "application/x-matroska".
    if "matroska" in mime_type:
        return "webm"
    return container_for_extension(extension)


def sniff_container(head: bytes) -> str | None:
    """The container family of an object from its first bytes.

    Args:
        head: the first bytes (up to :data:`SNIFF_BYTES`).
    Returns:
        ``mp4``, ``mp3``, ``wav``, ``ogg``, ``webm``, ``flac`` or ``aac``; None when the
        bytes are not a known audio container (HTML, text, images, ...).
    """
    if not head:
        return None
    try:
        matches = puremagic.magic_string(head)
    except Exception:  # PureError, or whatever else hostile bytes make puremagic raise
        return None
    for match in matches:  # best match first
        family = _family(match.extension, match.mime_type)
        if family:
            return family
    return None


def container_fits(mime_type: str, container: str) -> bool:
    """True when ``container`` may carry audio declared as ``mime_type`` (lower-case)."""
    return container in containers_for(mime_type)


def measure_duration_ms(fileobj: BinaryIO, container: str) -> int | None:
    """Parse the audio stream and return its duration in milliseconds.

    Args:
        fileobj: a seekable binary file positioned anywhere (it is rewound); when it is a
            :class:`~advanced_notes.domain.rangeio.RangedReader`, its ``failure`` tells a
            store or budget failure from bad bytes.
        container: a family from :func:`sniff_container`.
    Returns:
        the duration in ms; None only for a WebM with an audio track and no Cluster
        (no audio written yet).
    Raises:
        UnreadableAudio: not parseable as audio of that container (truncated, no audio
            track, corrupt headers): *any* exception of the parser counts, because hostile
            bytes reach corners of mutagen and enzyme that raise bare ``OSError`` (a short
            read), ``AttributeError``, ``TypeError``, ``OverflowError`` or ``RecursionError``
            (the crashers are in tests/fixtures/audio-crashers/).
        Exception: whatever the reader's fetch raised (a store failure), or
            ``ReadBudgetExceeded``, re-raised unchanged however the parser wrapped it.
    """
    fileobj.seek(0)
    try:
        duration_ms = _parse_duration_ms(fileobj, container)
    except Exception as exc:  # see Raises: every parser failure is bad audio, unless the reader failed
        failure = getattr(fileobj, "failure", None)
        if isinstance(failure, BaseException):
            raise failure from None
        if isinstance(exc, UnreadableAudio):
            raise
        raise UnreadableAudio(f"cannot parse {container}: {exc.__class__.__name__}: {exc}"[:300]) from exc
    failure = getattr(fileobj, "failure", None)
    if isinstance(failure, BaseException):  # a parser that swallowed the store's error
        raise failure
    return duration_ms


def _parse_duration_ms(fileobj: BinaryIO, container: str) -> int | None:
    if container == "webm":
        return _matroska_duration_ms(fileobj)
    parsed = mutagen.File(fileobj, options=_MUTAGEN_TYPES[container])
    length = getattr(getattr(parsed, "info", None), "length", None) if parsed is not None else None
    if not length or length <= 0:
        raise UnreadableAudio(f"no audio stream found in {container}", no_audio=True)
    if container == "mp4":
        edited = _mp4_edited_duration_ms(fileobj)
        if edited:
            return edited
    return round(float(length) * 1000)


def _mp4_edited_duration_ms(fileobj: BinaryIO) -> int | None:
    """The playable duration of the MP4's audio track by its edit list, in ms; None without one.

    mutagen's length is the media's (``mdhd``): every sample, including the encoder's
    priming samples that the edit list tells players to skip (AAC: 1024 samples, 23 ms at
    44.1 kHz) and the padding at the end. The fixture ``note.m4a`` says 6312 ms that way;
    its ``elst`` plays 6288 ms from sample 1024 (``mvhd``: 6289, what ffprobe shows).
    ISO/IEC 14496-12 §8.6.6: segment_duration is in the movie's timescale (``mvhd``);
    empty edits (media_time -1) are not audio and are not counted.
    """
    try:
        atoms = Atoms(fileobj)
        moov = atoms[b"moov"]
        timescale = _mp4_movie_timescale(fileobj, atoms[b"moov.mvhd"])
        for trak in moov.findall(b"trak"):
            if _mp4_handler(fileobj, trak) != b"soun":
                continue
            edts = next((child for child in trak.children or [] if child.name == b"edts"), None)
            if edts is None or not timescale:
                return None
            fileobj.seek(edts.offset + 8)
            total = _mp4_elst_duration(fileobj.read(edts.length - 8))
            return round(total * 1000 / timescale) if total else None
    except Exception:  # an odd edit list is no reason to refuse audio mutagen could read
        return None
    return None


def _mp4_movie_timescale(fileobj: BinaryIO, mvhd: Any) -> int:
    fileobj.seek(mvhd.offset + 8)
    body = fileobj.read(32)
    return int(struct.unpack(">I", body[12:16] if body[0] == 0 else body[20:24])[0])


def _mp4_handler(fileobj: BinaryIO, trak: Any) -> bytes:
    hdlr = trak[b"mdia", b"hdlr"]
    fileobj.seek(hdlr.offset + 16)  # size, type, version/flags, pre_defined
    return fileobj.read(4)


def _mp4_elst_duration(edts: bytes) -> int:
    """Sum of the non-empty edits' segment_duration in an ``edts`` box's payload."""
    name = edts[4:8]
    if name != b"elst":
        return 0
    version, count = edts[8], struct.unpack(">I", edts[12:16])[0]
    entry, fmt = (12, ">Ii") if version == 0 else (20, ">Qq")
    total = 0
    for i in range(count):
        duration, media_time = struct.unpack(fmt, edts[16 + i * entry : 16 + i * entry + struct.calcsize(fmt)])
        if media_time >= 0:
            total += duration
    return total


def _matroska_duration_ms(fileobj: BinaryIO) -> int | None:
    # enzyme first (the files of ffmpeg and other muxers); a file written as it streamed
    # (Segment of unknown size, no SeekHead: MediaRecorder with a timeslice), or one
    # without a Duration (MediaRecorder without one), is measured by walking its EBML.
    try:
        mkv = enzyme.MKV(fileobj)
    except Exception as exc:  # enzyme gives up on an unknown-size Segment in several ways
        if getattr(fileobj, "failure", None) is not None or not webm.segment_size_unknown(fileobj):
            raise  # the store failed, or bytes enzyme should read are damaged: not our case
        return _walked_duration_ms(fileobj, f"cannot parse webm: {exc.__class__.__name__}: {exc}")
    if not mkv.audio_tracks:
        raise UnreadableAudio("the webm has no audio track", no_audio=True)
    duration = mkv.info.duration if mkv.info else None
    if duration:
        return round(float(duration.total_seconds()) * 1000)
    return _walked_duration_ms(fileobj, "no Duration in the webm")


def _walked_duration_ms(fileobj: BinaryIO, enzyme_said: str) -> int | None:
    size = fileobj.seek(0, 2)
    try:
        return webm.duration_ms(fileobj, size)
    except (webm.WebmError, EOFError) as exc:
        raise UnreadableAudio(f"{enzyme_said}; walking its EBML: {exc}"[:300]) from exc

"""What complete checks before a clip becomes ready (DESIGN §6 rule 7).

The client's word is never enough: the object is HEADed (size, type, checksum), its
first bytes are sniffed (is it audio, of a container that fits the declared type?),
and its duration is measured by parsing the stored audio through ranged GETs, reading
only what the parser needs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import BinaryIO, cast

from advanced_notes.adapters.heap import release_free_heap
from advanced_notes.adapters.models import ClipRecord
from advanced_notes.adapters.storage import ObjectInfo, S3Storage
from advanced_notes.domain.audio import (
    SNIFF_BYTES,
    UnreadableAudio,
    container_fits,
    measure_duration_ms,
    sniff_container,
    unreadable_message,
)
from advanced_notes.domain.errors import UploadRejected
from advanced_notes.domain.mime import normalize_mime_type
from advanced_notes.domain.rangeio import ProbeTooComplex, ReadBudgetExceeded

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VerifiedAudio:
    """A verified object: its container and measured duration (ms, None when the container
    does not say). What verification read from the store is logged, not returned."""

    container: str
    measured_duration_ms: int | None


def check_declaration(clip: ClipRecord, info: ObjectInfo) -> None:
    """Compare what HEAD reported with what was declared.

    Raises:
        UploadRejected: ``size_mismatch``, ``type_mismatch`` (the stored Content-Type) or
            ``checksum_mismatch``.
    """
    if info.size != clip.bytes:
        raise UploadRejected(
            "size_mismatch",
            f"The object has {info.size} bytes; {clip.bytes} were declared.",
            expected_bytes=clip.bytes,
            stored_bytes=info.size,
        )
    stored_type = normalize_mime_type(info.content_type or "")
    if stored_type != clip.mime_type:
        raise UploadRejected(
            "type_mismatch",
            f"The object was stored as {stored_type or 'no type'!r}; {clip.mime_type!r} was declared.",
            expected_type=clip.mime_type,
            stored_type=stored_type or None,
        )
    # Multipart uploads report a checksum of checksums ("...-N"): not comparable.
    if (
        clip.checksum_sha256
        and info.checksum_sha256
        and "-" not in info.checksum_sha256
        and info.checksum_sha256 != clip.checksum_sha256
    ):
        raise UploadRejected(
            "checksum_mismatch",
            "The object's SHA-256 differs from the declared one.",
            expected_sha256=clip.checksum_sha256,
            stored_sha256=info.checksum_sha256,
        )


def _parse_rejection(
    exc: UnreadableAudio | ReadBudgetExceeded | ProbeTooComplex, clip: ClipRecord, container: str, max_read_bytes: int
) -> UploadRejected:
    """The rejection for audio of ``container`` that did not parse, in the uploader's terms."""
    if isinstance(exc, UnreadableAudio):
        # The parser's words are for operators; the uploader reads what is wrong with the file.
        log.warning("unreadable audio clip=%s container=%s: %s", clip.id, container, exc)
        return UploadRejected("unreadable_audio", unreadable_message(container, exc))
    if isinstance(exc, ReadBudgetExceeded):
        return UploadRejected(
            "unreadable_audio", f"Parsing the audio needs more than {max_read_bytes} bytes of headers."
        )
    # Millions of tiny header elements within the byte budget: no recorder writes them.
    over = f"over {exc.max_calls} header reads" if exc.max_calls is not None else f"over {exc.seconds:g} s"
    log.warning("clip=%s container=%s too complex: %s", clip.id, container, exc)
    return UploadRejected(
        "audio_too_complex",
        f"The file's structure is too complex to verify ({over}); re-encode or export it again.",
        detected_container=container,
    )


def verify_audio(
    storage: S3Storage,
    clip: ClipRecord,
    size: int,
    *,
    max_duration_ms: int,
    max_read_bytes: int,
    max_reads: int | None = None,
    max_seconds: float | None = None,
) -> VerifiedAudio:
    """Sniff and parse the stored object through ranged GETs.

    Args:
        storage: the adapter; clip: the clip being completed; size: object size (bytes).
        max_duration_ms: longest allowed measured duration.
        max_read_bytes: the most verification may read from the store.
        max_reads: the most read/seek calls the parser may make (``AUDIO_PROBE_MAX_READS``).
        max_seconds: the most parsing time, seconds, store waits not counted
            (``AUDIO_PROBE_MAX_SECONDS``).
    Returns:
        what was found.
    Raises:
        UploadRejected: ``not_audio``, ``type_mismatch``, ``unreadable_audio``,
            ``audio_too_complex`` or ``duration_exceeded``.
        StorageUnavailable: a ranged GET failed (the clip must stay pending).
    """
    reader = storage.open_reader(
        clip.storage_key, size, max_fetch_bytes=max_read_bytes, max_calls=max_reads, max_seconds=max_seconds
    )
    container = sniff_container(reader.read(SNIFF_BYTES))
    if container is None:
        raise UploadRejected("not_audio", "The object is not audio of a known container.")
    if not container_fits(clip.mime_type, container):
        raise UploadRejected(
            "type_mismatch",
            f"The object is {container} audio; {clip.mime_type!r} was declared.",
            expected_type=clip.mime_type,
            detected_container=container,
        )
    try:
        duration_ms = measure_duration_ms(cast(BinaryIO, reader), container)  # a file-like RawIOBase
    except (UnreadableAudio, ReadBudgetExceeded, ProbeTooComplex) as exc:
        # A file that fails to parse may have had the parser build thousands of objects
        # first (up to the read/seek cap); their memory goes back to the system now, not
        # at the worker's recycling (adapters.heap says why).
        release_free_heap()
        raise _parse_rejection(exc, clip, container, max_read_bytes) from exc
    if duration_ms is not None and duration_ms > max_duration_ms:
        raise UploadRejected(
            "duration_exceeded",
            f"The audio lasts {duration_ms} ms; at most {max_duration_ms} ms are allowed.",
            measured_duration_ms=duration_ms,
            max_duration_ms=max_duration_ms,
        )
    log.info(
        "verified clip=%s container=%s duration_ms=%s bytes_read=%d range_requests=%d",
        clip.id,
        container,
        duration_ms,
        reader.bytes_fetched,
        reader.requests,
    )
    return VerifiedAudio(container, duration_ms)

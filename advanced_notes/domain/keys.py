"""Key prefix normalization and object key building (DESIGN §8).

Pure functions: no Flask, no boto3. Nothing from a request is ever part of a key;
the only inputs are settings and server-generated clip ids.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping

from advanced_notes.domain.mime import extension_for

#: Aliases that collapse onto the three canonical environment names.
ENVIRONMENT_ALIASES: Mapping[str, str] = {
    "production": "prod",
    "prod": "prod",
    "live": "prod",
    "development": "dev",
    "dev": "dev",
    "local": "dev",
    "staging": "staging",
    "stage": "staging",
}

DEFAULT_PREFIX = "dev"
CLIPS_FOLDER = "audio-clips"
#: The processing stage's objects of a clip, by file name (docs/processing.md): the
#: seekable WebM, the universal AAC-LC MP4, the waveform peaks, and the loudness-normalized
#: AAC (made only with ``PROCESSING_NORMALIZE_AUDIO``).
#: The file name of each derived rendition under its clip's folder (docs/processing.md).
RENDITION_FILES: dict[str, str] = {
    "seekable": "seekable.webm",
    "universal": "universal.m4a",
    "normalized": "normalized.m4a",
}
#: The file name of a clip's waveform peaks (audiowaveform JSON).
PEAKS_FILE = "peaks.json"
DERIVED_NAMES: tuple[str, ...] = (*RENDITION_FILES.values(), PEAKS_FILE)

_UNSAFE = re.compile(r"[^a-z0-9._-]+")


def _normalize_segment(segment: str) -> str:
    # Runs of unsafe characters become one "-" so "Acme Corp" reads "acme-corp";
    # dashes at the ends are trimmed because they only ever come from such runs.
    cleaned = _UNSAFE.sub("-", segment.strip().lower()).strip("-")
    return "" if cleaned in ("", ".", "..") else cleaned


def normalize_prefix(raw: str | None) -> str:
    """Normalize an environment name or key prefix to a safe S3 key prefix.

    Args:
        raw: any string (``" Production/ "``, ``"tenants/Acme Corp"``) or None.

    Returns:
        ``prod``, ``dev`` or ``staging`` for their aliases (any case, surrounding
        space and slashes ignored); otherwise the lower-cased ``/``-separated
        segments, each reduced to ``[a-z0-9._-]`` with empty, ``.`` and ``..``
        segments dropped. An empty result is ``dev``. The result never starts or
        ends with ``/`` and never contains ``//``.
    """
    if raw is None:
        return DEFAULT_PREFIX
    stripped = raw.strip().strip("/").strip()
    alias = ENVIRONMENT_ALIASES.get(stripped.lower())
    if alias:
        return alias
    segments = [s for s in (_normalize_segment(p) for p in stripped.split("/")) if s]
    return "/".join(segments) or DEFAULT_PREFIX


def clips_folder(prefix: str) -> str:
    """The folder under which every clip object of ``prefix`` lives, with a trailing ``/``."""
    return f"{prefix}/{CLIPS_FOLDER}/"


def build_object_key(prefix: str, clip_id: uuid.UUID, mime_type: str) -> str:
    """Build ``<prefix>/audio-clips/<clip id>.<ext>``.

    Args:
        prefix: a prefix already normalized by :func:`normalize_prefix`.
        clip_id: the server-generated clip UUID.
        mime_type: an allowed audio MIME type (the extension comes from it).
    Returns:
        the object key (no leading ``/``, no ``//``).
    Raises:
        KeyError: the MIME type is not in the allow-list table.
    """
    return f"{clips_folder(prefix)}{clip_id}.{extension_for(mime_type)}"


def derived_key(storage_key: str, name: str) -> str:
    """The key of a derived object of the clip stored at ``storage_key``.

    ``<prefix>/audio-clips/<clip id>.<ext>`` -> ``<prefix>/audio-clips/<clip id>/<name>``:
    under the same prefix, in a folder named after the clip (DESIGN §3: derived objects
    are keyed by the server from the clip's key, never from input).

    Args:
        storage_key: a key built by :func:`build_object_key`.
        name: one of :data:`DERIVED_NAMES`.
    Returns:
        the derived object's key.
    Raises:
        ValueError: ``name`` is not in :data:`DERIVED_NAMES`, or ``storage_key`` has no
            extension to replace.
    """
    if name not in DERIVED_NAMES:
        raise ValueError(f"not a derived object name: {name!r}")
    folder, slash, filename = storage_key.rpartition("/")
    stem, dot, _ext = filename.partition(".")
    if not dot or not stem:
        raise ValueError("not a clip object key")
    return f"{folder}{slash}{stem}/{name}"


def derived_keys(storage_key: str) -> list[str]:
    """Every derived key of the clip at ``storage_key`` (one per :data:`DERIVED_NAMES`)."""
    return [derived_key(storage_key, name) for name in DERIVED_NAMES]


def clip_id_from_key(folder: str, key: str) -> uuid.UUID | None:
    """The clip id of an object key built under ``folder`` by :func:`build_object_key`
    (``<id>.<ext>``) or :func:`derived_key` (``<id>/<name>``, name in :data:`DERIVED_NAMES`).

    Returns None for any key this service would not have built (other names, wrong
    case, not under ``folder``): such objects belong to no clip.
    """
    if not key.startswith(folder):
        return None
    rest = key[len(folder) :]
    stem, slash, name = rest.partition("/")
    if slash:
        return _clip_id(stem) if name in DERIVED_NAMES else None
    stem, dot, ext = rest.partition(".")
    if not dot or "/" in ext:
        return None
    return _clip_id(stem)


def _clip_id(stem: str) -> uuid.UUID | None:
    try:
        clip_id = uuid.UUID(stem)
    except ValueError:
        return None
    return clip_id if str(clip_id) == stem else None

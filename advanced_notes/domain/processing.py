"""Reading a clip's processing results (the ``processing`` column) for the API. Pure.

The worker writes the column as JSON (docs/processing.md, "Results"); this module turns it
into the clip answer's ``processing`` object and decides which rendition a client may
play (DESIGN §3: playback defaults to the original; a named rendition is a 409 while it is
not available).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from advanced_notes.domain.errors import RenditionNotReady
from advanced_notes.domain.keys import RENDITION_FILES

ORIGINAL = "original"
#: Names a client may ask for with ``?rendition=`` (docs/api.md).
RENDITIONS = (ORIGINAL, *RENDITION_FILES)


def results(raw: str | None) -> dict[str, Any]:
    """The ``processing`` column parsed (``{}`` for None or a value that is not a JSON object)."""
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def processing_view(status: str | None, raw: str | None) -> dict[str, Any] | None:
    """The clip answer's ``processing`` object, None before the clip is ready.

    Returns:
        ``{"status", "reason", "renditions" (available names, "original" first),
        "skipped" (name -> why), "duration_ms", "loudness_lufs", "true_peak_dbtp"}``.
    """
    if status is None:
        return None
    data = results(raw)
    return {
        "status": status,
        "reason": data.get("reason"),
        "renditions": [ORIGINAL, *data.get("renditions", {})],
        "skipped": data.get("skipped", {}),
        "duration_ms": data.get("duration_ms"),
        "loudness_lufs": data.get("loudness_lufs"),
        "true_peak_dbtp": data.get("true_peak_dbtp"),
    }


@dataclass(frozen=True)
class StoredRendition:
    """Where a derived object is and how to serve it: ``key``, ``mime_type``, file ``extension``."""

    key: str
    mime_type: str
    extension: str


_EXTENSIONS = {"audio/webm": "webm", "audio/mp4": "m4a", "application/json": "json"}


def _not_ready(
    name: str, what: str, status: str | None, data: dict[str, Any], available: list[str]
) -> RenditionNotReady:
    """Why ``name`` (``seekable``, ..., or ``peaks``; ``what`` names it in a sentence) cannot be served."""
    details = {"rendition": name, "processing_status": status, "available": available}
    if status in (None, "queued", "running"):
        return RenditionNotReady(
            f"The {what} is not ready yet: processing is {status or 'not started'}. Play the original "
            "(rendition=original) now, or ask again when processing.status is done.",
            details,
        )
    if status == "failed":
        reason = (data.get("reason") or {}).get("code", "unknown")
        return RenditionNotReady(
            f"The {what} will not be made: processing failed ({reason}). Play the original (rendition=original).",
            details,
        )
    skipped = data.get("skipped", {}).get(name)
    why = f"it was skipped ({skipped.rstrip('.')})" if skipped else "it is not made for this clip"
    return RenditionNotReady(
        f"The {what} is not available: {why}. Ask for another rendition: {', '.join(available)}.", details
    )


def stored_rendition(name: str, status: str | None, raw: str | None) -> StoredRendition | None:
    """The derived object of rendition ``name`` of a ready clip; None for ``original``.

    Raises:
        RenditionNotReady: processing is not done, failed, or did not make ``name``.
    """
    if name == ORIGINAL:
        return None
    data = results(raw) if status == "done" else {}
    made = data.get("renditions", {})
    entry = made.get(name)
    if not isinstance(entry, dict) or "key" not in entry:
        raise _not_ready(name, f"{name} rendition", status, results(raw), [ORIGINAL, *made])
    mime_type = str(entry.get("mime_type") or "audio/mp4")
    return StoredRendition(str(entry["key"]), mime_type, _EXTENSIONS.get(mime_type, "bin"))


def stored_peaks(status: str | None, raw: str | None) -> StoredRendition:
    """The waveform peaks JSON of a ready clip.

    Raises:
        RenditionNotReady: processing is not done (or failed).
    """
    data = results(raw) if status == "done" else {}
    peaks = data.get("peaks")
    if not isinstance(peaks, dict) or "key" not in peaks:
        raise _not_ready("peaks", "waveform peaks", status, results(raw), [ORIGINAL, *data.get("renditions", {})])
    return StoredRendition(str(peaks["key"]), "application/json", "json")

"""The clip states as services name them, and what completing a finished clip answers (DESIGN §3).

The transitions themselves are compare-and-set statements in
:mod:`advanced_notes.adapters.clip_sql` (``mark_ready``, ``mark_rejected``,
``mark_expired``, ``update_if_pending``): exactly one of concurrent or repeated callers
changes the row; the others see it unchanged and re-read the final state.
"""

from __future__ import annotations

from advanced_notes.adapters.models import ClipRecord, ClipStatus
from advanced_notes.domain.errors import NEW_UPLOAD_SESSION, Conflict

PENDING, READY, REJECTED, EXPIRED = (
    ClipStatus.PENDING.value,
    ClipStatus.READY.value,
    ClipStatus.REJECTED.value,
    ClipStatus.EXPIRED.value,
)


def ready_or_conflict(clip: ClipRecord) -> ClipRecord:
    """What completing a clip that is no longer pending answers: the clip itself when ready.

    Raises:
        Conflict: the clip is rejected or expired (``details.status`` says which; for a
            rejected clip ``details.rejection`` is its verdict: ``reason``, ``message``).
    """
    if clip.status == READY:
        return clip
    rejection = clip.rejection
    if clip.status == REJECTED and rejection:
        raise Conflict(
            f"The clip was rejected and cannot be completed: {rejection.get('message')}",
            {"status": clip.status, "rejection": rejection},
        )
    raise Conflict(f"The clip is {clip.status} and cannot be completed. {NEW_UPLOAD_SESSION}", {"status": clip.status})

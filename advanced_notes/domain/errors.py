"""The failures of the service, as exception classes with their place in the error shape.

Each class carries the HTTP status and the stable ``code`` of DESIGN §4's error shape
(``{"error": {"code", "message", "details"}}``), so services and adapters raise them
without knowing about HTTP frameworks; ``api/errors.py`` turns them into responses.
"""

from __future__ import annotations

from typing import Any

#: Seconds a client should wait before retrying after a dependency outage.
RETRY_AFTER_SECONDS = 5
#: The next step once a clip can no longer take its upload (rejected, expired, aborted):
#: a clip's declaration is fixed at create, so only a new clip can hold the file.
NEW_UPLOAD_SESSION = "Create a new upload session (POST /api/audio-clips) and upload the file again."


def after_pending(status: str, clip_id: object) -> str:
    """The next step for a clip that is no longer pending, in a 409 about a step only a
    pending clip takes (a PUT URL, parts, an abort).

    Args:
        status: the clip's status (``ready``, ``rejected``, ``expired``); clip_id: its id.
    Returns:
        one sentence: a ready clip is played or deleted, any other needs a new upload session.
    """
    if status == "ready":
        return (
            f"It is uploaded already: GET /api/audio-clips/{clip_id}/playback plays it, "
            f"DELETE /api/audio-clips/{clip_id} removes it."
        )
    return NEW_UPLOAD_SESSION


def before_ready(status: str, clip_id: object) -> str:
    """The next step for a clip that is not ready, in a 409 about playing it.

    Args:
        status: the clip's status (``pending``, ``rejected``, ``expired``); clip_id: its id.
    Returns:
        one sentence: a pending clip is completed, any other needs a new upload session.
    """
    if status == "pending":
        return f"Finish its upload first: PUT the file, then POST /api/audio-clips/{clip_id}/complete."
    return NEW_UPLOAD_SESSION


class ApiError(Exception):
    """An error with an HTTP status, a stable machine code, a message and optional details.

    Args:
        message: human-readable, safe to show to the client.
        details: JSON-serializable extra information (field errors, a rejection reason).
        headers: extra response headers (``Retry-After``, ``WWW-Authenticate``).
    """

    status = 500
    code = "internal_error"

    def __init__(self, message: str, details: dict[str, Any] | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers or {}


class BadRequest(ApiError):
    """400 ``bad_request``: the body is not what the endpoint reads (not an event, not JSON)."""

    status, code = 400, "bad_request"


class Unauthorized(ApiError):
    """401; always carries ``WWW-Authenticate: Bearer`` (RFC 6750 §3)."""

    status, code = 401, "unauthorized"

    def __init__(self, message: str = "A valid bearer token is required.", **kw: Any):
        super().__init__(message, **kw)
        self.headers.setdefault("WWW-Authenticate", 'Bearer realm="advanced-notes"')


class NotFound(ApiError):
    status, code = 404, "not_found"


class Conflict(ApiError):
    status, code = 409, "conflict"


class UploadMissing(ApiError):
    """409: complete was called but no object is at the clip's key yet."""

    status, code = 409, "upload_missing"


class UploadIncomplete(ApiError):
    """409: a multipart upload lacks parts or holds parts of the wrong size (``details`` list
    them); the clip stays pending and the client uploads those parts again."""

    status, code = 409, "upload_incomplete"


class ObjectVanished(UploadMissing):
    """409: the object was there at HEAD and gone at a later GET (deleted meanwhile).

    Not a store outage: complete re-reads the clip and answers 404 when
    the clip was deleted, or this (``upload_missing``) when only the object went.
    """


class ClipNotReady(ApiError):
    status, code = 409, "clip_not_ready"


class RenditionNotReady(ApiError):
    """409: the asked rendition of a ready clip is not available: processing has not finished
    (wait), failed, or skipped it (ask for another one); the message says which."""

    status, code = 409, "rendition_not_ready"


class ValidationFailed(ApiError):
    status, code = 422, "validation_error"


class UploadRejected(ApiError):
    """422: the stored object is not what was declared; ``details.reason`` says why.

    Reasons: ``size_mismatch``, ``checksum_mismatch``, ``type_mismatch``, ``not_audio``,
    ``unreadable_audio``, ``audio_too_complex`` (parsing needed more read/seek calls or
    time than allowed), ``duration_exceeded``.
    """

    status, code = 422, "upload_rejected"

    def __init__(self, reason: str, message: str, **details: Any):
        # A rejected clip is final: the message ends with the one way on. It is stored with
        # the verdict and raised again from there, so the step is added once.
        if not message.endswith(NEW_UPLOAD_SESSION):
            message = f"{message} {NEW_UPLOAD_SESSION}"
        super().__init__(message, details={"reason": reason, **details})
        self.reason = reason


class QuotaExceeded(ApiError):
    """429: creating this upload session would exceed a per-owner quota (details say which)."""

    status, code = 429, "quota_exceeded"


class _Unavailable(ApiError):
    def __init__(self, message: str, **kw: Any):
        super().__init__(message, **kw)
        self.headers.setdefault("Retry-After", str(RETRY_AFTER_SECONDS))


class StorageUnavailable(_Unavailable):
    """503: the object store could not be reached or answered with a server error."""

    status, code = 503, "storage_unavailable"


class VerificationBusy(StorageUnavailable):
    """503: another verification of this clip held it for longer than its lease; retry.

    A kind of :class:`StorageUnavailable` for the paths that finish uploads (bucket events,
    the sweeper): nothing changed, the clip stays pending, a later attempt decides.
    """

    status, code = 503, "verification_busy"


class DatabaseUnavailable(_Unavailable):
    status, code = 503, "database_unavailable"

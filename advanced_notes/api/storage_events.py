"""``POST /api/storage-events``: S3 event notifications POSTed by the store (MinIO webhooks).

MinIO's webhook target (``notify_webhook``) POSTs each bucket event as S3 event JSON with
its ``auth_token`` as ``Authorization: Bearer <token>``; any store or relay that POSTs
the S3 shape (or an SNS envelope of it) works the same. The token is
``STORAGE_EVENTS_TOKEN``, compared in constant time; with no token set the endpoint does
not exist (404, and it is not in the OpenAPI document: ``init_api`` registers it only
with a token). The answer comes after the records are settled (200, with what became
of them: completing a clip reads a few KiB from the store). When the store or database
failed for a record, the answer is 503 so the sender delivers the event again; every
record is idempotent, so redelivery is harmless. A record that cannot be handled (a
poison record) is answered 200 and counted ``unhandled``: delivering it again cannot help.

The body is read as JSON whatever its Content-Type (SNS's HTTP delivery sends
``text/plain``). A body that is not an event (empty, not JSON, or JSON of no known
envelope) is ``400 bad_request``: the sender keeps it and retries or alerts, instead of
believing it delivered an event that was dropped.
"""

from __future__ import annotations

import hmac
from typing import Any

from flask import request

from advanced_notes.api.common import ApiBlueprint
from advanced_notes.api.context import current_services
from advanced_notes.api.schemas import STORAGE_EVENT_EXAMPLE, EventOutcomesSchema, S3EventSchema
from advanced_notes.domain.errors import BadRequest, NotFound, StorageUnavailable, Unauthorized
from advanced_notes.domain.s3events import parse_notification

#: The OpenAPI security scheme of this endpoint (its own token, not the users' bearer tokens).
SECURITY_SCHEME = "storageEventsToken"


def _authenticate() -> None:
    token = current_services().settings.storage_events_token
    if not token:
        raise NotFound("Not found.")  # the token was unset after registration: still off
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    # compare_digest on bytes: constant time for equal lengths, and any str is accepted.
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), token.encode()):
        raise Unauthorized("A valid storage events token is required.", headers={"WWW-Authenticate": "Bearer"})


def storage_events_blueprint() -> ApiBlueprint:
    """The ``POST /api/storage-events`` blueprint of one app (built per app by ``init_api``,
    and only when ``STORAGE_EVENTS_TOKEN`` is set).

    Returns:
        a new blueprint that checks the storage events token before the body is read.
    """
    # ApiBlueprint: its parser answers JSON nested too deeply with a 400, like every other body.
    blp = ApiBlueprint(
        "storage-events",
        __name__,
        url_prefix="/api",
        description="Bucket event notifications from the object store (MinIO webhook target).",
    )
    # Authenticate before webargs reads the body: an unauthenticated caller learns nothing.
    blp.before_request(_authenticate)

    @blp.route("/storage-events", methods=["POST"])
    @blp.doc(
        security=[{SECURITY_SCHEME: []}],
        requestBody={
            "required": True,
            "content": {
                "application/json": {"schema": S3EventSchema, "example": STORAGE_EVENT_EXAMPLE},
                "text/plain": {"schema": {"type": "string", "description": "The same JSON (SNS HTTP delivery)."}},
            },
        },
    )
    @blp.response(200, EventOutcomesSchema)
    @blp.alt_response(400, description="bad_request: the body is not an event (empty, not JSON, no known envelope).")
    @blp.alt_response(401, description="unauthorized: missing or wrong STORAGE_EVENTS_TOKEN.")
    @blp.alt_response(404, description="not_found: STORAGE_EVENTS_TOKEN is not set (the endpoint is off).")
    @blp.alt_response(429, description="too_many_requests: too many failed token checks from this address.")
    @blp.alt_response(503, description="storage_unavailable: some records were not settled; deliver again.")
    def storage_events() -> dict[str, Any]:
        """Finish the uploads a bucket event reports (ObjectCreated:*), through the same checks as complete.

        Keys outside this deployment's prefix, other buckets, removals, duplicates, test
        events and SNS subscription messages are answered 200 and counted; records for
        deleted, expired or rejected clips schedule the late object's deletion; poison
        records are answered 200 and counted ``unhandled``.

        Raises:
            BadRequest: the body is not an S3, SNS, EventBridge or MinIO event envelope.
            StorageUnavailable: some record met a transient store or database failure (503).
        """
        # Read whatever the Content-Type: SNS posts text/plain, and webargs skips a body not
        # declared as JSON, which would settle nothing yet answer 200. Over
        # MAX_CONTENT_LENGTH this raises 413.
        notification = parse_notification(request.get_data(cache=False))
        if notification.problem is not None:
            raise BadRequest(
                f"Not a storage event: {notification.problem}. Expected an S3 event notification "
                "(Records), an SNS envelope of one, an EventBridge aws.s3 event or s3:TestEvent.",
            )
        report = current_services().events.handle(notification, source="webhook")
        if not report.settled:
            raise StorageUnavailable(
                "Some records could not be settled; deliver the event again.", details={"outcomes": report.as_dict()}
            )
        return {"outcomes": report.as_dict()}

    return blp

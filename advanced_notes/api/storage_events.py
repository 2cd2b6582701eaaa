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
from marshmallow import INCLUDE, Schema, fields

from advanced_notes.api.common import ApiBlueprint
from advanced_notes.api.context import current_services
from advanced_notes.domain.errors import BadRequest, NotFound, StorageUnavailable, Unauthorized
from advanced_notes.domain.s3events import parse_notification
from advanced_notes.services.events import OUTCOMES

# ApiBlueprint: its parser answers JSON nested too deeply with a 400, like every other body.
blp = ApiBlueprint(
    "storage-events",
    __name__,
    url_prefix="/api",
    description="Bucket event notifications from the object store (MinIO webhook target).",
)

SECURITY_SCHEME = "storageEventsToken"


class S3EventSchema(Schema):
    """An S3 event notification body: ``Records`` (AWS/MinIO shape), or ``s3:TestEvent``.

    Unknown members are kept: the records are read by the domain parser, which counts
    anything that is not the S3 record shape as malformed instead of failing the body.
    The body is read by :func:`storage_events` itself (any Content-Type); this schema
    documents it.
    """

    class Meta:
        unknown = INCLUDE

    Records = fields.List(
        fields.Raw(),
        metadata={
            "description": "S3 event records; each has eventName and s3.bucket.name, s3.object.key (URL-encoded)."
        },
    )
    EventName = fields.String(metadata={"description": "MinIO: the event name (s3:ObjectCreated:Put)."})
    Key = fields.String(metadata={"description": "MinIO: bucket/key of the object."})
    Event = fields.String(metadata={"description": "s3:TestEvent when the configuration was just saved."})


class EventOutcomesSchema(Schema):
    """What became of the body's records: one count per outcome (services/events.py)."""

    outcomes = fields.Dict(keys=fields.String(metadata={"enum": list(OUTCOMES)}), values=fields.Integer())


_EXAMPLE_BODY = {
    "EventName": "s3:ObjectCreated:Put",
    "Key": "advanced-notes-audio/prod/audio-clips/3f0c6a2e-8d4b-4a7e-9b1c-2d5e6f708192.m4a",
    "Records": [
        {
            "eventVersion": "2.0",
            "eventSource": "minio:s3",
            "eventName": "s3:ObjectCreated:Put",
            "s3": {
                "bucket": {"name": "advanced-notes-audio"},
                "object": {"key": "prod%2Faudio-clips%2F3f0c6a2e-8d4b-4a7e-9b1c-2d5e6f708192.m4a", "size": 48213},
            },
        }
    ],
}


def _authenticate() -> None:
    token = current_services().settings.storage_events_token
    if not token:
        raise NotFound("Not found.")  # the token was unset after registration: still off
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    # compare_digest on bytes: constant time for equal lengths, and any str is accepted.
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), token.encode()):
        raise Unauthorized("A valid storage events token is required.", headers={"WWW-Authenticate": "Bearer"})


@blp.route("/storage-events", methods=["POST"])
@blp.doc(
    security=[{SECURITY_SCHEME: []}],
    requestBody={
        "required": True,
        "content": {
            "application/json": {"schema": S3EventSchema, "example": _EXAMPLE_BODY},
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
    # Any Content-Type: SNS posts text/plain, and a body webargs would skip as "not JSON"
    # was answered 200 with nothing settled. Over MAX_CONTENT_LENGTH this raises 413.
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


# Authenticate before webargs reads the body: an unauthenticated caller learns nothing.
blp.before_request(_authenticate)

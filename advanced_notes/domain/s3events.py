"""Reading S3 event notifications, as AWS S3, MinIO and SNS deliver them (pure functions).

Shapes read (https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html):

- ``{"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": ...},
  "object": {"key": ..., "size": ..., "eTag": ..., "sequencer": ...}}}, ...]}``; MinIO
  sends the same records with ``"eventName": "s3:ObjectCreated:Put"`` plus top-level
  ``EventName``/``Key``.
- ``{"Service": "Amazon S3", "Event": "s3:TestEvent", ...}``: sent by S3 when a
  notification configuration is saved; it carries no record.
- An SNS envelope ``{"Type": "Notification", "Message": "<the JSON above>"}`` (an SQS
  queue subscribed to an SNS topic without raw message delivery, or SNS's HTTP delivery,
  which POSTs it as ``text/plain``); SNS's ``SubscriptionConfirmation`` and
  ``UnsubscribeConfirmation`` messages carry no record.
- An EventBridge event ``{"source": "aws.s3", "detail-type": "Object Created", "detail":
  {"bucket": {"name": ...}, "object": {"key": ..., "size": ..., "etag": ...}, "reason":
  "PutObject"}}`` (https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html).

Object keys in S3 notification records are URL-encoded (spaces as ``+``); they are
decoded here. EventBridge keys are sent as they are. Nothing in a body is trusted:
a record that is not the shape above counts as malformed, a body that is none of the
envelopes above says so in :attr:`Notification.problem`, and parsing never raises.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

CREATED_PREFIX = "ObjectCreated:"


@dataclass(frozen=True)
class ObjectEvent:
    """One record: ``name`` without the ``s3:`` prefix (``ObjectCreated:Put``), the decoded key."""

    name: str
    bucket: str | None
    key: str
    size: int | None = None
    etag: str | None = None

    @property
    def created(self) -> bool:
        """True for ``ObjectCreated:*`` (Put, Post, Copy, CompleteMultipartUpload)."""
        return self.name.startswith(CREATED_PREFIX)


@dataclass
class Notification:
    """A parsed message: its records, how many records were malformed, whether it was a
    test event or an SNS subscription message (``sns_control``), and ``problem``: None for
    an event envelope, else why the body is not one (it then counts as one malformed record).
    """

    events: list[ObjectEvent] = field(default_factory=list)
    malformed: int = 0
    test_event: bool = False
    sns_control: bool = False
    problem: str | None = None


#: SNS messages about the subscription itself: no record, nothing to settle.
SNS_CONTROL_TYPES = ("SubscriptionConfirmation", "UnsubscribeConfirmation")
#: EventBridge ``detail-type`` -> the S3 notification event name it stands for.
_EVENTBRIDGE_NAMES = {"Object Created": "ObjectCreated:", "Object Deleted": "ObjectRemoved:"}


def _not_an_event(problem: str) -> Notification:
    return Notification(malformed=1, problem=problem)


def _eventbridge(body: dict[str, Any]) -> Notification:
    """One EventBridge S3 event as a one-record notification (its key is not URL-encoded)."""
    detail, kind = body.get("detail"), body.get("detail-type")
    if not isinstance(detail, dict) or not isinstance(kind, str):
        return _not_an_event("an EventBridge event from aws.s3 needs detail-type and detail")
    reason = detail.get("reason")
    prefix = _EVENTBRIDGE_NAMES.get(kind)
    name = prefix + (reason if isinstance(reason, str) and reason else "Put") if prefix else kind.replace(" ", "")
    obj = detail.get("object")
    if isinstance(obj, dict) and "etag" in obj:
        obj = {**obj, "eTag": obj["etag"]}  # EventBridge spells it etag; notifications eTag
    event = _record({"eventName": name, "s3": {"bucket": detail.get("bucket"), "object": obj}}, encoded=False)
    return Notification(malformed=1) if event is None else Notification(events=[event])


def _record(raw: Any, *, encoded: bool = True) -> ObjectEvent | None:
    if not isinstance(raw, dict):
        return None
    name, s3 = raw.get("eventName"), raw.get("s3")
    if not isinstance(name, str) or not isinstance(s3, dict):
        return None
    bucket, obj = s3.get("bucket"), s3.get("object")
    if not isinstance(obj, dict) or not isinstance(obj.get("key"), str) or not obj["key"]:
        return None
    bucket_name = bucket.get("name") if isinstance(bucket, dict) else None
    size = obj.get("size")
    etag = obj.get("eTag")
    return ObjectEvent(
        name=name.removeprefix("s3:"),
        bucket=bucket_name if isinstance(bucket_name, str) else None,
        key=unquote_plus(obj["key"]) if encoded else obj["key"],
        size=size if isinstance(size, int) and not isinstance(size, bool) else None,
        etag=etag if isinstance(etag, str) else None,
    )


def parse_notification(body: Any, *, _depth: int = 0) -> Notification:
    """Read one notification body (already JSON-decoded, or its JSON text as str or bytes).

    Args:
        body: a dict (or its JSON text) of one of the module's shapes.
    Returns:
        the records (malformed ones counted, not returned). A body that is not a
        notification at all is one malformed record, with ``problem`` saying why (for the
        sender: ``POST /api/storage-events`` answers it 400).
    """
    if isinstance(body, (str, bytes)):
        if not body.strip():
            return _not_an_event("the body is empty")
        try:
            body = json.loads(body)
        except (ValueError, RecursionError):
            return _not_an_event("the body is not JSON")
    if not isinstance(body, dict):
        return _not_an_event("the body is not a JSON object")
    if body.get("Event") == "s3:TestEvent":
        return Notification(test_event=True)
    kind, message = body.get("Type"), body.get("Message")
    if kind in SNS_CONTROL_TYPES and isinstance(body.get("TopicArn"), str):
        return Notification(sns_control=True)
    if kind == "Notification" and _depth == 0:
        if not isinstance(message, str):
            return _not_an_event("an SNS Notification needs a Message string holding the S3 event")
        inner = parse_notification(message, _depth=1)
        if inner.problem is not None:
            return _not_an_event(f"the SNS Message is not an S3 event: {inner.problem}")
        return inner
    if body.get("source") == "aws.s3" and "detail" in body:
        return _eventbridge(body)
    records = body.get("Records")
    if not isinstance(records, list):
        return _not_an_event("the body has no Records list (nor Event, SNS Type or EventBridge source)")
    result = Notification()
    for raw in records:
        event = _record(raw)
        if event is None:
            result.malformed += 1
        else:
            result.events.append(event)
    return result

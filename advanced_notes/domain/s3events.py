"""Reading S3 event notifications, as AWS S3, MinIO and SNS deliver them (pure functions).

Shapes read (https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html):

- ``{"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": ...},
  "object": {"key": ..., "size": ..., "eTag": ..., "sequencer": ...}}}, ...]}``; MinIO
  sends the same records with ``"eventName": "s3:ObjectCreated:Put"`` plus top-level
  ``EventName``/``Key``.
- ``{"Service": "Amazon S3", "Event": "s3:TestEvent", ...}``: sent by S3 when a
  notification configuration is saved; it carries no record.
- An SNS envelope ``{"Type": "Notification", "Message": "<the JSON above>"}`` (an SQS
  queue subscribed to an SNS topic without raw message delivery).

Object keys in records are URL-encoded (spaces as ``+``); they are decoded here.
Nothing in a body is trusted: anything that is not the shape above counts as malformed,
and parsing never raises.
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
    """A parsed message: its records, how many records were malformed, whether it was a test event."""

    events: list[ObjectEvent] = field(default_factory=list)
    malformed: int = 0
    test_event: bool = False


def _record(raw: Any) -> ObjectEvent | None:
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
        key=unquote_plus(obj["key"]),
        size=size if isinstance(size, int) and not isinstance(size, bool) else None,
        etag=etag if isinstance(etag, str) else None,
    )


def parse_notification(body: Any, *, _depth: int = 0) -> Notification:
    """Read one notification body (already JSON-decoded, or a JSON string).

    Args:
        body: a dict (or its JSON text) of one of the module's shapes.
    Returns:
        the records (malformed ones counted, not returned). A body that is not a
        notification at all is one malformed record.
    """
    if isinstance(body, (str, bytes)):
        try:
            body = json.loads(body)
        except (ValueError, RecursionError):
            return Notification(malformed=1)
    if not isinstance(body, dict):
        return Notification(malformed=1)
    if body.get("Event") == "s3:TestEvent":
        return Notification(test_event=True)
    message = body.get("Message")
    if body.get("Type") == "Notification" and isinstance(message, str) and _depth == 0:
        return parse_notification(message, _depth=1)
    records = body.get("Records")
    if not isinstance(records, list):
        return Notification(malformed=1)
    result = Notification()
    for raw in records:
        event = _record(raw)
        if event is None:
            result.malformed += 1
        else:
            result.events.append(event)
    return result

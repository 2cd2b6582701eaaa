"""Schemas of ``POST /api/storage-events``: the bucket event body (documented only) and the answer."""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, fields

from advanced_notes.services.events import OUTCOMES


class S3EventSchema(Schema):
    """An S3 event notification body: ``Records`` (AWS/MinIO shape), or ``s3:TestEvent``.

    Unknown members are kept: the records are read by the domain parser, which counts
    anything that is not the S3 record shape as malformed instead of failing the body.
    The body is read by the view itself (any Content-Type); this schema documents it.
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

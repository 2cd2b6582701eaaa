"""The shapes every route shares: the error answer, and the probes' answers."""

from __future__ import annotations

from marshmallow import Schema, fields


class HealthSchema(Schema):
    """Answer of ``GET /healthz``."""

    status = fields.String(metadata={"example": "ok"})


class ReadinessSchema(Schema):
    """Answer of ``GET /readyz``: each dependency's check."""

    status = fields.String(metadata={"example": "ready"})
    checks = fields.Dict(
        keys=fields.String(), values=fields.String(), metadata={"example": {"database": "ok", "storage": "ok"}}
    )


class ErrorBodySchema(Schema):
    """The ``error`` member of an error answer."""

    code = fields.String(metadata={"example": "validation_error"})
    message = fields.String()
    details = fields.Raw(metadata={"description": "Field errors or a rejection reason."})


class ErrorSchema(Schema):
    """Every 4xx/5xx answer: ``{"error": {"code", "message", "details"?}}``."""

    error = fields.Nested(ErrorBodySchema)

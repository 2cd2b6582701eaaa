"""Fields, validators and base schemas shared by every API schema.

Inputs are strict: unknown fields are a 422, ``"bytes": "12"`` is a 422, booleans are
not integers; strings a database column cannot hold (NUL, lone surrogates) are a 422 too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from advanced_notes.domain.mime import normalize_mime_type

MAX_NOTE_ID_LENGTH = 255


class UTCDateTime(fields.DateTime):
    """ISO 8601 UTC with a ``Z`` and millisecond precision: ``2026-11-21T08:06:31.123Z``."""

    def _serialize(self, value: dt.datetime | None, attr: str | None, obj: object, **kwargs: object) -> str | None:
        if value is None:
            return None
        utc = value.astimezone(dt.UTC)
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


class StrictSchema(Schema):
    """A schema of client input: an unknown field is a 422 (a typo never passes silently)."""

    class Meta:
        unknown = RAISE


class StrictBoolean(fields.Boolean):
    """JSON ``true``/``false`` only: marshmallow's Boolean also takes "yes", "on", 1 and 0
    (and ``0 in {False}`` is true in Python, so truthy/falsy sets cannot exclude them)."""

    def _deserialize(self, value: object, attr: str | None, data: object, **kwargs: object) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class MimeType(fields.String):
    """A MIME type, case-insensitive, parameters dropped (``"Audio/Webm;codecs=opus"`` -> ``"audio/webm"``).

    The field's validators (the allow-list) see the normalized value.
    """

    def _deserialize(self, value: object, attr: str | None, data: object, **kwargs: object) -> str:
        return normalize_mime_type(super()._deserialize(value, attr, data, **kwargs))


#: The wording of a bound the API has always used: "Must be between 1 and 104857600."
BETWEEN = "Must be between {min} and {max}."
#: "Must be one of: audio/mp4, audio/mpeg." (the choices in allow-list order).
ONE_OF = "Must be one of: {choices}."


#: Base64 of 32 bytes: 43 characters and one "=" of padding.
SHA256_BASE64 = validate.Regexp(
    r"^[A-Za-z0-9+/]{43}=$", error="Must be the base64 encoding of a 32-byte SHA-256 digest."
)


def _is_utf8(value: str) -> bool:
    # JSON can spell a lone surrogate ("\\ud800"); no UTF-8 database column can hold one,
    # and the database driver raises UnicodeEncodeError on it: a 422 here, never a 500.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def is_storable_note_id(value: str) -> bool:
    """True when ``value`` can be a note id: 1..255 characters, not only whitespace (no
    note is called " "), no NUL (PostgreSQL text cannot hold U+0000, and the driver would
    fail on it) and no lone surrogate."""
    return 0 < len(value) <= MAX_NOTE_ID_LENGTH and "\x00" not in value and not value.isspace() and _is_utf8(value)


def _no_nul_or_blank(value: str) -> None:
    if "\x00" in value:
        raise ValidationError("Must not contain NUL characters.")
    if not _is_utf8(value):
        raise ValidationError("Must be valid Unicode (no lone surrogates).")
    if value.isspace():
        raise ValidationError("Must not be blank.")


#: In the OpenAPI document: a note id holds at least one character that is not whitespace
#: (Python's ``str.isspace``, which :func:`_no_nul_or_blank` applies).
NOTE_ID_PATTERN = r"\S"
#: The validators of a note id in a body or query: 1..255 characters, no NUL, no lone
#: surrogate, not blank (the column's length; what PostgreSQL text and UTF-8 can hold).
NOTE_ID_VALIDATORS: list[Callable[[Any], Any]] = [validate.Length(1, MAX_NOTE_ID_LENGTH), _no_nul_or_blank]

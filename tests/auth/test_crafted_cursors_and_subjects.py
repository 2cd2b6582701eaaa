"""Crafted cursors and token subjects answer 422/401, never 500.

A cursor decoding to a datetime with a far UTC offset overflowed ``astimezone`` (or, with
a sub-minute offset, made PostgreSQL raise); a validly signed token whose ``sub`` is a lone
surrogate made the database driver raise UnicodeEncodeError. Both reach SQL through the
real app here, on the session's backend (SQLite or PostgreSQL).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid

import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from advanced_notes.api.auth import MAX_SUBJECT_LENGTH
from advanced_notes.app import create_app
from advanced_notes.domain.pagination import decode_cursor, encode_cursor
from tests.helpers import EC_KEY, JWT_SECRET, RSA_KEY, assert_error, token_claims

CLIP_ID = "0b7f5a3c-8d2e-4a61-9f10-2c3d4e5f6a7b"


def _cursor(decoded: object) -> str:
    raw = json.dumps(decoded, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _list(client, auth, cursor: str):
    return client.get("/api/audio-clips", query_string={"cursor": cursor}, headers=auth)


# -- cursors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "created",
    [
        "9999-12-31T23:59:59-23:59",  # the audit's repro: astimezone overflows
        "2020-01-01T00:00:00+00:00:01.5",  # the audit's repro: an offset PostgreSQL refuses
        "0001-01-01T00:00:00+05:00",  # overflows the other way
        "2020-01-01T00:00:00+01:00",  # a valid instant, but not a cursor this API writes
        "2020-01-01T00:00:00-00:00",
        "2020-01-01T00:00:00Z",
        "20200101T000000+0000",  # basic format
        "2020-W01-1T00:00:00+00:00",  # week date
        "2020-01-01T00:00:00",  # naive
        "2020-01-01",
        "2020-13-01T00:00:00+00:00",
        "\ud800",
    ],
)
def test_a_crafted_cursor_datetime_is_422(client, auth, created):
    response = _list(client, auth, _cursor([created, CLIP_ID]))
    assert assert_error(response, 422, "validation_error")["details"] == {"cursor": ["Invalid cursor."]}


@pytest.mark.parametrize(
    "clip_id",
    [
        CLIP_ID.upper(),
        CLIP_ID.replace("-", ""),
        "{" + CLIP_ID + "}",
        "urn:uuid:" + CLIP_ID,
        "not-a-uuid",
        "\ud800",
    ],
)
def test_a_crafted_cursor_id_is_422(client, auth, clip_id):
    response = _list(client, auth, _cursor(["2020-01-01T00:00:00+00:00", clip_id]))
    assert assert_error(response, 422, "validation_error")["details"] == {"cursor": ["Invalid cursor."]}


@pytest.mark.parametrize("created", [dt.datetime.min, dt.datetime.max, dt.datetime(2020, 1, 1, 12, 30, 1, 5)])
def test_any_cursor_this_api_writes_is_accepted(client, auth, created):
    """The whole UTC range (years 1..9999, microseconds) stays valid, on both backends."""
    cursor = encode_cursor(created.replace(tzinfo=dt.UTC), uuid.UUID(CLIP_ID))
    assert decode_cursor(cursor) == (created.replace(tzinfo=dt.UTC), uuid.UUID(CLIP_ID))
    response = _list(client, auth, cursor)
    assert response.status_code == 200, response.get_json()


@settings(max_examples=300, deadline=None)
@given(st.datetimes(timezones=st.timezones()), st.uuids())
def test_decode_accepts_only_what_encode_writes(created, clip_id):
    """Property: a ``[datetime, uuid]`` pair decodes exactly when its offset is UTC, to itself."""
    crafted = _cursor([created.isoformat(), str(clip_id)])
    try:
        decoded = decode_cursor(crafted)
    except ValueError:
        assert created.utcoffset() != dt.timedelta(0)
    else:
        assert created.utcoffset() == dt.timedelta(0)
        # Offset 0 makes the wall time the UTC time. Comparing with ``created`` itself would
        # be wrong for a wall time in a zone's gap (PEP 495: never equal across zones).
        assert decoded == (created.replace(tzinfo=dt.UTC), clip_id) and decoded[0].tzinfo is dt.UTC
        assert encode_cursor(*decoded) == crafted


_CREATED = st.one_of(st.datetimes(timezones=st.timezones()).map(dt.datetime.isoformat), st.text(max_size=40))
_ID = st.one_of(st.uuids().map(str), st.text(max_size=40))
_ANY_JSON = st.lists(st.one_of(st.text(max_size=40), st.integers(), st.none()), max_size=3)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.tuples(_CREATED, _ID).map(list), _ANY_JSON))
def test_no_cursor_answers_500(client, auth, decoded):
    """Property over the API: a crafted cursor is a 200 or the 422 naming ``cursor``, never a 500."""
    response = _list(client, auth, _cursor(decoded))
    if response.status_code != 200:
        assert set(assert_error(response, 422, "validation_error")["details"]) == {"cursor"}


# -- token subjects ------------------------------------------------------------------------

BAD_SUBJECTS = ["\ud800", "alice\udfff", "", "   ", "x" * (MAX_SUBJECT_LENGTH + 1), 5, ["alice"], {"id": "a"}]


@pytest.mark.parametrize("sub", BAD_SUBJECTS)
def test_a_signed_hs256_token_with_a_bad_subject_is_401(client, sub):
    token = jwt.encode(token_claims(sub=sub), JWT_SECRET, algorithm="HS256")
    for method, path in (("get", "/api/audio-clips"), ("post", "/api/audio-clips")):
        response = getattr(client, method)(
            path, headers={"Authorization": f"Bearer {token}"}, json={"mime_type": "audio/ogg", "bytes": 10}
        )
        assert_error(response, 401, "unauthorized")


@pytest.mark.parametrize("sub", BAD_SUBJECTS)
def test_a_signed_jwks_token_with_a_bad_subject_is_401(base_config, jwks_url, sub):
    app = create_app(
        {**base_config, "AUTH_JWKS_URL": jwks_url, "AUTH_JWT_SECRET": None, "AUTH_JWT_AUDIENCE": "notes-api"}
    )
    client = app.test_client()
    for key, alg, kid in ((RSA_KEY, "RS256", "rsa-1"), (EC_KEY, "ES256", "ec-1")):
        token = jwt.encode(token_claims(sub=sub, aud="notes-api"), key, algorithm=alg, headers={"kid": kid})
        assert_error(client.get("/api/audio-clips", headers={"Authorization": f"Bearer {token}"}), 401, "unauthorized")


def test_the_longest_subject_is_accepted(client):
    token = jwt.encode(token_claims(sub="é" * MAX_SUBJECT_LENGTH), JWT_SECRET, algorithm="HS256")
    assert client.get("/api/audio-clips", headers={"Authorization": f"Bearer {token}"}).status_code == 200

"""Crafted request input (cursors, note ids, nested JSON) is a 4xx in the error shape, never a 500."""

from __future__ import annotations

import base64
import gc
import json

import pytest

from tests.helpers import assert_error

LONE_SURROGATE_BODY = '{"note_id": "\\ud800", "mime_type": "audio/ogg", "bytes": 10}'


def test_a_cursor_of_the_wrong_shape_is_422(client, auth):
    for decoded in (["2020-01-01T00:00:00+00:00", 5], ["2020-01-01T00:00:00+00:00"], {"a": 1}, 7, [[], []]):
        cursor = base64.urlsafe_b64encode(json.dumps(decoded).encode()).decode().rstrip("=")
        response = client.get(f"/api/audio-clips?cursor={cursor}", headers=auth)
        assert assert_error(response, 422, "validation_error")["details"] == {"cursor": ["Invalid cursor."]}


def test_a_lone_surrogate_note_id_is_422_on_create_and_patch(client, auth):
    headers = {**auth, "Content-Type": "application/json"}
    error = assert_error(
        client.post("/api/audio-clips", data=LONE_SURROGATE_BODY, headers=headers), 422, "validation_error"
    )
    assert "note_id" in error["details"]
    clip_id = client.post("/api/audio-clips", json={"mime_type": "audio/ogg", "bytes": 10}, headers=auth).get_json()[
        "clip"
    ]["id"]
    patched = client.patch(f"/api/audio-clips/{clip_id}", data='{"note_id": "a\\udfff"}', headers=headers)
    assert "note_id" in assert_error(patched, 422, "validation_error")["details"]
    listed = client.get("/api/audio-clips?note_id=%ED%A0%80", headers=auth)  # not a surrogate: invalid UTF-8
    assert listed.status_code in (200, 422)


@pytest.mark.parametrize("method", ["post", "patch"])
def test_deeply_nested_json_is_400(client, auth, method):
    clip_id = client.post("/api/audio-clips", json={"mime_type": "audio/ogg", "bytes": 10}, headers=auth).get_json()[
        "clip"
    ]["id"]
    path = "/api/audio-clips" if method == "post" else f"/api/audio-clips/{clip_id}"
    body = "[" * 6000
    # The parse runs near the recursion limit: a garbage collection there would run an
    # earlier test's finalizers without stack to spare, and pytest fails the test on the
    # "exception ignored" it reports. Collecting first and pausing collection keeps this
    # test about the app's answer.
    gc.collect()
    gc.disable()
    try:
        response = getattr(client, method)(path, data=body, headers={**auth, "Content-Type": "application/json"})
    finally:
        gc.enable()
    assert_error(response, 400, "bad_request")

"""Multipart uploads over real HTTP: the API on loopback, moto's server, a long real WAV.

moto accepts part PUTs of any length and wrong signatures, so every part URL is also
parsed (SigV4, content-length signed, part number and upload id in the query) and its
signature recomputed independently (testkit/sigv4.py).

Strict store: with ``STRICT_S3_ENDPOINT_URL`` (and ``STRICT_S3_ACCESS_KEY``,
``STRICT_S3_SECRET_KEY``) set, the multipart app of this module talks to that store
instead of moto, e.g. Ceph radosgw from ../shared/tools/rgw (docs/multipart.md), which
enforces signed lengths, signatures and part sizes; the tests then expect its refusals.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

from advanced_notes.api.context import services_of
from advanced_notes.app import create_app
from testkit.live import Api
from testkit.longaudio import build_long_wav
from testkit.paths import FIXTURES
from testkit.servers import LiveServer
from testkit.sigv4 import signature_matches, signed_params
from tests.helpers import IS_STRICT, PART, REGION, SECRET_KEY, STRICT, build_multipart_app

MIB = 1024 * 1024
SIGNING_SECRET = STRICT["AWS_SECRET_ACCESS_KEY"] if IS_STRICT else SECRET_KEY


@pytest.fixture(scope="module")
def long_wav() -> bytes:
    """About 12.7 MB of real speech: three parts of 5 MiB (the last shorter)."""
    return build_long_wav(FIXTURES / "note.wav", 2 * PART + 2 * MIB)


@pytest.fixture(scope="module")
def mp_app(app, base_config: dict[str, Any]):
    """The app with 5 MiB parts (S3's minimum), sharing the session's database and bucket
    (or on the strict store, with a bucket of its own)."""
    return build_multipart_app(base_config)


@pytest.fixture(scope="module")
def mp_server(mp_app):
    server = LiveServer(mp_app)
    yield server
    server.stop()


@pytest.fixture
def mp(mp_server, make_token) -> Api:
    return Api(mp_server.url, make_token("mp-user"))


def create_multipart(api: Api, data: bytes, **body: Any) -> dict[str, Any]:
    response = api(
        "POST", "/api/audio-clips", json={"mime_type": "audio/wav", "bytes": len(data), "multipart": True, **body}
    )
    assert response.status_code == 201, response.text
    return response.json()


def sign(api: Api, clip_id: str, numbers: list[int], **body: Any) -> list[dict[str, Any]]:
    response = api("POST", f"/api/audio-clips/{clip_id}/multipart/parts", json={"part_numbers": numbers, **body})
    assert response.status_code == 200, response.text
    return response.json()["parts"]


def put_part(part: dict[str, Any], data: bytes) -> requests.Response:
    """PUT one part with exactly the signed headers (requests sets Content-Length from the body)."""
    return requests.put(part["url"], data=data, headers=part["headers"], timeout=60)


def chunk(data: bytes, n: int) -> bytes:
    return data[(n - 1) * PART : n * PART]


def upload_parts(api: Api, clip_id: str, data: bytes, numbers: list[int]) -> None:
    for part in sign(api, clip_id, numbers):
        response = put_part(part, chunk(data, part["part_number"]))
        assert response.status_code == 200, response.text


def complete(api: Api, clip_id: str) -> requests.Response:
    return api("POST", f"/api/audio-clips/{clip_id}/complete")


def played_back(api: Api, clip_id: str) -> bytes:
    playback = api("GET", f"/api/audio-clips/{clip_id}/playback")
    assert playback.status_code == 200, playback.text
    got = requests.get(playback.json()["url"], timeout=60)
    assert got.status_code == 200
    return got.content


def test_three_part_upload_over_http(mp: Api, long_wav: bytes):
    created = create_multipart(mp, long_wav)
    assert created["upload"] is None
    session, clip = created["multipart"], created["clip"]
    assert (session["part_size"], session["part_count"]) == (PART, 3)
    assert session["storage_key"] == clip["storage_key"] and session["upload_id"]

    parts = sign(mp, clip["id"], [3, 1, 2, 2])
    assert [p["part_number"] for p in parts] == [1, 2, 3]
    for part in parts:
        n = part["part_number"]
        body = chunk(long_wav, n)
        assert part["method"] == "PUT"
        assert part["headers"] == {"Content-Length": str(len(body))}
        assert len(body) == (PART if n < 3 else len(long_wav) - 2 * PART)
        params = signed_params(part["url"])
        assert params["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
        assert params["X-Amz-SignedHeaders"].split(";") == ["content-length", "host"]
        assert params["partNumber"] == str(n)
        assert params["uploadId"] == session["upload_id"]
        assert params["X-Amz-Expires"] == "900"
        assert params["X-Amz-Credential"].split("/")[2:] == [REGION, "s3", "aws4_request"]
        assert signature_matches(part["url"], "PUT", part["headers"], SIGNING_SECRET)
        # The signature binds the length: another Content-Length does not verify.
        assert not signature_matches(part["url"], "PUT", {"Content-Length": str(len(body) - 1)}, SIGNING_SECRET)
        assert put_part(part, body).status_code == 200

    done = complete(mp, clip["id"])
    assert done.status_code == 200, done.text
    ready = done.json()["clip"]
    assert ready["status"] == "ready" and ready["stored_bytes"] == len(long_wav)
    # Verification parsed the assembled WAV: ~6.288 s of speech per repeat.
    assert ready["measured_duration_ms"] == pytest.approx(len(long_wav) / 32, rel=0.01)
    assert played_back(mp, clip["id"]) == long_wav
    # complete is idempotent on a ready multipart clip.
    assert complete(mp, clip["id"]).json()["clip"]["status"] == "ready"


def test_resume_lists_parts_then_completes(mp: Api, long_wav: bytes):
    clip_id = create_multipart(mp, long_wav)["clip"]["id"]
    upload_parts(mp, clip_id, long_wav, [1, 3])

    listed = mp("GET", f"/api/audio-clips/{clip_id}/multipart/parts")
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert [(p["part_number"], p["size"]) for p in body["parts"]] == [(1, PART), (3, len(long_wav) - 2 * PART)]
    assert body["missing_parts"] == [2]
    assert all(p["etag"] for p in body["parts"])

    early = complete(mp, clip_id)
    assert early.status_code == 409
    assert early.json()["error"]["code"] == "upload_incomplete"
    assert early.json()["error"]["details"]["missing_parts"] == [2]
    assert mp("GET", f"/api/audio-clips/{clip_id}").json()["clip"]["status"] == "pending"

    upload_parts(mp, clip_id, long_wav, [2])
    done = complete(mp, clip_id)
    assert done.status_code == 200, done.text
    assert played_back(mp, clip_id) == long_wav


def test_wrong_part_size_is_a_409_and_nothing_is_lost(mp: Api, mp_app, long_wav: bytes):
    created = create_multipart(mp, long_wav)
    clip_id, key, upload_id = created["clip"]["id"], created["clip"]["storage_key"], created["multipart"]["upload_id"]
    parts = sign(mp, clip_id, [1, 2, 3])
    for part in parts:
        n = part["part_number"]
        body = chunk(long_wav, n)
        if n == 2:  # moto takes a body shorter than the signed Content-Length; S3 refuses it
            short = requests.put(part["url"], data=body[:-1000], timeout=60)
            if IS_STRICT:
                assert short.status_code == 403 and "SignatureDoesNotMatch" in short.text, short.text
                # What moto would have stored, uploaded around the API (only a test can).
                storage = services_of(mp_app).storage
                storage._client.upload_part(
                    Bucket=storage.bucket, Key=key, UploadId=upload_id, PartNumber=2, Body=body[:-1000]
                )
            else:
                assert short.status_code == 200
        else:
            assert put_part(part, body).status_code == 200
    wrong = complete(mp, clip_id)
    assert wrong.status_code == 409, wrong.text
    details = wrong.json()["error"]["details"]
    assert details["wrong_size_parts"] == [{"part_number": 2, "size": PART - 1000, "expected_size": PART}]
    assert details["missing_parts"] == []
    # Nothing lost: the clip is pending, the good parts are still stored; re-send part 2.
    assert mp("GET", f"/api/audio-clips/{clip_id}").json()["clip"]["status"] == "pending"
    upload_parts(mp, clip_id, long_wav, [2])
    assert complete(mp, clip_id).status_code == 200
    assert played_back(mp, clip_id) == long_wav


def test_parts_of_another_clip_do_not_count_and_owners_are_isolated(mp: Api, mp_server, make_token, long_wav: bytes):
    first = create_multipart(mp, long_wav)["clip"]["id"]
    second = create_multipart(mp, long_wav)["clip"]["id"]
    upload_parts(mp, second, long_wav, [1, 2, 3])
    # The URLs of `second` bind its key and upload id: nothing reached `first`.
    missing = complete(mp, first)
    assert missing.status_code == 409
    assert missing.json()["error"]["details"]["missing_parts"] == [1, 2, 3]

    mallory = Api(mp_server.url, make_token("mallory"))
    for method, path, body in [
        ("POST", f"/api/audio-clips/{second}/multipart/parts", {"part_numbers": [1]}),
        ("GET", f"/api/audio-clips/{second}/multipart/parts", None),
        ("DELETE", f"/api/audio-clips/{second}/multipart", None),
        ("POST", f"/api/audio-clips/{second}/complete", None),
    ]:
        answer = mallory(method, path, json=body)
        assert answer.status_code == 404, (method, path, answer.text)
        assert answer.json()["error"]["code"] == "not_found"
    assert complete(mp, second).status_code == 200


def test_complete_of_an_aborted_upload(mp: Api, mp_app, long_wav: bytes):
    created = create_multipart(mp, long_wav)
    clip_id, session = created["clip"]["id"], created["multipart"]
    upload_parts(mp, clip_id, long_wav, [1])
    aborted = mp("DELETE", f"/api/audio-clips/{clip_id}/multipart")
    assert aborted.status_code == 200, aborted.text
    assert aborted.json() == {"clip_id": clip_id, "aborted": True}
    storage = services_of(mp_app).storage
    assert storage.list_parts(session["storage_key"], session["upload_id"]) is None  # parts freed

    again = complete(mp, clip_id)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "upload_missing"
    assert "aborted" in again.json()["error"]["message"]
    for method, path, body in [
        ("POST", f"/api/audio-clips/{clip_id}/multipart/parts", {"part_numbers": [2]}),
        ("GET", f"/api/audio-clips/{clip_id}/multipart/parts", None),
    ]:
        answer = mp(method, path, json=body)
        assert answer.status_code == 409 and answer.json()["error"]["code"] == "conflict"
    assert mp("DELETE", f"/api/audio-clips/{clip_id}/multipart").status_code == 200  # idempotent
    assert mp("GET", f"/api/audio-clips/{clip_id}").json()["clip"]["status"] == "pending"


def test_deleting_a_pending_multipart_clip_aborts_its_upload(mp: Api, mp_app, long_wav: bytes):
    created = create_multipart(mp, long_wav)
    session = created["multipart"]
    upload_parts(mp, created["clip"]["id"], long_wav, [1, 2])
    storage = services_of(mp_app).storage
    assert len(storage.list_parts(session["storage_key"], session["upload_id"]) or []) == 2
    assert mp("DELETE", f"/api/audio-clips/{created['clip']['id']}").status_code == 204
    assert storage.list_parts(session["storage_key"], session["upload_id"]) is None


def test_bad_requests_answer_in_the_error_shape(mp: Api, long_wav: bytes):
    size = len(long_wav)
    checks = [
        ({"multipart": True, "checksum_sha256": "kt/GERNzoX95eDych+lYgqn2YnwPn/Us+4BB90KqIL4="}, "checksum_sha256"),
        ({"multipart": "yes"}, "multipart"),
        ({"multipart": 0}, "multipart"),
        ({"multipart": 1}, "multipart"),
        ({"multipart": True, "expires_in": 604_801}, "expires_in"),
        ({"multipart": True, "expires_in": 86_401}, "expires_in"),  # over S3_PRESIGN_MAX_EXPIRES_SECONDS
    ]
    for extra, field in checks:
        answer = mp("POST", "/api/audio-clips", json={"mime_type": "audio/wav", "bytes": size, **extra})
        assert answer.status_code == 422, (extra, answer.text)
        assert field in answer.json()["error"]["details"], answer.text
    clip_id = create_multipart(mp, long_wav)["clip"]["id"]
    base = f"/api/audio-clips/{clip_id}/multipart/parts"
    for body in [{"part_numbers": [0]}, {"part_numbers": [4]}, {"part_numbers": []}, {"part_numbers": ["1"]}, {}]:
        answer = mp("POST", base, json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.json()["error"]["code"] == "validation_error"
    assert mp("POST", base, json={"part_numbers": [1], "expires_in": 86_401}).status_code == 422
    assert signed_params(sign(mp, clip_id, [1], expires_in=3600)[0]["url"])["X-Amz-Expires"] == "3600"
    # A single PUT without write-once (moto's "custom" default) lives at most S3_PRESIGN_PUT_EXPIRES_SECONDS.
    single = mp("POST", "/api/audio-clips", json={"mime_type": "audio/wav", "bytes": 1000, "expires_in": 600})
    assert single.status_code == 201 and single.json()["multipart"] is None
    assert signed_params(single.json()["upload"]["url"])["X-Amz-Expires"] == "600"
    longer = mp("POST", "/api/audio-clips", json={"mime_type": "audio/wav", "bytes": 1000, "expires_in": 7200})
    assert longer.status_code == 422 and "expires_in" in longer.json()["error"]["details"]
    refresh = mp("POST", f"/api/audio-clips/{clip_id}/upload-url")
    assert refresh.status_code == 409 and refresh.json()["error"]["code"] == "conflict"
    unknown = mp("POST", f"/api/audio-clips/{uuid.uuid4()}/multipart/parts", json={"part_numbers": [1]})
    assert unknown.status_code == 404


def test_idempotent_create_returns_the_same_upload(mp: Api, long_wav: bytes):
    headers = {"Idempotency-Key": f"mp-{uuid.uuid4()}"}
    body = {"mime_type": "audio/wav", "bytes": len(long_wav), "multipart": True}
    first = mp("POST", "/api/audio-clips", json=body, headers=headers)
    again = mp("POST", "/api/audio-clips", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["clip"]["id"] == first.json()["clip"]["id"]
    assert again.json()["multipart"]["upload_id"] == first.json()["multipart"]["upload_id"]
    single = mp("POST", "/api/audio-clips", json={**body, "multipart": False}, headers=headers)
    assert single.status_code == 409
    assert "multipart" in single.json()["error"]["details"]["idempotency_key"][0]


def test_threshold_and_quota_count_in_flight_parts(app, base_config: dict[str, Any], make_token, long_wav: bytes):
    """Above MULTIPART_THRESHOLD_BYTES the server chooses multipart; pending multipart bytes use the quota."""
    limited = create_app(
        {**base_config, "MULTIPART_THRESHOLD_BYTES": str(8 * MIB), "OWNER_QUOTA_BYTES": str(2 * len(long_wav) - 1)}
    )
    client = limited.test_client()
    headers = {"Authorization": f"Bearer {make_token('quota-mp')}"}
    created = client.post("/api/audio-clips", json={"mime_type": "audio/wav", "bytes": len(long_wav)}, headers=headers)
    assert created.status_code == 201, created.json
    assert created.json["upload"] is None and created.json["multipart"]["part_count"] == 2  # 8 MiB parts
    small = client.post("/api/audio-clips", json={"mime_type": "audio/wav", "bytes": 1000}, headers=headers)
    assert small.json["multipart"] is None and small.json["upload"]["method"] == "PUT"
    services = services_of(limited)

    def in_flight() -> set[str]:
        return {
            u.upload_id for page in services.storage.list_multipart_uploads(services.settings.key_prefix) for u in page
        }

    before = in_flight()
    assert created.json["multipart"]["upload_id"] in before
    over = client.post("/api/audio-clips", json={"mime_type": "audio/wav", "bytes": len(long_wav)}, headers=headers)
    assert over.status_code == 429, over.json
    assert over.json["error"]["details"]["current"] == len(long_wav) + 1000
    assert in_flight() == before  # the refused create's upload was aborted at once


def test_openapi_documents_the_multipart_endpoints(client):
    spec = client.get("/api/openapi.json").json
    sign_op = spec["paths"]["/api/audio-clips/{clip_id}/multipart/parts"]["post"]
    assert "Content-Length" in sign_op["description"]
    assert sign_op["responses"]["200"]["content"]["application/json"]["example"]["parts"][0]["part_number"] == 1
    list_op = spec["paths"]["/api/audio-clips/{clip_id}/multipart/parts"]["get"]
    assert list_op["responses"]["200"]["content"]["application/json"]["example"]["missing_parts"] == [2]
    assert "delete" in spec["paths"]["/api/audio-clips/{clip_id}/multipart"]
    assert "multipart" in spec["components"]["schemas"]["CreateClip"]["properties"]


# -- abort racing complete: the answer says what happened -------------------------------


def small_multipart(api: Api) -> tuple[str, bytes]:
    """A one-part multipart clip of a real WAV, its part uploaded; returns (clip id, bytes)."""
    data = (FIXTURES / "note.wav").read_bytes()
    clip_id = create_multipart(api, data)["clip"]["id"]
    upload_parts(api, clip_id, data, [1])
    return clip_id, data


def abort(api: Api, clip_id: str) -> requests.Response:
    return api("DELETE", f"/api/audio-clips/{clip_id}/multipart")


def test_abort_after_complete_assembled_answers_409_not_aborted(mp: Api, mp_app, monkeypatch):
    """complete assembles the parts, then an abort runs whole, then complete verifies: the
    abort must not answer aborted (it used to, and the clip ended ready)."""
    storage = services_of(mp_app).storage
    clip_id, _ = small_multipart(mp)
    real_complete = storage.complete_multipart_upload
    answers: list[requests.Response] = []

    def complete_then_abort(*args: Any, **kw: Any) -> bool:
        assembled = real_complete(*args, **kw)
        answers.append(abort(mp, clip_id))  # another request, on the live server, in between
        return assembled

    monkeypatch.setattr(storage, "complete_multipart_upload", complete_then_abort)
    completed = complete(mp, clip_id)
    assert completed.status_code == 200, completed.text
    (aborted,) = answers
    assert aborted.status_code == 409, aborted.text
    error = aborted.json()["error"]
    assert error["code"] == "conflict" and error["details"] == {"status": "pending", "assembled": True}
    assert mp("GET", f"/api/audio-clips/{clip_id}").json()["clip"]["status"] == "ready"


def test_abort_after_complete_finished_answers_409_ready(mp: Api, mp_app, monkeypatch):
    """The abort reads the clip pending, complete runs whole, then the abort reaches the store."""
    storage = services_of(mp_app).storage
    clip_id, _ = small_multipart(mp)
    real_abort = storage.abort_multipart_upload
    completions: list[requests.Response] = []

    def complete_first(*args: Any, **kw: Any) -> bool:
        completions.append(complete(mp, clip_id))
        return real_abort(*args, **kw)

    monkeypatch.setattr(storage, "abort_multipart_upload", complete_first)
    aborted = abort(mp, clip_id)
    assert completions[0].status_code == 200, completions[0].text
    assert aborted.status_code == 409, aborted.text
    assert aborted.json()["error"]["details"] == {"status": "ready", "assembled": True}


def test_abort_before_complete_assembles_wins(mp: Api, mp_app, monkeypatch):
    """complete has read the clip; the abort runs whole before complete lists the parts."""
    storage = services_of(mp_app).storage
    clip_id, _ = small_multipart(mp)
    real_list = storage.list_parts
    answers: list[requests.Response] = []

    def abort_first(*args: Any, **kw: Any) -> Any:
        if not answers:
            answers.append(abort(mp, clip_id))
        return real_list(*args, **kw)

    monkeypatch.setattr(storage, "list_parts", abort_first)
    completed = complete(mp, clip_id)
    assert answers[0].status_code == 200 and answers[0].json() == {"clip_id": clip_id, "aborted": True}
    assert completed.status_code == 409 and completed.json()["error"]["code"] == "upload_missing"
    assert mp("GET", f"/api/audio-clips/{clip_id}").json()["clip"]["status"] == "pending"


def test_abort_racing_complete_never_misreports(mp: Api, mp_app):
    """30 real races on threads: whoever wins, the two answers and the clip agree."""
    import random
    import threading
    import time

    storage = services_of(mp_app).storage
    outcomes: dict[str, int] = {}
    for _ in range(30):
        clip_id, _ = small_multipart(mp)
        key = mp("GET", f"/api/audio-clips/{clip_id}").json()["clip"]["storage_key"]
        answers: dict[str, requests.Response] = {}
        start = threading.Barrier(2)

        def run(
            name: str, call: Any, delay: float, clip: str = clip_id, got: dict = answers, gate: Any = start
        ) -> None:
            gate.wait()
            time.sleep(delay)
            got[name] = call(mp, clip)

        # complete takes longer than abort: the abort starts up to 60 ms later, so both win some.
        racers = (("abort", abort, random.uniform(0, 0.06)), ("complete", complete, 0.0))
        threads = [threading.Thread(target=run, args=r) for r in racers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        status = mp("GET", f"/api/audio-clips/{clip_id}").json()["clip"]["status"]
        a, c = answers["abort"], answers["complete"]
        if a.status_code == 200:
            assert a.json()["aborted"] is True
            assert status == "pending" and storage.head(key) is None, (a.text, c.text, status)
            if c.status_code == 503:
                # moto's own race (no lock between its abort and complete: a KeyError, a 500 from
                # moto) where S3 answers NoSuchUpload; nothing changed, and the retry tells.
                c = complete(mp, clip_id)
            assert c.status_code == 409 and c.json()["error"]["code"] == "upload_missing", c.text
            outcomes["abort won"] = outcomes.get("abort won", 0) + 1
            assert mp("DELETE", f"/api/audio-clips/{clip_id}").status_code == 204  # the pending quota
        else:
            assert a.status_code == 409, a.text
            assert a.json()["error"]["details"]["status"] in ("pending", "ready"), a.text
            assert c.status_code == 200 and status == "ready", (a.text, c.text, status)
            outcomes["complete won"] = outcomes.get("complete won", 0) + 1
    print("abort/complete races:", outcomes)
    assert sum(outcomes.values()) == 30, outcomes

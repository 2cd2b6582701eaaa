"""API behaviour through the Flask test client, with moto's server as the store."""

from __future__ import annotations

import re
import uuid

import pytest

from advanced_notes.api.context import services_of
from testkit.live import put_upload
from tests.helpers import BUCKET, assert_error, create, upload_ready

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


# -- create -------------------------------------------------------------------------


def test_create_returns_pending_clip_and_signed_upload(client, auth):
    body = create(client, auth, note_id="note-1", mime_type="Audio/X-M4A", bytes=123456, duration_ms=42000)
    clip, upload = body["clip"], body["upload"]
    uuid.UUID(clip["id"])
    assert clip["status"] == "pending" and clip["note_id"] == "note-1"
    assert clip["mime_type"] == "audio/x-m4a" and clip["bytes"] == 123456 and clip["duration_ms"] == 42000
    assert clip["storage_key"] == f"test/audio-clips/{clip['id']}.m4a" == upload["storage_key"]
    assert ISO_Z.match(clip["created_at"]) and ISO_Z.match(clip["updated_at"]) and clip["completed_at"] is None
    assert upload["method"] == "PUT" and ISO_Z.match(upload["expires_at"])
    assert upload["headers"] == {"Content-Type": "audio/x-m4a", "Content-Length": "123456"}
    assert f"/{BUCKET}/{clip['storage_key']}?" in upload["url"]
    assert "owner_id" not in clip


def test_create_with_checksum_signs_it(client, auth):
    checksum = "u4kJ78aX//hbjMpcy/q+JelE8WdxZdF4I7pWxUC3Nbg="
    upload = create(client, auth, checksum_sha256=checksum)["upload"]
    assert upload["headers"]["x-amz-checksum-sha256"] == checksum
    assert "x-amz-checksum-sha256" in upload["url"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"bytes": 10}, "mime_type"),
        ({"mime_type": "audio/mp4"}, "bytes"),
        ({"mime_type": "text/html", "bytes": 10}, "mime_type"),
        ({"mime_type": "video/mp4", "bytes": 10}, "mime_type"),
        ({"mime_type": "audio/mp4", "bytes": "12"}, "bytes"),
        ({"mime_type": "audio/mp4", "bytes": 12.5}, "bytes"),
        ({"mime_type": "audio/mp4", "bytes": True}, "bytes"),
        ({"mime_type": "audio/mp4", "bytes": 0}, "bytes"),
        ({"mime_type": "audio/mp4", "bytes": 104857601}, "bytes"),
        ({"mime_type": "audio/mp4", "bytes": 10, "duration_ms": -1}, "duration_ms"),
        ({"mime_type": "audio/mp4", "bytes": 10, "duration_ms": 10800001}, "duration_ms"),
        ({"mime_type": "audio/mp4", "bytes": 10, "duration_ms": "5"}, "duration_ms"),
        ({"mime_type": "audio/mp4", "bytes": 10, "note_id": ""}, "note_id"),
        ({"mime_type": "audio/mp4", "bytes": 10, "note_id": "n" * 256}, "note_id"),
        ({"mime_type": "audio/mp4", "bytes": 10, "note_id": 5}, "note_id"),
        ({"mime_type": "audio/mp4", "bytes": 10, "note_id": "a\x00b"}, "note_id"),
        ({"mime_type": "audio/mp4", "bytes": 10, "checksum_sha256": "not-base64!"}, "checksum_sha256"),
        ({"mime_type": "audio/mp4", "bytes": 10, "checksum_sha256": "YWJj"}, "checksum_sha256"),
        ({"mime_type": "audio/mp4", "bytes": 10, "owner_id": "mallory"}, "owner_id"),
        ({"mime_type": "audio/mp4", "bytes": 10, "storage_key": "prod/x"}, "storage_key"),
        ({"mime_type": "audio/mp4", "bytes": 10, "status": "ready"}, "status"),
    ],
)
def test_create_validation(client, auth, body, field):
    error = assert_error(client.post("/api/audio-clips", json=body, headers=auth), 422, "validation_error")
    assert field in error["details"], error


def test_max_upload_bytes_message_names_the_range(client, auth):
    error = assert_error(
        client.post("/api/audio-clips", json={"mime_type": "audio/mp4", "bytes": 0}, headers=auth),
        422,
        "validation_error",
    )
    assert error["details"]["bytes"] == ["Must be between 1 and 104857600."]


def test_null_note_id_is_allowed(client, auth):
    assert create(client, auth, note_id=None)["clip"]["note_id"] is None


@pytest.mark.parametrize(
    "data, content_type, status, code",
    [
        (b"{not json", "application/json", 400, "bad_request"),
        (b"[1, 2]", "application/json", 422, "validation_error"),
        (b"\xff\xfe\x00garbage", "application/json", 400, "bad_request"),
    ],
)
def test_malformed_bodies(client, auth, data, content_type, status, code):
    assert_error(client.post("/api/audio-clips", data=data, content_type=content_type, headers=auth), status, code)


def test_huge_garbage_body_is_a_clean_4xx(client, auth):
    garbage = b"\x00\xff" * (5 * 1024 * 1024)
    response = client.post("/api/audio-clips", data=garbage, content_type="application/json", headers=auth)
    assert_error(response, 413, "payload_too_large")


def test_nothing_stored_on_bad_input(client, auth):
    client.post("/api/audio-clips", json={"mime_type": "audio/mp4", "bytes": "1"}, headers=auth)
    assert client.get("/api/audio-clips", headers=auth).get_json()["clips"] == []


# -- errors everywhere ----------------------------------------------------------------


def test_unknown_route_and_method_have_the_error_shape(client, auth):
    assert_error(client.get("/nope"), 404, "not_found")
    assert_error(client.get(f"/api/audio-clips/{uuid.uuid4()}", headers=auth), 404, "not_found")
    assert_error(client.get("/api/audio-clips/not-a-uuid", headers=auth), 404, "not_found")
    response = client.delete("/healthz")
    assert_error(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]


def test_unexpected_exception_is_a_json_500(base_config):
    from advanced_notes.app import create_app

    app = create_app(base_config)

    @app.route("/boom")
    def boom():
        raise RuntimeError("secret internals")

    response = app.test_client().get("/boom")
    error = assert_error(response, 500, "internal_error")
    assert "secret" not in response.get_data(as_text=True) and "details" not in error


# -- complete ---------------------------------------------------------------------------


def test_complete_before_put_is_409_and_stays_pending(client, auth):
    clip = create(client, auth)["clip"]
    error = assert_error(client.post(f"/api/audio-clips/{clip['id']}/complete", headers=auth), 409, "upload_missing")
    assert error["details"]["storage_key"] == clip["storage_key"]
    assert client.get(f"/api/audio-clips/{clip['id']}", headers=auth).get_json()["clip"]["status"] == "pending"


def test_complete_after_put_is_ready_and_idempotent(client, auth, audio):
    f = audio["note.m4a"]
    clip = upload_ready(client, auth, f.data, mime_type="audio/mp4")
    assert clip["status"] == "ready" and clip["stored_bytes"] == f.size and clip["etag"]
    assert ISO_Z.match(clip["completed_at"])
    again = client.post(f"/api/audio-clips/{clip['id']}/complete", headers=auth)
    assert again.status_code == 200 and again.get_json()["clip"] == clip


def test_size_mismatch_rejects_and_deletes_the_object(app, client, auth):
    created = create(client, auth, bytes=100)
    # A presigned PUT cannot enforce the size on emulators: send other headers to try.
    response = put_upload({**created["upload"], "headers": {"Content-Type": "audio/mp4"}}, b"x" * 50)
    assert response.status_code == 200
    clip_id = created["clip"]["id"]
    error = assert_error(client.post(f"/api/audio-clips/{clip_id}/complete", headers=auth), 422, "upload_rejected")
    assert error["details"] == {"reason": "size_mismatch", "expected_bytes": 100, "stored_bytes": 50}
    clip = client.get(f"/api/audio-clips/{clip_id}", headers=auth).get_json()["clip"]
    assert clip["status"] == "rejected" and clip["stored_bytes"] == 50
    assert services_of(app).storage.head(clip["storage_key"]) is None
    assert_error(client.post(f"/api/audio-clips/{clip_id}/complete", headers=auth), 409, "conflict")
    assert_error(client.get(f"/api/audio-clips/{clip_id}/playback", headers=auth), 409, "clip_not_ready")


def test_type_mismatch_rejects(client, auth):
    created = create(client, auth, bytes=4)
    put_upload({**created["upload"], "headers": {"Content-Type": "text/html"}}, b"<h1>")
    error = assert_error(
        client.post(f"/api/audio-clips/{created['clip']['id']}/complete", headers=auth), 422, "upload_rejected"
    )
    assert error["details"]["reason"] == "type_mismatch" and error["details"]["stored_type"] == "text/html"


# -- playback, note audio, get, list -----------------------------------------------------


def test_playback_requires_ready(client, auth):
    clip = create(client, auth)["clip"]
    error = assert_error(client.get(f"/api/audio-clips/{clip['id']}/playback", headers=auth), 409, "clip_not_ready")
    assert error["details"] == {"status": "pending"}


def test_playback_url(client, auth, audio):
    clip = upload_ready(client, auth, audio["note.mp3"].data, mime_type="audio/mpeg")
    body = client.get(f"/api/audio-clips/{clip['id']}/playback", headers=auth).get_json()
    assert set(body) == {"url", "expires_at"} and ISO_Z.match(body["expires_at"])
    assert clip["storage_key"] in body["url"] and "X-Amz-Expires=900" in body["url"]


def test_note_audio_is_the_newest_ready_clip(client, auth):
    older = upload_ready(client, auth, note_id="n1")
    newer = upload_ready(client, auth, note_id="n1")
    create(client, auth, note_id="n1")  # pending, newest of all: not the primary clip
    upload_ready(client, auth, note_id="n2")
    body = client.get("/api/notes/n1/audio", headers=auth).get_json()
    assert body["clip"]["id"] == newer["id"] != older["id"]
    assert newer["storage_key"] in body["playback"]["url"]
    assert_error(client.get("/api/notes/none-such/audio", headers=auth), 404, "not_found")


def test_nul_in_a_note_path_is_no_note(client, auth):
    # Found by the schema fuzzer: PostgreSQL text cannot hold NUL, the driver raised.
    assert_error(client.get("/api/notes/a%00b/audio", headers=auth), 404, "not_found")
    assert client.delete("/api/notes/a%00b/audio", headers=auth).get_json() == {"deleted": 0}
    assert_error(client.get(f"/api/notes/{'n' * 256}/audio", headers=auth), 404, "not_found")


def test_note_ids_with_slashes_and_spaces(client, auth):
    clip = upload_ready(client, auth, note_id="folder/note 1")
    assert client.get("/api/notes/folder%2Fnote%201/audio", headers=auth).get_json()["clip"]["id"] == clip["id"]


def test_list_newest_first_with_keyset_pages(client, auth):
    ids = [create(client, auth, note_id="n" if i % 2 else None)["clip"]["id"] for i in range(7)]
    seen, cursor = [], None
    while True:
        query = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = client.get("/api/audio-clips", query_string=query, headers=auth).get_json()
        assert len(body["clips"]) <= 3
        seen += [c["id"] for c in body["clips"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    noted = client.get("/api/audio-clips?note_id=n", headers=auth).get_json()["clips"]
    assert [c["id"] for c in noted] == [i for n, i in enumerate(reversed(ids)) if (6 - n) % 2]


def test_list_status_filter(client, auth):
    ready = upload_ready(client, auth)
    create(client, auth)
    body = client.get("/api/audio-clips?status=ready", headers=auth).get_json()
    assert [c["id"] for c in body["clips"]] == [ready["id"]]


@pytest.mark.parametrize(
    "query, field",
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=x", "limit"),
        ("status=done", "status"),
        ("cursor=garbage", "cursor"),
        ("cursor=WyJ4Il0", "cursor"),
        ("colour=red", "colour"),
        ("note_id=a%00b", "note_id"),
    ],
)
def test_list_validation(client, auth, query, field):
    error = assert_error(client.get(f"/api/audio-clips?{query}", headers=auth), 422, "validation_error")
    assert field in error["details"]


# -- owners -------------------------------------------------------------------------------


def test_owner_isolation_on_every_clip_endpoint(client, auth, other_auth):
    ready = upload_ready(client, auth, note_id="shared-note")
    pending = create(client, auth)["clip"]
    for clip_id in (ready["id"], pending["id"]):
        for method, path in [("GET", ""), ("POST", "/complete"), ("GET", "/playback")]:
            theirs = client.open(f"/api/audio-clips/{clip_id}{path}", method=method, headers=other_auth)
            missing = client.open(f"/api/audio-clips/{uuid.uuid4()}{path}", method=method, headers=other_auth)
            assert_error(theirs, 404, "not_found")
            assert theirs.get_json() == missing.get_json()
    assert_error(client.get("/api/notes/shared-note/audio", headers=other_auth), 404, "not_found")
    assert client.get("/api/audio-clips", headers=other_auth).get_json() == {"clips": [], "next_cursor": None}
    assert client.get(f"/api/audio-clips/{pending['id']}", headers=auth).status_code == 200


# -- dependencies down ------------------------------------------------------------------------


def test_store_down_gives_503_and_changes_nothing(base_config, client, auth, app):
    from advanced_notes.app import create_app

    clip = create(client, auth)["clip"]
    dead = create_app({**base_config, "S3_ENDPOINT_URL": "http://127.0.0.1:9", "S3_CONNECT_TIMEOUT_SECONDS": "1"})
    response = dead.test_client().post(f"/api/audio-clips/{clip['id']}/complete", headers=auth)
    assert_error(response, 503, "storage_unavailable")
    assert int(response.headers["Retry-After"]) > 0
    assert client.get(f"/api/audio-clips/{clip['id']}", headers=auth).get_json()["clip"] == clip
    ready = dead.test_client().get("/readyz")
    error = assert_error(ready, 503, "storage_unavailable")
    assert error["details"]["checks"] == {"database": "ok", "storage": "unavailable"}


def test_database_down_gives_503(base_config, auth):
    from advanced_notes.app import create_app

    dead = create_app({**base_config, "DATABASE_URL": "postgresql+psycopg2://postgres@127.0.0.1:9/none"})
    response = dead.test_client().get("/api/audio-clips", headers=auth)
    assert_error(response, 503, "database_unavailable")
    assert response.headers["Retry-After"]
    error = assert_error(dead.test_client().get("/readyz"), 503, "database_unavailable")
    assert error["details"]["checks"]["database"] == "unavailable"


# -- health and docs ------------------------------------------------------------------------------


def test_health_needs_no_auth(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").get_json() == {"status": "ready", "checks": {"database": "ok", "storage": "ok"}}


def test_openapi_document_is_generated_from_the_schemas(client):
    spec = client.get("/api/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    for path in (
        "/api/audio-clips",
        "/api/audio-clips/{clip_id}",
        "/api/audio-clips/{clip_id}/complete",
        "/api/audio-clips/{clip_id}/playback",
        "/api/notes/{note_id}/audio",
        "/healthz",
        "/readyz",
        "/api/audio-clips/{clip_id}/upload-url",
    ):
        assert path in paths, path
    assert {"get", "patch", "delete"} <= set(paths["/api/audio-clips/{clip_id}"])
    assert {"get", "delete"} <= set(paths["/api/notes/{note_id}/audio"])
    create_params = {p["name"] for p in paths["/api/audio-clips"]["post"].get("parameters", [])}
    assert "Idempotency-Key" in create_params
    create_body = paths["/api/audio-clips"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    schema = spec["components"]["schemas"][create_body["$ref"].rsplit("/", 1)[1]]
    assert set(schema["required"]) == {"mime_type", "bytes"}
    assert schema["additionalProperties"] is False
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    docs = client.get("/api/docs")
    assert docs.status_code == 200 and b"swagger" in docs.data.lower()


def test_each_app_builds_its_own_api_blueprints(app, base_config):
    # Two apps in one process share no blueprint object nor view function: each app's
    # blueprints carry its own settings-bound schemas, hooks and documentation.
    from advanced_notes.app import create_app

    other = create_app(base_config)
    names = ("audio-clips", "notes", "multipart-uploads", "multipart-s3", "health")
    for name in names:
        assert app.blueprints[name] is not other.blueprints[name], name
    for endpoint in ("multipart-uploads.sign_parts", "multipart-s3.initiate", "health.readyz", "notes.note_audio"):
        assert app.view_functions[endpoint] is not other.view_functions[endpoint], endpoint
    assert other.test_client().get("/healthz").get_json() == {"status": "ok"}


def _links(spec, path, method, status):
    return spec["paths"][path][method]["responses"][status].get("links", {})


def test_openapi_links_lead_from_each_answer_about_a_clip_to_its_next_steps(client):
    spec = client.get("/api/openapi.json").get_json()
    clip = "/api/audio-clips/{clip_id}"
    expected = {
        ("/api/audio-clips", "post", "201"): {
            "CompleteClip",
            "Playback",
            "SignParts",
            "CompleteS3Multipart",
            "NoteAudio",
        },
        (f"{clip}/complete", "post", "200"): {"GetClip", "Playback", "DeleteClip", "NoteAudio"},
        (clip, "patch", "200"): {"GetClip", "NoteAudio"},
        (f"{clip}/upload-url", "post", "200"): {"CompleteClip"},
        (f"{clip}/multipart/parts", "post", "200"): {"ListParts", "CompleteClip", "AbortMultipart"},
        (f"{clip}/multipart/parts", "get", "200"): {"SignMissingParts", "CompleteClip", "AbortMultipart"},
        (f"{clip}/multipart", "delete", "200"): {"GetClip", "DeleteClip"},
        (f"{clip}/multipart/s3", "post", "200"): {"ListS3Parts", "CompleteS3Multipart"},
        (f"{clip}/multipart/s3", "get", "200"): {"CompleteS3Multipart"},
        (f"{clip}/multipart/s3/complete", "post", "200"): {"GetClip", "Playback"},
    }
    for (path, method, status), names in expected.items():
        assert names <= set(_links(spec, path, method, status)), (path, method)
    # Every link names an operation of the document and only parameters that operation takes.
    followed = 0
    for operations in spec["paths"].values():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            for response in operation.get("responses", {}).values():
                for link in response.get("links", {}).values():
                    _, target_path, target_method = link["operationRef"].rsplit("/", 2)
                    target_item = spec["paths"][target_path.replace("~1", "/").replace("~0", "~")]
                    declared = target_item.get("parameters", []) + target_item[target_method].get("parameters", [])
                    assert set(link["parameters"]) <= {p["name"] for p in declared}, link
                    followed += 1
    assert followed >= 40


def test_one_boto3_client_per_process(client, auth, monkeypatch):
    import boto3.session

    built = []
    original = boto3.session.Session.client
    monkeypatch.setattr(boto3.session.Session, "client", lambda *a, **k: built.append(1) or original(*a, **k))
    for _ in range(5):
        create(client, auth)
    client.get("/readyz")
    assert built == []

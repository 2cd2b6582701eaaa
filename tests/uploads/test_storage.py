"""The storage adapter: what is signed into presigned URLs (DESIGN §6).

moto accepts any signature, so these tests parse the URLs and recompute the SigV4
signature independently (testkit/sigv4.py) instead of trusting that a PUT worked.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC
from urllib.parse import urlsplit

import boto3
import pytest

from advanced_notes.adapters.storage import S3Storage
from advanced_notes.api.context import services_of
from advanced_notes.settings import load_settings
from testkit.sigv4 import signature_matches, signed_params
from tests.helpers import ACCESS_KEY, SECRET_KEY

KEY = "prod/audio-clips/0b5a1c9e-1a44-4b5e-9a57-0d1f0c3b7a10.m4a"
CHECKSUM = base64.b64encode(hashlib.sha256(b"abc").digest()).decode()


def storage(**env: str) -> S3Storage:
    # A secret of its own: away from the local embedded stack dev has no default secret.
    base = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AUTH_JWT_SECRET": "s" * 40}
    return S3Storage(load_settings({**base, **env}))


def test_client_config_follows_the_storage_rules():
    config = storage(S3_ADDRESSING_STYLE="path")._client.meta.config
    assert config.signature_version == "s3v4"
    assert config.request_checksum_calculation == "when_required"
    assert config.response_checksum_validation == "when_required"
    assert config.s3 == {"addressing_style": "path"}
    assert config.connect_timeout == 3 and config.read_timeout == 5
    assert config.retries == {"total_max_attempts": 2, "mode": "standard"}


def test_put_url_is_sigv4_and_binds_type_and_length():
    upload = storage(S3_ENDPOINT_URL="http://127.0.0.1:9000", AWS_REGION="us-east-1").presign_put(
        KEY, "audio/mp4", 54692
    )
    params = signed_params(upload.url)
    assert params["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert params["X-Amz-SignedHeaders"] == "content-length;content-type;host"
    assert params["X-Amz-Expires"] == "900"
    access, _day, region, service, terminator = params["X-Amz-Credential"].split("/")
    assert (access, region, service, terminator) == (ACCESS_KEY, "us-east-1", "s3", "aws4_request")
    assert "x-amz-acl" not in upload.url.lower()
    assert upload.headers == {"Content-Type": "audio/mp4", "Content-Length": "54692"}
    assert upload.method == "PUT"


def test_upload_headers_are_exactly_what_was_signed():
    upload = storage(S3_ENDPOINT_URL="http://127.0.0.1:9000").presign_put(KEY, "audio/mp4", 54692, CHECKSUM)
    assert signed_params(upload.url)["X-Amz-SignedHeaders"] == "content-length;content-type;host;x-amz-checksum-sha256"
    assert upload.headers["x-amz-checksum-sha256"] == CHECKSUM
    assert signature_matches(upload.url, "PUT", upload.headers, SECRET_KEY)
    # The verifier can fail: any other value of a signed header breaks the signature.
    assert not signature_matches(upload.url, "PUT", {**upload.headers, "Content-Type": "text/html"}, SECRET_KEY)
    assert not signature_matches(upload.url, "PUT", {**upload.headers, "Content-Length": "54693"}, SECRET_KEY)
    assert not signature_matches(upload.url, "GET", upload.headers, SECRET_KEY)
    assert not signature_matches(upload.url, "PUT", upload.headers, "wrong-secret")


def test_expiry_comes_from_settings_and_expires_at_is_consistent():
    s = storage(S3_PRESIGN_PUT_EXPIRES_SECONDS="60", S3_PRESIGN_GET_EXPIRES_SECONDS="604800")
    put = s.presign_put(KEY, "audio/mp4", 10)
    get = s.presign_get(KEY, "audio/mp4", "x.m4a")
    assert signed_params(put.url)["X-Amz-Expires"] == "60"
    assert signed_params(get.url)["X-Amz-Expires"] == "604800"
    from datetime import datetime

    signed_at = datetime.strptime(signed_params(put.url)["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert 59 <= (put.expires_at - signed_at).total_seconds() <= 60


@pytest.mark.parametrize("region", ["auto", "nyc3", "eu-central-1"])
def test_credential_scope_uses_the_configured_region(region):
    url = storage(AWS_REGION=region, S3_ENDPOINT_URL="https://example.invalid").presign_put(KEY, "audio/mp4", 1).url
    assert signed_params(url)["X-Amz-Credential"].split("/")[2] == region


def test_public_endpoint_is_the_host_signed_into_urls():
    s = storage(
        S3_ENDPOINT_URL="http://minio.internal:9000",
        S3_PUBLIC_ENDPOINT_URL="https://media.example.com",
        S3_ADDRESSING_STYLE="path",
        S3_BUCKET="clips",
    )
    for presigned in (s.presign_put(KEY, "audio/mp4", 5), s.presign_get(KEY, "audio/mp4", "a.m4a")):
        parts = urlsplit(presigned.url)
        assert parts.netloc == "media.example.com" and parts.path.startswith("/clips/")
        assert signature_matches(presigned.url, presigned.method, presigned.headers, SECRET_KEY)
    assert s._client.meta.endpoint_url == "http://minio.internal:9000"


@pytest.mark.parametrize(
    "style, host, path_prefix",
    [
        ("path", "localhost:9000", "/clips/"),
        ("virtual", "clips.localhost:9000", "/prod/"),
    ],
)
def test_addressing_style(style, host, path_prefix):
    url = (
        storage(S3_ENDPOINT_URL="http://localhost:9000", S3_ADDRESSING_STYLE=style, S3_BUCKET="clips")
        .presign_put(KEY, "audio/mp4", 5)
        .url
    )
    parts = urlsplit(url)
    assert parts.netloc == host and parts.path.startswith(path_prefix)


def test_get_url_forces_type_and_inline_disposition():
    get = storage().presign_get(KEY, "audio/mp4", "clip.m4a")
    params = signed_params(get.url)
    assert params["response-content-type"] == "audio/mp4"
    assert params["response-content-disposition"] == 'inline; filename="clip.m4a"'
    assert params["X-Amz-SignedHeaders"] == "host"
    assert signature_matches(get.url, "GET", {}, SECRET_KEY)


def test_without_s3v4_boto3_would_sign_sigv2():
    # Why DESIGN §6 rule 2 exists: boto3's default presigner still emits SigV2 here.
    plain = boto3.client("s3", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    assert "X-Amz-Algorithm" not in plain.generate_presigned_url("put_object", Params={"Bucket": "b", "Key": "k"})
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in storage().presign_put(KEY, "audio/mp4", 1).url


def test_head_put_delete_against_moto(app):
    s = services_of(app).storage
    key = "test/audio-clips/head-probe.m4a"
    assert s.head(key) is None
    s.put_object(key, b"0123456789", "audio/mp4")
    info = s.head(key)
    assert (info.size, info.content_type) == (10, "audio/mp4") and info.etag
    s.delete(key)
    assert s.head(key) is None


def test_upload_and_download_files_stream_through_disk(app, base_config, tmp_path):
    """upload_file/download_file against moto's server: same bytes, the content type kept,
    and a 48 MiB object never held in memory: the transfers run in a child process (moto
    keeps objects in this one) whose tracemalloc peak stays under the transfer's bound
    (adapters/storage/transfers.py: two 8 MiB parts in flight plus a short queue), half the object's size."""
    import json
    import os
    import subprocess
    import sys

    from advanced_notes.domain.errors import ObjectVanished

    s = services_of(app).storage
    key = "test/audio-clips/transfer-probe/universal.m4a"
    source, target = tmp_path / "big.bin", tmp_path / "back.bin"
    size = 48 * 1024 * 1024
    source.write_bytes(os.urandom(size))
    child = f"""
import json, sys, tracemalloc
from pathlib import Path
from advanced_notes.adapters.storage import S3Storage
from advanced_notes.settings import load_settings
storage = S3Storage(load_settings(json.loads(sys.argv[1])))
tracemalloc.start()
storage.upload_file({key!r}, Path({str(source)!r}), "audio/mp4")
storage.download_file({key!r}, Path({str(target)!r}))
print(tracemalloc.get_traced_memory()[1])
"""
    done = subprocess.run(
        [sys.executable, "-c", child, json.dumps(base_config)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    peak = int(done.stdout.split()[-1])
    assert target.read_bytes() == source.read_bytes()
    assert s.head(key).content_type == "audio/mp4"
    assert peak < size // 2, peak
    s.delete(key)
    with pytest.raises(ObjectVanished):
        s.download_file(key, tmp_path / "gone.bin")


def test_file_transfers_report_an_unreachable_store(base_config, tmp_path):
    from advanced_notes.domain.errors import StorageUnavailable

    dead = S3Storage(
        load_settings(
            {
                **base_config,
                "S3_ENDPOINT_URL": "http://127.0.0.1:9",
                "S3_CONNECT_TIMEOUT_SECONDS": "1",
                "S3_MAX_ATTEMPTS": "1",
            }
        )
    )
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(StorageUnavailable):
        dead.upload_file("k/peaks.json", tmp_path / "f", "application/json")
    with pytest.raises(StorageUnavailable):
        dead.download_file("k/peaks.json", tmp_path / "g")


# -- botocore's data, loaded lighter (adapters/storage/botodata.py) ------------------------


def test_the_packaged_endpoint_table_is_botocores_own_cut_to_our_services():
    from botocore.loaders import Loader

    from advanced_notes.adapters.storage.botodata import CUT_TABLE, SERVICES

    whole = {p["partition"]: p for p in Loader().load_data("endpoints")["partitions"]}
    ours = json.loads(CUT_TABLE.read_text())
    assert ours["partitions"] and all(set(p["services"]) == set(SERVICES) for p in ours["partitions"])
    # Every entry it has is botocore's, as botocore has it (a later botocore may add more).
    for partition in ours["partitions"]:
        theirs = whole[partition["partition"]]
        assert {k: v for k, v in partition.items() if k not in ("regions", "services")} == {
            k: v for k, v in theirs.items() if k not in ("regions", "services")
        }
        assert all(theirs["regions"][r] == v for r, v in partition["regions"].items())
        for name, service in partition["services"].items():
            assert {k: v for k, v in service.items() if k != "endpoints"} == {
                k: v for k, v in theirs["services"][name].items() if k != "endpoints"
            }
            assert all(theirs["services"][name]["endpoints"][r] == e for r, e in service["endpoints"].items())


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1", "ap-southeast-2", "cn-north-1", "us-gov-west-1"])
def test_clients_resolve_as_with_botocores_whole_table(region):
    import botocore.session
    from botocore.config import Config

    from advanced_notes.adapters.storage.connection import new_session

    env = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": region}
    light = new_session(load_settings({**env, "AUTH_JWT_SECRET": "s" * 40}))
    plain = botocore.session.get_session()
    plain.set_credentials(ACCESS_KEY, SECRET_KEY)
    for service in ("s3", "sqs", "sts"):
        ours, theirs = (s.create_client(service, region_name=region) for s in (light, plain))
        assert (ours.meta.endpoint_url, ours.meta.region_name, ours.meta.partition) == (
            theirs.meta.endpoint_url,
            theirs.meta.region_name,
            theirs.meta.partition,
        )
    sigv4 = Config(signature_version="s3v4")
    ours, theirs = (s.create_client("s3", region_name=region, config=sigv4) for s in (light, plain))
    params = {"Bucket": "advanced-notes", "Key": KEY}
    url, their_url = (c.generate_presigned_url("get_object", Params=params) for c in (ours, theirs))
    assert urlsplit(url).netloc == urlsplit(their_url).netloc
    scope, their_scope = (signed_params(u)["X-Amz-Credential"].split("/")[2:] for u in (url, their_url))
    assert scope == their_scope


def test_the_light_loader_gives_the_cut_table_unless_an_operator_has_one(tmp_path):
    from advanced_notes.adapters.storage.botodata import CUT_TABLE, LightLoader

    light = LightLoader()
    assert light.load_data_with_path("endpoints")[1] == str(CUT_TABLE) and light.is_builtin_path(str(CUT_TABLE))
    # An operator's own endpoint table (AWS_DATA_PATH) is loaded as botocore would.
    (tmp_path / "endpoints.json").write_text(json.dumps({"version": 3, "partitions": []}))
    data, path = LightLoader(str(tmp_path)).load_data_with_path("endpoints")
    assert path == str(tmp_path / "endpoints") and data == {"version": 3, "partitions": []}


def test_the_storage_session_uses_the_light_loader():
    from advanced_notes.adapters.storage.botodata import LightLoader

    s = storage(S3_ENDPOINT_URL="http://127.0.0.1:9000")
    assert isinstance(s._session.get_component("data_loader"), LightLoader)


def _empty_documentation(data):
    if isinstance(data, dict):
        return {k: "" if k == "documentation" else _empty_documentation(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_empty_documentation(v) for v in data]
    return data


@pytest.mark.parametrize("kind", ["service-2", "endpoint-rule-set-1"])
def test_service_models_are_botocores_own_with_their_documentation_emptied(kind):
    from botocore.loaders import Loader

    from advanced_notes.adapters.storage.botodata import LightLoader

    ours = LightLoader().load_service_model("s3", kind)
    theirs = Loader().load_service_model("s3", kind)
    assert type(ours) is dict and _empty_documentation(theirs) != theirs  # botocore's has text
    assert ours == _empty_documentation(theirs) and '"documentation": ""' in json.dumps(ours)

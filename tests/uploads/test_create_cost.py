"""Create made cheaper, not laxer: the same signed PUT URL and the same token checks, for less.

- The upload URL is signed by the adapter's own SigV4 query signer over a URL built once per
  bucket, and must be the byte-identical URL botocore's ``generate_presigned_url`` gives at
  the same instant, for every addressing style, optional header and temporary credentials.
- A bearer token verified once is not verified from scratch again, but its ``exp`` is
  checked against the clock on every request, and nothing but the exact same string hits.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import time
from unittest import mock

import botocore.auth
import jwt
import pytest
import requests

from advanced_notes.adapters.storage import S3Storage
from advanced_notes.api.auth import LEEWAY_SECONDS, TokenVerifier
from advanced_notes.api.tokencache import MAX_CACHED_TOKEN_CHARS, VerifiedTokens
from advanced_notes.domain.errors import Unauthorized
from advanced_notes.settings import Settings
from testkit.sigv4 import signature_matches
from tests.helpers import JWT_SECRET

CHECKSUM = "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="
KEY = "pre/audio-clips/0b6f5c4e-6a0e-4e0f-9a55-3c1d2d4b0f7a.m4a"
ODD_KEY = "pre/audio-clips/a b+c~é%.m4a"  # every escaping rule of the key's path label


def _storage(style: str, endpoint: str | None, conditional: bool, **keys: str) -> S3Storage:
    values = {
        "S3_BUCKET": "b-1",
        "AWS_REGION": "eu-west-1",
        "AUTH_JWT_SECRET": JWT_SECRET,
        "S3_ADDRESSING_STYLE": style,
        "S3_CONDITIONAL_WRITES": "on" if conditional else "off",
        **keys,
    }
    if endpoint:
        values["S3_ENDPOINT_URL"] = endpoint
    return S3Storage(Settings.model_validate(values))


def _botocore_url(storage: S3Storage, url: str, key: str, checksum: str | None, conditional: bool) -> str:
    """botocore's own presigned PUT for the same parameters, at the instant ``url`` was signed.

    botocore takes the signing time from ``botocore.auth.get_current_datetime`` and offers
    no parameter for it: patching it is the only way to have it sign at a chosen instant.
    """
    when = dt.datetime.strptime(re.search(r"X-Amz-Date=(\w+)", url).group(1), "%Y%m%dT%H%M%SZ")
    params: dict[str, object] = {"Bucket": "b-1", "Key": key, "ContentType": "audio/mp4", "ContentLength": 54692}
    if checksum:
        params["ChecksumSHA256"] = checksum
    if conditional:
        params["IfNoneMatch"] = "*"
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=when):
        return storage._presigner.generate_presigned_url("put_object", Params=params, ExpiresIn=900)


@pytest.mark.parametrize(
    ("style", "endpoint"),
    [("path", "http://127.0.0.1:9000"), ("virtual", "https://s3.eu-west-1.amazonaws.com"), ("auto", None)],
)
@pytest.mark.parametrize("conditional", [False, True])
@pytest.mark.parametrize("checksum", [None, CHECKSUM])
@pytest.mark.parametrize("key", [KEY, ODD_KEY])
def test_put_url_is_botocores_byte_for_byte(style, endpoint, conditional, checksum, key):
    storage = _storage(style, endpoint, conditional, AWS_ACCESS_KEY_ID="AK", AWS_SECRET_ACCESS_KEY="SK")
    upload = storage.presign_put(key, "audio/mp4", 54692, checksum)
    assert upload.url == _botocore_url(storage, upload.url, key, checksum, conditional)
    assert signature_matches(upload.url, "PUT", upload.headers, "SK")
    assert not signature_matches(upload.url, "PUT", {**upload.headers, "Content-Length": "54693"}, "SK")


def test_put_url_with_a_session_token_is_botocores(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ASIATEMP")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "temp-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "temp-token")
    storage = _storage("path", "http://127.0.0.1:9000", True)
    upload = storage.presign_put(KEY, "audio/mp4", 54692)
    assert "X-Amz-Security-Token=temp-token" in upload.url
    assert upload.url == _botocore_url(storage, upload.url, KEY, None, True)


def test_put_url_costs_no_client_call_per_request():
    storage = _storage("path", "http://127.0.0.1:9000", False, AWS_ACCESS_KEY_ID="AK", AWS_SECRET_ACCESS_KEY="SK")
    storage.presign_put(KEY, "audio/mp4", 1)  # the first builds the bucket's URL
    with (
        mock.patch.object(
            storage._presigner, "generate_presigned_url", wraps=storage._presigner.generate_presigned_url
        ) as presigner,
        mock.patch.object(
            storage._url_builder, "generate_presigned_url", wraps=storage._url_builder.generate_presigned_url
        ) as builder,
    ):
        for i in range(3):
            storage.presign_put(f"pre/audio-clips/{i}.m4a", "audio/mp4", 1)
    assert presigner.call_count == 0
    assert builder.call_count == 0


STRICT_ENDPOINT = os.environ.get("STRICT_S3_ENDPOINT_URL")


@pytest.mark.skipif(not STRICT_ENDPOINT, reason="needs a strict store (STRICT_S3_ENDPOINT_URL)")
def test_strict_store_takes_the_put_url_with_its_headers_and_nothing_else(audio):
    """radosgw checks the signature and every signed header (moto checks neither)."""
    storage = S3Storage(
        Settings.model_validate(
            {
                "S3_ENDPOINT_URL": STRICT_ENDPOINT,
                "AWS_ACCESS_KEY_ID": os.environ.get("STRICT_S3_ACCESS_KEY", ""),
                "AWS_SECRET_ACCESS_KEY": os.environ.get("STRICT_S3_SECRET_KEY", ""),
                "S3_BUCKET": "advanced-notes-strict",
                "S3_ADDRESSING_STYLE": "path",
                "AUTH_JWT_SECRET": JWT_SECRET,
            }
        )
    )
    storage.ensure_bucket()
    f = audio["note.ogg"]
    key = "strict/audio-clips/put-signer.ogg"
    upload = storage.presign_put(key, f.mime_type, len(f.data), conditional=False)
    wrong_type = requests.put(
        upload.url, data=f.data, headers={**upload.headers, "Content-Type": "text/html"}, timeout=30
    )
    assert wrong_type.status_code == 403, wrong_type.text
    put = requests.put(upload.url, data=f.data, headers=upload.headers, timeout=30)
    assert put.status_code == 200, put.text
    assert storage.head(key).size == len(f.data)
    storage.delete(key)


# -- verified tokens ----------------------------------------------------------------------------


def _verifier() -> TokenVerifier:
    return TokenVerifier(Settings.model_validate({"S3_BUCKET": "b", "AUTH_JWT_SECRET": JWT_SECRET}))


def _token(**claims) -> str:
    now = int(time.time())
    return jwt.encode({"sub": "alice", "iat": now, "exp": now + 300, **claims}, JWT_SECRET, algorithm="HS256")


def test_a_repeated_token_is_not_decoded_again():
    verifier = _verifier()
    token = _token()
    with mock.patch.object(verifier, "_decode", wraps=verifier._decode) as decode:
        assert verifier.verify(token)["sub"] == "alice"
        assert verifier.verify(token)["sub"] == "alice"
        assert verifier.verify(token)["sub"] == "alice"
    assert decode.call_count == 1


def test_a_cached_token_still_expires_on_time():
    verifier = _verifier()
    # Valid for at most two more seconds, counting the leeway.
    token = _token(exp=int(time.time()) + 2 - LEEWAY_SECONDS, iat=int(time.time()) - 60)
    assert verifier.verify(token)["sub"] == "alice"
    time.sleep(2.2)
    with pytest.raises(Unauthorized, match="expired"):
        verifier.verify(token)
    assert len(verifier._verified) == 0


def test_only_the_exact_token_hits():
    verifier = _verifier()
    token = _token()
    verifier.verify(token)
    header, payload, signature = token.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    with pytest.raises(Unauthorized):
        verifier.verify(f"{header}.{payload}.{flipped}")
    other_secret = jwt.encode(jwt.decode(token, options={"verify_signature": False}), "x" * 40, algorithm="HS256")
    with pytest.raises(Unauthorized):
        verifier.verify(other_secret)


def test_cache_checks_every_time_claim_and_stays_bounded():
    now = [1_000_000.0]
    cache = VerifiedTokens(leeway_seconds=30, maxsize=3, clock=lambda: now[0])
    cache.put("exp", {"sub": "a", "exp": 1_000_100})
    cache.put("nbf", {"sub": "a", "exp": 1_000_900, "nbf": 1_000_000})
    cache.put("iat", {"sub": "a", "exp": 1_000_900, "iat": 1_000_000})
    assert cache.get("exp") == {"sub": "a", "exp": 1_000_100}
    now[0] = 1_000_130  # exp + leeway: PyJWT's "exp <= now - leeway" refuses it
    assert cache.get("exp") is None
    assert cache.get("nbf") is not None and cache.get("iat") is not None
    now[0] = 999_000  # the clock went back: nbf and iat are in the future again
    assert cache.get("nbf") is None and cache.get("iat") is None
    now[0] = 1_000_000
    for i in range(5):
        cache.put(f"t{i}", {"sub": "a", "exp": 1_000_900})
    assert len(cache) == 3 and cache.get("t0") is None and cache.get("t4") is not None
    cache.put("x" * (MAX_CACHED_TOKEN_CHARS + 1), {"sub": "a", "exp": 1_000_900})
    assert cache.get("x" * (MAX_CACHED_TOKEN_CHARS + 1)) is None


def test_returned_claims_are_copies():
    cache = VerifiedTokens(leeway_seconds=30)
    cache.put("t", {"sub": "a", "exp": time.time() + 60})
    cache.get("t")["sub"] = "mallory"
    assert cache.get("t")["sub"] == "a"

"""Bearer-token auth (DESIGN §5): HS256 secret, RS256/ES256 via a JWKS URL served on loopback."""

from __future__ import annotations

import base64
import datetime as dt
import json
import warnings

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from advanced_notes.app import create_app
from tests.helpers import EC_KEY, JWT_SECRET, RSA_KEY, assert_error, run_cli, token_claims


def hs(secret=JWT_SECRET, **claims):
    return jwt.encode(token_claims(**claims), secret, algorithm="HS256")


def _hs512_with_our_secret():
    # The right secret but an algorithm this deployment does not accept.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyJWT warns that the key is short for SHA-512
        return jwt.encode(token_claims(), JWT_SECRET, algorithm="HS512")


def call(client, token=None, header=None):
    headers = {"Authorization": header if header is not None else f"Bearer {token}"}
    return client.get("/api/audio-clips", headers=headers)


def test_valid_token(client):
    assert call(client, hs()).status_code == 200


@pytest.mark.parametrize(
    "header", [None, "", "Bearer", "Bearer ", "Basic YWxpY2U6cHc=", "Token abc", "Bearer not.a.jwt", "Bearer a.b"]
)
def test_missing_or_malformed_header(client, header):
    response = client.get("/api/audio-clips", headers={} if header is None else {"Authorization": header})
    assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(hs(exp=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)), id="expired"),
        pytest.param(hs(secret="another-secret-" + "y" * 40), id="wrong-signature"),
        pytest.param(hs(exp=None), id="no-exp"),
        pytest.param(hs(sub=None), id="no-sub"),
        pytest.param(hs(sub=""), id="empty-sub"),
        pytest.param(hs(sub="x" * 256), id="long-sub"),
        pytest.param(hs(sub="a\x00b"), id="nul-in-sub"),
        pytest.param(hs(nbf=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)), id="not-yet-valid"),
        pytest.param(jwt.encode(token_claims(), None, algorithm="none"), id="alg-none"),
        pytest.param(jwt.encode(token_claims(), RSA_KEY, algorithm="RS256"), id="rs256-without-jwks"),
        pytest.param(_hs512_with_our_secret(), id="hs512-not-accepted"),
    ],
)
def test_bad_tokens_are_401(client, token):
    assert_error(call(client, token), 401, "unauthorized")


def test_alg_none_with_stripped_signature(client):
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    payload = base64.urlsafe_b64encode(json.dumps({"sub": "alice", "exp": 4102444800}).encode()).rstrip(b"=").decode()
    assert_error(call(client, f"{header}.{payload}."), 401, "unauthorized")


def test_issuer_and_audience_are_checked_when_set(base_config):
    app = create_app({**base_config, "AUTH_JWT_ISSUER": "https://idp.example", "AUTH_JWT_AUDIENCE": "notes-api"})
    c = app.test_client()
    assert call(c, hs(iss="https://idp.example", aud="notes-api")).status_code == 200
    assert_error(call(c, hs(iss="https://evil.example", aud="notes-api")), 401, "unauthorized")
    assert_error(call(c, hs(iss="https://idp.example", aud="other")), 401, "unauthorized")
    assert_error(call(c, hs()), 401, "unauthorized")


def test_audience_is_not_required_when_unset(client):
    assert call(client, hs(aud="anything")).status_code == 200


def test_jwks_rs256_and_es256(base_config, jwks_url):
    # JWKS needs an audience: the IdP's keys sign other apps' tokens too.
    app = create_app(
        {**base_config, "AUTH_JWKS_URL": jwks_url, "AUTH_JWT_SECRET": None, "AUTH_JWT_AUDIENCE": "notes-api"}
    )
    c = app.test_client()
    rs = jwt.encode(token_claims(sub="rsa-user", aud="notes-api"), RSA_KEY, algorithm="RS256", headers={"kid": "rsa-1"})
    es = jwt.encode(token_claims(sub="ec-user", aud="notes-api"), EC_KEY, algorithm="ES256", headers={"kid": "ec-1"})
    assert call(c, rs).status_code == 200 and call(c, es).status_code == 200
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert_error(
        call(c, jwt.encode(token_claims(), other, algorithm="RS256", headers={"kid": "rsa-1"})), 401, "unauthorized"
    )
    assert_error(
        call(c, jwt.encode(token_claims(), RSA_KEY, algorithm="RS256", headers={"kid": "unknown"})), 401, "unauthorized"
    )
    # HS/RS confusion: HS256 signed with the RSA *public* key as the HMAC secret.
    public_pem = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    forged = _forge_hs256(token_claims(), public_pem, kid="rsa-1")
    assert_error(call(c, forged), 401, "unauthorized")


def _forge_hs256(claims, secret: bytes, kid: str) -> str:
    # PyJWT refuses to HMAC-sign with a PEM key, so build the forgery by hand.
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    body = {k: int(v.timestamp()) if isinstance(v, dt.datetime) else v for k, v in claims.items()}
    signing_input = (
        f"{b64(json.dumps({'alg': 'HS256', 'typ': 'JWT', 'kid': kid}).encode())}.{b64(json.dumps(body).encode())}"
    )
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def test_owner_is_the_sub_never_the_body(client, make_token):
    headers = {"Authorization": f"Bearer {make_token('bob')}"}
    created = client.post("/api/audio-clips", json={"mime_type": "audio/mp4", "bytes": 3}, headers=headers)
    clip_id = created.get_json()["clip"]["id"]
    assert client.get(f"/api/audio-clips/{clip_id}", headers=headers).status_code == 200
    assert (
        client.get(f"/api/audio-clips/{clip_id}", headers={"Authorization": f"Bearer {make_token('eve')}"}).status_code
        == 404
    )


def test_token_cli_mints_a_working_token(app, client):
    result = run_cli(app, ["token", "--sub", "cli-user", "--expires-in", "60"])
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    assert jwt.decode(token, JWT_SECRET, algorithms=["HS256"])["sub"] == "cli-user"
    assert call(client, token).status_code == 200

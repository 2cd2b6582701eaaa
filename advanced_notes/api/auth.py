"""Bearer-token authentication with PyJWT (DESIGN §5).

HS256 tokens are checked with ``AUTH_JWT_SECRET``; RS256/ES256 tokens with the key
named by ``kid`` in ``AUTH_JWKS_URL``. The verifier picks the key *type* from the
configuration, never from the token, so ``alg: none`` and HS/RS confusion (an RSA
public key used as an HMAC secret) are refused.
"""

from __future__ import annotations

import datetime as dt
from contextlib import suppress
from typing import Any

from flask import g, request

from advanced_notes.api.context import current_services
from advanced_notes.api.tokencache import VerifiedTokens
from advanced_notes.api.tokenlib import pyjwt
from advanced_notes.domain.errors import Unauthorized
from advanced_notes.domain.redact import redact_url
from advanced_notes.settings import Settings

HMAC_ALGORITHMS = ("HS256",)
ASYMMETRIC_ALGORITHMS = ("RS256", "ES256")
#: The JWK key type (RFC 7518 §6.1 ``kty``) each asymmetric algorithm needs. A token whose
#: ``alg`` names another key type than its ``kid``'s key is refused before PyJWT sees it:
#: PyJWT raises TypeError, not one of its own errors, for ``{"alg": "ES256", "kid": <an RSA kid>}``.
KEY_TYPE_BY_ALGORITHM = {"RS256": "RSA", "ES256": "EC"}
#: Clock skew tolerated on ``exp``/``nbf``/``iat``, seconds.
LEEWAY_SECONDS = 30
MAX_SUBJECT_LENGTH = 255


def is_valid_subject(sub: Any) -> bool:
    """True when ``sub`` can be an owner id: a non-blank string of at most
    :data:`MAX_SUBJECT_LENGTH` characters (the ``owner_id`` column's length), encodable as
    UTF-8 and without NUL.

    A signed token is still client data: JSON's ``"\\ud800"`` escape decodes to a lone
    surrogate, which no database driver can encode, and PostgreSQL text refuses NUL.
    """
    if not isinstance(sub, str) or not sub.strip() or len(sub) > MAX_SUBJECT_LENGTH or "\x00" in sub:
        return False
    try:
        sub.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class TokenVerifier:
    """Verifies bearer tokens and returns their claims.

    Args:
        settings: ``auth_jwt_secret`` and/or ``auth_jwks_url``, optional issuer/audience.
    """

    def __init__(self, settings: Settings):
        self.secret = settings.auth_jwt_secret
        self.issuer = settings.auth_jwt_issuer
        self.audience = settings.auth_jwt_audience
        self.max_lifetime_seconds = settings.auth_max_token_lifetime_seconds
        # PyJWT brings cryptography only when RS256/ES256 keys are configured (api/tokenlib.py).
        self._jwt = pyjwt(asymmetric=bool(settings.auth_jwks_url))
        # PyJWKClient caches the key set and refetches on an unknown kid (key rotation).
        jwks_url = settings.auth_jwks_url
        self.jwks = self._jwt.PyJWKClient(jwks_url, cache_keys=True, timeout=5) if jwks_url else None
        # Tokens verified with the secret, whose claims only need their times checked again.
        self._verified = VerifiedTokens(LEEWAY_SECONDS)

    def verify(self, token: str) -> dict[str, Any]:
        """Verify ``token`` and return its claims.

        Requires ``exp`` and ``sub``; checks ``iss``/``aud`` when configured; refuses an
        ``exp`` further than ``AUTH_MAX_TOKEN_LIFETIME_SECONDS`` (+ leeway) from now.
        Raises:
            Unauthorized: malformed, unsigned, wrongly signed, expired, or an algorithm
                this deployment has no key for.
        """
        if self.secret:
            # A token verified with the secret before: its times are checked again (tokencache.py).
            cached = self._verified.get(token)
            if cached is not None:
                return self._checked(cached)
        if self.jwks is None and self.secret:
            # HS256 only: PyJWT refuses any other alg itself, so the header need not be
            # parsed first (a second base64 + JSON decode per request). A refusal takes the
            # full path below, which names what was wrong.
            with suppress(Exception):
                return self._remembered(token, self._checked(self._decode(token, self.secret, "HS256")))
        try:
            header = self._jwt.get_unverified_header(token)
        except Exception as exc:  # PyJWTError, or anything else a hostile header provokes
            raise Unauthorized("The bearer token is malformed.") from exc
        alg = header.get("alg")
        if alg in HMAC_ALGORITHMS and self.secret:
            key: Any = self.secret
        elif alg in ASYMMETRIC_ALGORITHMS and self.jwks:
            key = self._jwks_key(token, alg)
        else:
            raise Unauthorized(f"Tokens signed with {str(alg)[:20]!r} are not accepted.")
        # Every failure past this point is the token's: PyJWT raises TypeError/ValueError
        # (not PyJWTError) for some key/algorithm mismatches, and a 500 there skipped the
        # rate limiter too. Only the expiry gets its own message.
        try:
            claims = self._decode(token, key, alg)
        except self._jwt.ExpiredSignatureError as exc:
            raise Unauthorized("The bearer token has expired.") from exc
        except Exception as exc:
            raise Unauthorized("The bearer token is invalid.") from exc
        checked = self._checked(claims)
        return self._remembered(token, checked) if key is self.secret else checked

    def _remembered(self, token: str, claims: dict[str, Any]) -> dict[str, Any]:
        """Keep the claims of ``token``, just verified with the HMAC secret; returns them."""
        self._verified.put(token, claims)
        return claims

    def _decode(self, token: str, key: Any, alg: str) -> dict[str, Any]:
        """PyJWT's verification of signature, ``exp``/``nbf``/``iat``, ``iss``/``aud`` (raises its errors)."""
        claims: dict[str, Any] = self._jwt.decode(
            token,
            key,
            algorithms=[alg],
            leeway=LEEWAY_SECONDS,
            issuer=self.issuer,
            audience=self.audience,
            options={"require": ["exp", "sub"], "verify_aud": self.audience is not None},
        )
        return claims

    def _checked(self, claims: dict[str, Any]) -> dict[str, Any]:
        """Our own checks on verified claims: lifetime bound and subject. Raises Unauthorized."""
        # A token valid for a century is a leaked credential forever: the lifetime is bounded.
        exp = claims.get("exp")
        now = dt.datetime.now(dt.UTC).timestamp()
        if isinstance(exp, int | float) and exp - now > self.max_lifetime_seconds + LEEWAY_SECONDS:
            raise Unauthorized(
                f"The bearer token lives longer than the {self.max_lifetime_seconds} s this API accepts."
            )
        if not is_valid_subject(claims.get("sub")):
            raise Unauthorized("The token's subject is invalid.")
        return claims

    def _jwks_key(self, token: str, alg: str) -> Any:
        """The public key named by the token's ``kid``, checked against ``alg``.

        Raises:
            Unauthorized: unknown kid, the JWKS unreachable, or a key of another type
                (or pinned to another ``alg``) than the token claims.
        """
        assert self.jwks is not None
        try:
            jwk = self.jwks.get_signing_key_from_jwt(token)
        except Exception as exc:  # PyJWKClientError, or a malformed kid/JWKS
            raise Unauthorized("The token's signing key is unknown.") from exc
        # algorithm_name is the JWK's own "alg", else what PyJWT infers from kty/crv
        # (RSA -> RS256, EC P-256 -> ES256): a P-384 key does not sign ES256 either.
        if jwk.key_type != KEY_TYPE_BY_ALGORITHM[alg] or jwk.algorithm_name != alg:
            raise Unauthorized(f"The token's key does not sign {alg}.")
        return jwk.key


def auth_mode(settings: Settings) -> str:
    """How this process verifies tokens, for the startup log line (the auth mode is the first
    thing to check when tokens are accepted that should not be).

    Returns:
        e.g. ``"HS256 (AUTH_JWT_SECRET)"``, ``"HS256 (public dev secret, AUTH_USE_DEV_SECRET=on: advanced-notes dev)"``,
        ``"JWKS https://idp/jwks (aud=api)"``, or both joined with ``" + "``. Never the secret.
    """
    modes = []
    if settings.auth_use_dev_secret:
        modes.append("HS256 (public dev secret, AUTH_USE_DEV_SECRET=on: advanced-notes dev)")
    elif settings.auth_jwt_secret:
        modes.append("HS256 (AUTH_JWT_SECRET)")
    if settings.auth_jwks_url:
        modes.append(f"JWKS {redact_url(settings.auth_jwks_url)}")
    checks = [f"{n}={v}" for n, v in (("iss", settings.auth_jwt_issuer), ("aud", settings.auth_jwt_audience)) if v]
    return " + ".join(modes) + (f" ({', '.join(checks)})" if checks else "")


def mint_token(settings: Settings, subject: str, expires_in_seconds: int = 3600) -> str:
    """Mint an HS256 token for ``subject`` (the dev token command, and tests).

    Args:
        settings: must have ``auth_jwt_secret``.
        subject: the owner id (``sub``).
        expires_in_seconds: token lifetime in seconds.
    Raises:
        RuntimeError: no HS256 secret is configured (JWKS deployments mint elsewhere).
    """
    if not settings.auth_jwt_secret:
        raise RuntimeError("AUTH_JWT_SECRET is not set; tokens for JWKS deployments come from your IdP")
    now = dt.datetime.now(dt.UTC)
    claims: dict[str, Any] = {"sub": subject, "iat": now, "exp": now + dt.timedelta(seconds=expires_in_seconds)}
    if settings.auth_jwt_issuer:
        claims["iss"] = settings.auth_jwt_issuer
    if settings.auth_jwt_audience:
        claims["aud"] = settings.auth_jwt_audience
    token: str = pyjwt(asymmetric=False).encode(claims, settings.auth_jwt_secret, algorithm="HS256")
    return token


def authenticate_request() -> None:
    """``before_request`` hook of the API blueprints: sets ``g.owner_id`` from the token's ``sub``.

    Raises:
        Unauthorized: no ``Authorization: Bearer`` header, or the token does not verify.
    """
    if request.method == "OPTIONS":  # CORS preflights carry no credentials
        return
    if getattr(g, "owner_id", None) is not None:  # already verified (by the rate limiter's key)
        return
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Send 'Authorization: Bearer <token>'.")
    verifier = current_services().verifier
    g.owner_id = verifier.verify(token.strip())["sub"]


def current_owner() -> str:
    """The authenticated owner id (the token's ``sub``) of the current request."""
    owner: str = g.owner_id
    return owner

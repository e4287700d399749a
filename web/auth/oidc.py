"""OpenID Connect sign-in: the authorization code flow with PKCE, state and nonce.

`begin` makes a random state, nonce and PKCE verifier, keeps them in a sign-in challenge bound
to the browser, and returns the provider's authorization URL. `finish` takes the callback's
state and code: the state must belong to this browser and be unused and fresh; the code is
exchanged (with the verifier) at the token endpoint; the ID token is verified with joserfc:
its signature against the provider's published keys (asymmetric algorithms only), then `iss`,
`aud` (and `azp` when there are several audiences), `exp`, `iat`, `sub` and the `nonce`.
Claims missing from the ID token are read from the userinfo endpoint, whose `sub` must match.

Every refusal is an `SsoError` with a `reason` code for the audit trail; the provider's
discovery document and keys are cached per process (keys are fetched again once when a token
names an unknown key id).
"""

from __future__ import annotations

import base64
import enum
import hashlib
import secrets
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import msgspec
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    InvalidKeyIdError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import KeySet

from web.auth import challenges
from web.auth.oidc_config import OidcProvider

STATE_TTL = timedelta(minutes=10)
CLOCK_LEEWAY_SECONDS = 60
METADATA_TTL_SECONDS = 3600
HTTP_TIMEOUT_SECONDS = 10.0
ASYMMETRIC_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)

# Tests replace this with `httpx.MockTransport` to play the provider.
transport: httpx.AsyncBaseTransport | None = None


class Reason(enum.StrEnum):
    BAD_STATE = "bad_state"
    PROVIDER_ERROR = "provider_error"
    PROVIDER_UNREACHABLE = "provider_unreachable"
    TOKEN_EXCHANGE_FAILED = "token_exchange_failed"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired_token"
    WRONG_ISSUER = "wrong_issuer"
    WRONG_AUDIENCE = "wrong_audience"
    WRONG_NONCE = "wrong_nonce"
    INVALID_TOKEN = "invalid_token"
    MISSING_CLAIM = "missing_claim"


class SsoError(Exception):
    """A single sign-on attempt refused; `reason` goes to the audit trail, `detail` to the log."""

    def __init__(self, reason: Reason, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail


class ProviderMetadata(msgspec.Struct, frozen=True, kw_only=True):
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str = ""
    end_session_endpoint: str = ""
    token_endpoint_auth_methods_supported: list[str] = msgspec.field(
        default_factory=lambda: ["client_secret_basic"]
    )
    id_token_signing_alg_values_supported: list[str] = msgspec.field(default_factory=lambda: ["RS256"])


class Identity(msgspec.Struct, frozen=True, kw_only=True):
    """Who the provider says signed in, with the claims the mapping names."""

    provider: str
    subject: str
    employee_no: str = ""
    email: str = ""
    email_verified: bool | None = None
    name: str = ""
    id_token: str = ""


class Started(msgspec.Struct, frozen=True, kw_only=True):
    url: str


_metadata: dict[str, tuple[float, ProviderMetadata]] = {}
_keys: dict[str, KeySet] = {}


def _client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=transport, timeout=HTTP_TIMEOUT_SECONDS, follow_redirects=False)


def forget_cached_metadata() -> None:
    _metadata.clear()
    _keys.clear()


async def metadata(provider: OidcProvider) -> ProviderMetadata:
    """The provider's discovery document (cached for an hour); its issuer must be the configured one."""
    cached = _metadata.get(provider.issuer)
    if cached and time.monotonic() - cached[0] < METADATA_TTL_SECONDS:
        return cached[1]
    url = provider.issuer.rstrip("/") + "/.well-known/openid-configuration"
    body = await _get_json(url)
    try:
        found = msgspec.convert(body, ProviderMetadata)
    except msgspec.ValidationError as exc:
        raise SsoError(Reason.PROVIDER_UNREACHABLE, f"discovery document: {exc}") from exc
    if found.issuer != provider.issuer:
        raise SsoError(Reason.WRONG_ISSUER, f"discovery names issuer {found.issuer!r}")
    _metadata[provider.issuer] = (time.monotonic(), found)
    return found


async def begin(provider: OidcProvider, redirect_uri: str, binding: str, next_path: str) -> Started:
    """A new authorization request for this browser; returns the URL to send it to."""
    meta = await metadata(provider)
    state = secrets.token_urlsafe(32)
    nonce = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)
    await challenges.store(
        challenges.Purpose.SSO,
        state,
        binding,
        {"provider": provider.name, "nonce": nonce, "verifier": verifier, "next": next_path},
        STATE_TTL,
    )
    query = {
        "response_type": "code",
        "client_id": provider.client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(provider.scopes),
        "state": state,
        "nonce": nonce,
        "code_challenge": pkce_challenge(verifier),
        "code_challenge_method": "S256",
    }
    separator = "&" if "?" in meta.authorization_endpoint else "?"
    return Started(url=meta.authorization_endpoint + separator + urlencode(query))


def pkce_challenge(verifier: str) -> str:
    """RFC 7636 S256: BASE64URL(SHA256(verifier)) without padding."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


async def finish(
    provider: OidcProvider, pending: challenges.Pending, code: str, redirect_uri: str
) -> Identity:
    """Exchange the code and verify the ID token; returns the identity or raises `SsoError`."""
    if pending.data.get("provider") != provider.name:
        raise SsoError(Reason.BAD_STATE, "the state belongs to another provider")
    meta = await metadata(provider)
    tokens = await _exchange(provider, meta, code, redirect_uri, pending.data["verifier"])
    id_token = tokens.get("id_token")
    if not isinstance(id_token, str) or not id_token:
        raise SsoError(Reason.TOKEN_EXCHANGE_FAILED, "the token response has no id_token")
    claims = await verify_id_token(provider, meta, id_token, pending.data["nonce"])
    access_token = tokens.get("access_token")
    if _needs_userinfo(provider, claims) and meta.userinfo_endpoint and isinstance(access_token, str):
        extra = await _get_json(meta.userinfo_endpoint, bearer=access_token)
        if extra.get("sub") != claims["sub"]:
            raise SsoError(Reason.INVALID_TOKEN, "userinfo answers for another subject")
        claims = {**extra, **claims}
    return _identity(provider, claims, id_token)


async def verify_id_token(
    provider: OidcProvider, meta: ProviderMetadata, id_token: str, nonce: str, now: int | None = None
) -> dict[str, Any]:
    """The verified claims of an ID token; `now` (Unix seconds) only for tests."""
    algorithms = [a for a in meta.id_token_signing_alg_values_supported if a in ASYMMETRIC_ALGORITHMS]
    keys = await _key_set(meta, refresh=False)
    try:
        try:
            token = jwt.decode(id_token, keys, algorithms=algorithms or ["RS256"])
        except (ValueError, JoseError) as first:
            if isinstance(first, BadSignatureError):
                raise
            # A key id we do not know yet: the provider may have rotated its keys.
            keys = await _key_set(meta, refresh=True)
            token = jwt.decode(id_token, keys, algorithms=algorithms or ["RS256"])
    except (BadSignatureError, InvalidKeyIdError) as exc:
        raise SsoError(Reason.BAD_SIGNATURE, "the ID token's signature does not verify") from exc
    except (ValueError, JoseError) as exc:
        raise SsoError(Reason.INVALID_TOKEN, f"the ID token cannot be read: {exc}") from exc
    claims = token.claims
    registry = jwt.JWTClaimsRegistry(
        now=now,
        leeway=CLOCK_LEEWAY_SECONDS,
        iss={"essential": True, "value": provider.issuer},
        aud={"essential": True, "value": provider.client_id},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
        nonce={"essential": True, "value": nonce},
    )
    try:
        registry.validate(claims)
    except ExpiredTokenError as exc:
        raise SsoError(Reason.EXPIRED, "the ID token has expired") from exc
    except (InvalidClaimError, MissingClaimError) as exc:
        reason = {"iss": Reason.WRONG_ISSUER, "aud": Reason.WRONG_AUDIENCE, "nonce": Reason.WRONG_NONCE}
        raise SsoError(reason.get(exc.claim, Reason.INVALID_TOKEN), exc.description or "") from exc
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != provider.client_id:
        raise SsoError(Reason.WRONG_AUDIENCE, "several audiences and azp is not this client")
    return claims


def end_session_url(meta: ProviderMetadata, provider: OidcProvider, id_token: str, after: str) -> str | None:
    """Where to send the browser to sign out at the provider too (RP-initiated logout), if offered."""
    if not provider.end_session or not meta.end_session_endpoint:
        return None
    query = {"client_id": provider.client_id, "post_logout_redirect_uri": after}
    if id_token:
        query["id_token_hint"] = id_token
    separator = "&" if "?" in meta.end_session_endpoint else "?"
    return meta.end_session_endpoint + separator + urlencode(query)


def _needs_userinfo(provider: OidcProvider, claims: dict[str, Any]) -> bool:
    wanted = provider.employee_no_claim if provider.match_by == "employee_no" else provider.email_claim
    return wanted not in claims or provider.name_claim not in claims


def _identity(provider: OidcProvider, claims: dict[str, Any], id_token: str) -> Identity:
    def text(name: str) -> str:
        value = claims.get(name)
        return str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else ""

    verified = claims.get("email_verified")
    identity = Identity(
        provider=provider.name,
        subject=str(claims["sub"]),
        employee_no=text(provider.employee_no_claim)[:32],
        email=text(provider.email_claim)[:254],
        email_verified=verified if isinstance(verified, bool) else None,
        name=text(provider.name_claim)[:100],
        id_token=id_token,
    )
    key = identity.employee_no if provider.match_by == "employee_no" else identity.email
    if not key:
        claim = provider.employee_no_claim if provider.match_by == "employee_no" else provider.email_claim
        raise SsoError(Reason.MISSING_CLAIM, f"the provider sent no {claim!r} claim")
    return identity


async def _exchange(
    provider: OidcProvider, meta: ProviderMetadata, code: str, redirect_uri: str, verifier: str
) -> dict[str, Any]:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
        "client_id": provider.client_id,
    }
    auth: httpx.BasicAuth | None = None
    if provider.client_secret:
        if "client_secret_basic" in meta.token_endpoint_auth_methods_supported:
            auth = httpx.BasicAuth(provider.client_id, provider.client_secret)
        else:
            form["client_secret"] = provider.client_secret
    try:
        async with _client() as client:
            answer = await client.post(meta.token_endpoint, data=form, auth=auth or httpx.USE_CLIENT_DEFAULT)
    except httpx.HTTPError as exc:
        raise SsoError(Reason.PROVIDER_UNREACHABLE, f"token endpoint: {exc}") from exc
    if answer.status_code != 200:
        raise SsoError(Reason.TOKEN_EXCHANGE_FAILED, f"token endpoint answered {answer.status_code}")
    try:
        body = answer.json()
    except ValueError as exc:
        raise SsoError(Reason.TOKEN_EXCHANGE_FAILED, "the token response is not JSON") from exc
    if not isinstance(body, dict):
        raise SsoError(Reason.TOKEN_EXCHANGE_FAILED, "the token response is not an object")
    return body


async def _key_set(meta: ProviderMetadata, refresh: bool) -> KeySet:
    if not refresh and meta.jwks_uri in _keys:
        return _keys[meta.jwks_uri]
    body = await _get_json(meta.jwks_uri)
    try:
        keys = KeySet.import_key_set(body)  # type: ignore[arg-type]
    except (ValueError, JoseError) as exc:
        raise SsoError(Reason.PROVIDER_UNREACHABLE, f"the provider's keys cannot be read: {exc}") from exc
    _keys[meta.jwks_uri] = keys
    return keys


async def _get_json(url: str, bearer: str | None = None) -> dict[str, Any]:
    headers = {"accept": "application/json"}
    if bearer:
        headers["authorization"] = f"Bearer {bearer}"
    try:
        async with _client() as client:
            answer = await client.get(url, headers=headers)
    except httpx.HTTPError as exc:
        raise SsoError(Reason.PROVIDER_UNREACHABLE, f"{url}: {exc}") from exc
    if answer.status_code != 200:
        raise SsoError(Reason.PROVIDER_UNREACHABLE, f"{url} answered {answer.status_code}")
    try:
        body = answer.json()
    except ValueError as exc:
        raise SsoError(Reason.PROVIDER_UNREACHABLE, f"{url} did not answer JSON") from exc
    if not isinstance(body, dict):
        raise SsoError(Reason.PROVIDER_UNREACHABLE, f"{url} did not answer a JSON object")
    return body

"""Passkeys (WebAuthn) with py_webauthn: registration from the profile, sign-in without a password.

The server only ever sees public keys and signatures; fingerprints and faces stay on the
device. Each ceremony has a random challenge kept as a sign-in challenge bound to the browser
(the session token for registration, the pre-sign-in cookie for sign-in) and used once: the
challenge is looked up from the answer's clientDataJSON and removed before anything else is
checked, so an answer replayed later finds nothing. py_webauthn then checks the origin, the RP
id hash, user presence and user verification (required), the signature, and that the sign
counter went up. A revoked passkey is refused by name.

Refusals are `PasskeyError` with a `reason` for the audit trail.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

import msgspec
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    base64url_to_bytes,
    bytes_to_base64url,
    parse_authentication_credential_json,
    parse_client_data_json,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import (
    InvalidAuthenticationResponse,
    InvalidJSONStructure,
    InvalidRegistrationResponse,
)
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from storage.access import Principal, Role
from storage.tables import PasskeyCredential, Person
from web.auth import challenges
from web.settings import Settings

CHALLENGE_TTL = timedelta(minutes=5)
# Registering a passkey needs a sign-in this recent (password or SSO; the session's age).
FRESH_SIGN_IN = timedelta(minutes=15)
TIMEOUT_MS = 120_000
RP_NAME = "Formflow"
ADMIN_ROLES = frozenset({Role.SYSTEM_ADMIN, Role.PROCESS_ADMIN})


class Reason(enum.StrEnum):
    MALFORMED = "malformed"
    CHALLENGE_USED_OR_EXPIRED = "challenge_used_or_expired"
    UNKNOWN_PASSKEY = "unknown_passkey"
    REVOKED = "revoked_passkey"
    REPLAYED = "sign_count_not_increased"
    INVALID = "invalid_response"
    INACTIVE = "inactive_person"
    ALREADY_REGISTERED = "already_registered"


class PasskeyError(Exception):
    def __init__(self, reason: Reason, detail: str = "", person_id: int | None = None) -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail
        self.person_id = person_id


class RelyingParty(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    origin: str


class SignedIn(msgspec.Struct, frozen=True, kw_only=True):
    person_id: int
    person_name: str
    passkey_id: int
    passkey_name: str


def relying_party(settings: Settings, request_origin: str) -> RelyingParty:
    """RP id and origin: explicit settings, else from `FORMFLOW_BASE_URL`, else this request's origin."""
    origin = (settings.webauthn_origin or _origin(settings.base_url) or request_origin).rstrip("/")
    rp_id = settings.webauthn_rp_id or urlparse(origin).hostname or ""
    return RelyingParty(id=rp_id, origin=origin)


def _origin(url: str) -> str:
    if not url:
        return ""
    parts = urlparse(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def user_handle(secret: str, person_id: int) -> bytes:
    """A stable, opaque WebAuthn user id for a person (no employee number or e-mail inside)."""
    return hmac.new(secret.encode(), f"formflow passkey user {person_id}".encode(), hashlib.sha256).digest()


async def active_passkeys(person_id: int) -> list[dict[str, Any]]:
    return await (
        PasskeyCredential.select(
            PasskeyCredential.id, PasskeyCredential.credential_id, PasskeyCredential.transports
        )
        .where((PasskeyCredential.person == person_id) & PasskeyCredential.revoked_at.is_null())
        .output(load_json=True)
    )


async def registration_options(
    rp: RelyingParty, principal: Principal, handle: bytes, session_token: str
) -> str:
    """Creation options (JSON for `PublicKeyCredential.parseCreationOptionsFromJSON`)."""
    existing = await active_passkeys(principal.id)
    options = generate_registration_options(
        rp_id=rp.id,
        rp_name=RP_NAME,
        user_name=principal.employee_no,
        user_id=handle,
        user_display_name=principal.name,
        timeout=TIMEOUT_MS,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=[
            PublicKeyCredentialDescriptor(id=base64url_to_bytes(row["credential_id"])) for row in existing
        ],
    )
    await challenges.store(
        challenges.Purpose.PASSKEY_REGISTER,
        bytes_to_base64url(options.challenge),
        session_token,
        {},
        CHALLENGE_TTL,
        person_id=principal.id,
    )
    return options_to_json(options)


async def register(
    rp: RelyingParty, principal: Principal, session_token: str, credential: str, name: str
) -> int:
    """Verify an attestation and store the passkey; returns its row id. Call in a write transaction."""
    try:
        parsed = parse_registration_credential_json(credential)
        challenge = parse_client_data_json(parsed.response.client_data_json).challenge
    except (InvalidJSONStructure, InvalidRegistrationResponse, ValueError, KeyError, TypeError) as exc:
        raise PasskeyError(Reason.MALFORMED, str(exc)) from exc
    pending = await challenges.take(
        challenges.Purpose.PASSKEY_REGISTER, bytes_to_base64url(challenge), session_token
    )
    if pending is None or pending.person_id != principal.id:
        raise PasskeyError(Reason.CHALLENGE_USED_OR_EXPIRED, person_id=principal.id)
    try:
        verified = verify_registration_response(
            credential=parsed,
            expected_challenge=challenge,
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
            require_user_verification=True,
        )
    except InvalidRegistrationResponse as exc:
        raise PasskeyError(Reason.INVALID, str(exc), person_id=principal.id) from exc
    credential_id = bytes_to_base64url(verified.credential_id)
    if await PasskeyCredential.exists().where(PasskeyCredential.credential_id == credential_id):
        raise PasskeyError(Reason.ALREADY_REGISTERED, person_id=principal.id)
    rows = await PasskeyCredential.insert(
        PasskeyCredential(
            person=principal.id,
            credential_id=credential_id,
            public_key=bytes_to_base64url(verified.credential_public_key),
            sign_count=verified.sign_count,
            transports=[t.value for t in parsed.response.transports or []],
            name=name,
            backed_up=verified.credential_backed_up,
            created_at=datetime.now(UTC),
        )
    ).returning(PasskeyCredential.id)
    return int(rows[0]["id"])


async def sign_in_options(rp: RelyingParty, binding: str) -> str:
    """Request options for a discoverable passkey (no employee number typed first)."""
    options = generate_authentication_options(
        rp_id=rp.id, timeout=TIMEOUT_MS, user_verification=UserVerificationRequirement.REQUIRED
    )
    await challenges.store(
        challenges.Purpose.PASSKEY_SIGN_IN, bytes_to_base64url(options.challenge), binding, {}, CHALLENGE_TTL
    )
    return options_to_json(options)


async def sign_in(rp: RelyingParty, binding: str | None, credential: str, secret: str) -> SignedIn:
    """Verify an assertion; returns who signed in or raises `PasskeyError`. Call in a write transaction."""
    try:
        parsed = parse_authentication_credential_json(credential)
        challenge = parse_client_data_json(parsed.response.client_data_json).challenge
    except (InvalidJSONStructure, InvalidAuthenticationResponse, ValueError, KeyError, TypeError) as exc:
        raise PasskeyError(Reason.MALFORMED, str(exc)) from exc
    credential_id = bytes_to_base64url(parsed.raw_id)
    row = await (
        PasskeyCredential.select(
            *PasskeyCredential.all_columns(), PasskeyCredential.person.name.as_alias("person_name")
        )
        .where(PasskeyCredential.credential_id == credential_id)
        .first()
    )
    person_id = int(row["person"]) if row else None
    pending = await challenges.take(
        challenges.Purpose.PASSKEY_SIGN_IN, bytes_to_base64url(challenge), binding
    )
    if pending is None:
        raise PasskeyError(Reason.CHALLENGE_USED_OR_EXPIRED, person_id=person_id)
    if row is None:
        raise PasskeyError(Reason.UNKNOWN_PASSKEY)
    if row["revoked_at"] is not None:
        raise PasskeyError(Reason.REVOKED, row["name"], person_id=person_id)
    handle = parsed.response.user_handle
    if handle and handle != user_handle(secret, row["person"]):
        raise PasskeyError(Reason.INVALID, "the user handle belongs to someone else", person_id=person_id)
    try:
        verified = verify_authentication_response(
            credential=parsed,
            expected_challenge=challenge,
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
            credential_public_key=base64url_to_bytes(row["public_key"]),
            credential_current_sign_count=int(row["sign_count"]),
            require_user_verification=True,
        )
    except InvalidAuthenticationResponse as exc:
        reason = Reason.REPLAYED if "sign count" in str(exc).lower() else Reason.INVALID
        raise PasskeyError(reason, str(exc), person_id=person_id) from exc
    if not await Person.exists().where((Person.id == row["person"]) & Person.active.eq(True)):
        raise PasskeyError(Reason.INACTIVE, person_id=person_id)
    now = datetime.now(UTC)
    updated = await (
        PasskeyCredential.update(
            {PasskeyCredential.sign_count: verified.new_sign_count, PasskeyCredential.last_used_at: now}
        )
        .where((PasskeyCredential.id == row["id"]) & (PasskeyCredential.sign_count == row["sign_count"]))
        .returning(PasskeyCredential.id)
    )
    if not updated:
        raise PasskeyError(Reason.REPLAYED, "the counter moved meanwhile", person_id=person_id)
    await Person.update({Person.last_login_at: now}).where(Person.id == row["person"])
    return SignedIn(
        person_id=int(row["person"]),
        person_name=row["person_name"],
        passkey_id=row["id"],
        passkey_name=row["name"],
    )


def is_admin(principal: Principal) -> bool:
    return bool(principal.roles & ADMIN_ROLES)


async def passkey_required(settings: Settings, person_id: int, roles: frozenset[Role]) -> bool:
    """Admins must use their passkey once they have one (`FORMFLOW_PASSKEYS_REQUIRED_FOR_ADMINS`)."""
    if not settings.passkeys_required_for_admins or not roles & ADMIN_ROLES:
        return False
    return bool(await active_passkeys(person_id))


async def must_enrol(settings: Settings, principal: Principal) -> bool:
    """An admin without a passkey, where passkeys are required: only the profile is open to them."""
    if not settings.passkeys_required_for_admins or not is_admin(principal):
        return False
    return not await active_passkeys(principal.id)

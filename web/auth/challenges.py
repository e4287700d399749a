"""Pending sign-in ceremonies (SSO redirects, passkey challenges), bound to one browser, used once.

A browser that starts a ceremony before signing in gets the `formflow_signin` cookie (random,
HttpOnly, SameSite=Lax); the row stores only its SHA-256 as `binding`. A signed-in person who
registers a passkey is bound by their session token instead. `take` deletes the row it
returns, so an answer can be accepted once; two answers racing for the same row see one
`DELETE` win.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from storage.tables import SignInChallenge
from web.auth.tokens import digest, new_session_token

SIGNIN_COOKIE = "formflow_signin"
SIGNIN_COOKIE_SECONDS = 15 * 60


class Purpose(enum.StrEnum):
    SSO = "sso"
    PASSKEY_SIGN_IN = "passkey_sign_in"
    PASSKEY_REGISTER = "passkey_register"


class Pending(msgspec.Struct, frozen=True, kw_only=True):
    purpose: Purpose
    person_id: int | None
    data: dict[str, Any]


def new_binding() -> str:
    """A fresh value for the `formflow_signin` cookie."""
    return new_session_token()


async def store(
    purpose: Purpose,
    key: str,
    binding: str,
    data: dict[str, Any],
    ttl: timedelta,
    person_id: int | None = None,
) -> None:
    """Remember a ceremony under `key` (a random value only the browser's answer carries)."""
    now = datetime.now(UTC)
    await SignInChallenge.insert(
        SignInChallenge(
            key=digest(key),
            purpose=purpose.value,
            binding=digest(binding),
            person_id=person_id,
            data=data,
            created_at=now,
            expires_at=now + ttl,
        )
    )


async def take(purpose: Purpose, key: str, binding: str | None) -> Pending | None:
    """The ceremony stored under `key` for this browser, removed; None if unknown, used, expired
    or begun in another browser."""
    row = await (
        SignInChallenge.select()
        .where((SignInChallenge.key == digest(key)) & (SignInChallenge.purpose == purpose.value))
        .first()
        .output(load_json=True)
    )
    if row is None:
        return None
    deleted = (
        await SignInChallenge.delete().where(SignInChallenge.id == row["id"]).returning(SignInChallenge.id)
    )
    if not deleted or binding is None or digest(binding) != row["binding"]:
        return None
    if row["expires_at"] <= datetime.now(UTC):
        return None
    return Pending(purpose=purpose, person_id=row["person_id"], data=row["data"] or {})


async def purge_expired(now: datetime) -> int:
    count = await SignInChallenge.count().where(SignInChallenge.expires_at <= now)
    if count:
        await SignInChallenge.delete().where(SignInChallenge.expires_at <= now)
    return count

"""Server-side browser sessions and personal access tokens.

A new random session token is issued at every sign-in (no session fixation); the cookie holds
the token, the database only its SHA-256. Logging out deletes the row. Expired sessions are
refused and removed by the scheduler's housekeeping, with the expired sign-in challenges.
A session signed in through SSO remembers its provider and ID token (`SsoSession`) so that
logging out can end the provider's session too.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage.raw_sql import fetch
from storage.tables import ApiToken, SignInChallenge, SsoSession, UserSession
from web.auth.tokens import digest, new_api_token, new_session_token

SESSION_COOKIE = "formflow_session"
# Refresh `last_seen_at` at most this often, so reads do not turn into writes on every request.
_TOUCH_EVERY = timedelta(minutes=5)
# Every signed-in request reads one of these: SQL text, not the query builder.
_SESSION = (
    'SELECT "id", "person", "expires_at", "last_seen_at" FROM "user_session" WHERE "token_hash" = {} LIMIT 1'
)
_API_TOKEN = (
    'SELECT "id", "person", "expires_at", "revoked_at", "last_used_at" FROM "api_token" '
    'WHERE "token_hash" = {} LIMIT 1'
)


async def open_session(person_id: int, hours: int, ip: str, user_agent: str) -> str:
    token = new_session_token()
    now = datetime.now(UTC)
    await UserSession.insert(
        UserSession(
            token_hash=digest(token),
            person=person_id,
            created_at=now,
            expires_at=now + timedelta(hours=hours),
            last_seen_at=now,
            ip=ip[:64],
            user_agent=user_agent[:300],
        )
    )
    return token


async def person_for_session(token: str) -> int | None:
    now = datetime.now(UTC)
    rows = await fetch(UserSession, _SESSION, digest(token))
    row = rows[0] if rows else None
    if row is None or row["expires_at"] <= now:
        return None
    if now - row["last_seen_at"] > _TOUCH_EVERY:
        await UserSession.update({UserSession.last_seen_at: now}).where(UserSession.id == row["id"])
    return int(row["person"])


async def close_session(token: str) -> int | None:
    """Delete the session; returns its person id (for the audit entry) or None if unknown."""
    row = await (
        UserSession.select(UserSession.id, UserSession.person)
        .where(UserSession.token_hash == digest(token))
        .first()
    )
    if row is None:
        return None
    await SsoSession.delete().where(SsoSession.session == row["id"])
    await UserSession.delete().where(UserSession.id == row["id"])
    return int(row["person"])


async def purge_expired_sessions(now: datetime) -> int:
    if await SignInChallenge.exists().where(SignInChallenge.expires_at <= now):
        await SignInChallenge.delete().where(SignInChallenge.expires_at <= now)
    count = await UserSession.count().where(UserSession.expires_at <= now)
    if count:
        expired = await UserSession.select(UserSession.id).where(UserSession.expires_at <= now)
        await SsoSession.delete().where(SsoSession.session.is_in([r["id"] for r in expired]))
        await UserSession.delete().where(UserSession.expires_at <= now)
    return count


async def remember_sso(token: str, provider: str, id_token: str) -> None:
    """Note which provider signed this session in (call in the sign-in's transaction)."""
    row = await UserSession.select(UserSession.id).where(UserSession.token_hash == digest(token)).first()
    if row is not None:
        await SsoSession.insert(
            SsoSession(session=row["id"], provider=provider, id_token=id_token, created_at=datetime.now(UTC))
        )


async def sso_of_session(token: str) -> tuple[str, str] | None:
    """(provider name, ID token) of a session signed in through SSO, else None."""
    row = await (
        SsoSession.select(SsoSession.provider, SsoSession.id_token)
        .where(SsoSession.session.token_hash == digest(token))
        .first()
    )
    return (row["provider"], row["id_token"]) if row else None


async def session_age(token: str, now: datetime) -> timedelta | None:
    row = (
        await UserSession.select(UserSession.created_at)
        .where(UserSession.token_hash == digest(token))
        .first()
    )
    return now - row["created_at"] if row else None


async def issue_api_token(person_id: int, name: str, days: int | None) -> tuple[int, str]:
    token = new_api_token()
    now = datetime.now(UTC)
    rows = await ApiToken.insert(
        ApiToken(
            person=person_id,
            name=name[:100],
            token_hash=digest(token),
            prefix=token[:12],
            created_at=now,
            expires_at=now + timedelta(days=days) if days else None,
        )
    ).returning(ApiToken.id)
    return int(rows[0]["id"]), token


async def person_for_api_token(token: str) -> int | None:
    now = datetime.now(UTC)
    rows = await fetch(ApiToken, _API_TOKEN, digest(token))
    row = rows[0] if rows else None
    if row is None or row["revoked_at"] is not None:
        return None
    if row["expires_at"] is not None and row["expires_at"] <= now:
        return None
    if row["last_used_at"] is None or now - row["last_used_at"] > _TOUCH_EVERY:
        await ApiToken.update({ApiToken.last_used_at: now}).where(ApiToken.id == row["id"])
    return int(row["person"])

"""The signed-in person's own page: who they are, their roles, their passkeys and API tokens.

Adding a passkey needs a browser session signed in within the last 15 minutes (a fresh
password or SSO sign-in), so that a browser left signed in cannot gain a lasting way in.
Passkeys are listed with their last use; renaming and revoking are audited.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Response, delete, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromQuery, JSONBody, URLEncodedBody
from litestar.response import Template

from storage import audit
from storage.access import Permission, Principal
from storage.database import write_transaction
from storage.tables import ApiToken, PasskeyCredential
from web.auth import passkeys
from web.auth.guards import needs
from web.auth.middleware import cookie_value
from web.auth.sessions import SESSION_COOKIE, session_age
from web.context import AnyRequest, RowId, actor_of, principal_of, settings_of
from web.i18n import _
from web.routes.auth import passkey_message, public_origin
from web.settings import secret_key

PasskeyName = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class NewPasskey(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    credential: dict[str, Any]
    name: PasskeyName


class RenameForm(msgspec.Struct, kw_only=True):
    name: Annotated[str, msgspec.Meta(max_length=100)] = ""


async def _tokens(principal: Principal) -> list[dict[str, object]]:
    return await (
        ApiToken.select(
            ApiToken.id,
            ApiToken.name,
            ApiToken.prefix,
            ApiToken.created_at,
            ApiToken.last_used_at,
            ApiToken.expires_at,
            ApiToken.revoked_at,
        )
        .where(ApiToken.person == principal.id)
        .order_by(ApiToken.id, ascending=False)
    )


async def _revoke(request: AnyRequest, token_id: int) -> None:
    """Revoke one of the caller's own tokens; someone else's token is "not found"."""
    principal = principal_of(request)
    async with write_transaction(ApiToken._meta.db):
        row = (
            await ApiToken.select(ApiToken.id, ApiToken.revoked_at)
            .where((ApiToken.id == token_id) & (ApiToken.person == principal.id))
            .first()
        )
        if row is None:
            raise NotFoundException(f"token {token_id} not found")
        if row["revoked_at"] is None:
            await ApiToken.update({ApiToken.revoked_at: datetime.now(UTC)}).where(ApiToken.id == token_id)
            await audit.record(
                "auth.token_revoked", actor_of(request), target_type="api_token", target_id=token_id
            )


async def _passkeys(principal: Principal) -> list[dict[str, object]]:
    return await (
        PasskeyCredential.select(
            PasskeyCredential.id,
            PasskeyCredential.name,
            PasskeyCredential.created_at,
            PasskeyCredential.last_used_at,
            PasskeyCredential.revoked_at,
            PasskeyCredential.backed_up,
        )
        .where(PasskeyCredential.person == principal.id)
        .order_by(PasskeyCredential.id, ascending=False)
    )


async def _fresh(request: AnyRequest) -> bool:
    """Signed in through a browser session opened within `passkeys.FRESH_SIGN_IN`."""
    token = cookie_value(request.scope, SESSION_COOKIE)
    if request.scope.get("auth") != "session" or not token:
        return False
    age = await session_age(token, datetime.now(UTC))
    return age is not None and age <= passkeys.FRESH_SIGN_IN


async def _passkey_context(request: AnyRequest, error: str = "") -> dict[str, Any]:
    principal = principal_of(request)
    return {
        "passkeys": await _passkeys(principal),
        "fresh": await _fresh(request),
        "must_enrol": await passkeys.must_enrol(settings_of(request), principal),
        "passkey_error": error,
    }


@get("/profile", opt=needs(Permission.SIGNED_IN))
async def profile(request: AnyRequest, added: FromQuery[int] = 0) -> Template:
    principal = principal_of(request)
    return Template(
        "profile.html",
        context={
            "section": "profile",
            "tokens": await _tokens(principal),
            "now": datetime.now(UTC),
            "passkey_added": added == 1,
            **await _passkey_context(request),
        },
    )


def _problem(detail: str, status: int) -> Response[Any]:
    return Response({"status_code": status, "detail": detail}, status_code=status)


@post("/profile/passkeys/options", opt=needs(Permission.SIGNED_IN), status_code=200)
async def passkey_options(request: AnyRequest) -> Response[Any]:
    """Creation options for a new passkey; needs a fresh browser sign-in."""
    if not await _fresh(request):
        return _problem(
            _("To add a passkey, sign out and sign in again (password or company account) first."), 403
        )
    settings = settings_of(request)
    principal = principal_of(request)
    rp = passkeys.relying_party(settings, public_origin(request))
    handle = passkeys.user_handle(secret_key(settings), principal.id)
    async with write_transaction(PasskeyCredential._meta.db):
        options = await passkeys.registration_options(
            rp, principal, handle, cookie_value(request.scope, SESSION_COOKIE) or ""
        )
    return Response(
        content=options.encode(), media_type="application/json", headers={"cache-control": "no-store"}
    )


@post("/profile/passkeys", opt=needs(Permission.SIGNED_IN), status_code=201)
async def add_passkey(request: AnyRequest, data: JSONBody[NewPasskey]) -> Response[Any]:
    """Verify the new passkey's attestation and keep its public key."""
    if not await _fresh(request):
        return _problem(
            _("To add a passkey, sign out and sign in again (password or company account) first."), 403
        )
    settings = settings_of(request)
    principal = principal_of(request)
    rp = passkeys.relying_party(settings, public_origin(request))
    name = data.name.strip() or _("Passkey")
    failure: passkeys.PasskeyError | None = None
    async with write_transaction(PasskeyCredential._meta.db):
        try:
            passkey_id = await passkeys.register(
                rp,
                principal,
                cookie_value(request.scope, SESSION_COOKIE) or "",
                msgspec.json.encode(data.credential).decode(),
                name,
            )
            await audit.record(
                "auth.passkey_registered",
                actor_of(request),
                target_type="passkey",
                target_id=passkey_id,
                after={"name": name},
            )
        except passkeys.PasskeyError as exc:
            failure = exc
    if failure is not None:
        return _problem(passkey_message(failure.reason), 400)
    return Response({"id": passkey_id, "name": name}, status_code=201)


async def _own_passkey(request: AnyRequest, passkey_id: int) -> dict[str, Any]:
    principal = principal_of(request)
    row = await (
        PasskeyCredential.select(PasskeyCredential.id, PasskeyCredential.name, PasskeyCredential.revoked_at)
        .where((PasskeyCredential.id == passkey_id) & (PasskeyCredential.person == principal.id))
        .first()
    )
    if row is None:
        raise NotFoundException(f"passkey {passkey_id} not found")
    return row


async def _passkeys_fragment(request: AnyRequest, error: str = "", status: int = 200) -> Template:
    return Template("_passkeys.html", context=await _passkey_context(request, error), status_code=status)


@post("/profile/passkeys/{passkey_id:int}/rename", opt=needs(Permission.SIGNED_IN), status_code=200)
async def rename_passkey(
    request: AnyRequest, passkey_id: RowId, data: URLEncodedBody[RenameForm]
) -> Template:
    name = data.name.strip()
    if not name:
        return await _passkeys_fragment(request, _("Name: give the passkey a name."), 422)
    async with write_transaction(PasskeyCredential._meta.db):
        row = await _own_passkey(request, passkey_id)
        await PasskeyCredential.update({PasskeyCredential.name: name}).where(
            PasskeyCredential.id == passkey_id
        )
        await audit.record(
            "auth.passkey_renamed",
            actor_of(request),
            target_type="passkey",
            target_id=passkey_id,
            before={"name": row["name"]},
            after={"name": name},
        )
    return await _passkeys_fragment(request)


@post("/profile/passkeys/{passkey_id:int}/revoke", opt=needs(Permission.SIGNED_IN), status_code=200)
async def revoke_passkey(request: AnyRequest, passkey_id: RowId) -> Template:
    async with write_transaction(PasskeyCredential._meta.db):
        row = await _own_passkey(request, passkey_id)
        if row["revoked_at"] is None:
            await PasskeyCredential.update({PasskeyCredential.revoked_at: datetime.now(UTC)}).where(
                PasskeyCredential.id == passkey_id
            )
            await audit.record(
                "auth.passkey_revoked",
                actor_of(request),
                target_type="passkey",
                target_id=passkey_id,
                after={"name": row["name"]},
            )
    return await _passkeys_fragment(request)


@post("/profile/tokens/{token_id:int}/revoke", opt=needs(Permission.SIGNED_IN), status_code=200)
async def revoke_token_page(request: AnyRequest, token_id: RowId) -> Template:
    await _revoke(request, token_id)
    principal = principal_of(request)
    return Template("_tokens.html", context={"tokens": await _tokens(principal), "now": datetime.now(UTC)})


@delete("/api/v1/auth/tokens/{token_id:int}", opt=needs(Permission.SIGNED_IN), status_code=204)
async def revoke_token(request: AnyRequest, token_id: RowId) -> None:
    """Revoke one of your own personal access tokens."""
    await _revoke(request, token_id)


ROUTES = [
    profile,
    revoke_token_page,
    revoke_token,
    passkey_options,
    add_passkey,
    rename_passkey,
    revoke_passkey,
]

"""The signed-in person's own page: who they are, their roles, their API tokens."""

from __future__ import annotations

from datetime import UTC, datetime

from litestar import delete, get, post
from litestar.exceptions import NotFoundException
from litestar.response import Template

from storage import audit
from storage.access import Permission, Principal
from storage.database import write_transaction
from storage.tables import ApiToken
from web.auth.guards import needs
from web.context import AnyRequest, RowId, actor_of, principal_of


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


@get("/profile", opt=needs(Permission.SIGNED_IN))
async def profile(request: AnyRequest) -> Template:
    principal = principal_of(request)
    return Template(
        "profile.html",
        context={"section": "profile", "tokens": await _tokens(principal), "now": datetime.now(UTC)},
    )


@post("/profile/tokens/{token_id:int}/revoke", opt=needs(Permission.SIGNED_IN), status_code=200)
async def revoke_token_page(request: AnyRequest, token_id: RowId) -> Template:
    await _revoke(request, token_id)
    principal = principal_of(request)
    return Template("_tokens.html", context={"tokens": await _tokens(principal), "now": datetime.now(UTC)})


@delete("/api/v1/auth/tokens/{token_id:int}", opt=needs(Permission.SIGNED_IN), status_code=204)
async def revoke_token(request: AnyRequest, token_id: RowId) -> None:
    """Revoke one of your own personal access tokens."""
    await _revoke(request, token_id)


ROUTES = [profile, revoke_token_page, revoke_token]

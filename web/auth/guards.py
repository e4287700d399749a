"""The permission guard: every route declares `opt={"permission": Permission.X}`; none is denied.

Routes say what they need with the `needs(...)` helper. A route without a declaration is
refused at runtime (and a test walks every route to keep it so).

Where passkeys are required for admin roles, an admin who has none yet may open only what any
signed-in person may (the profile, to register one) until they do.
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from storage.access import Permission, Principal
from web.auth.passkeys import must_enrol

PERMISSION_KEY = "permission"


def needs(permission: Permission) -> dict[str, Any]:
    """Route options declaring the permission a route needs: `@get(..., opt=needs(P.X))`."""
    return {PERMISSION_KEY: permission}


def declared_permission(handler: BaseRouteHandler) -> Permission | None:
    value = handler.opt.get(PERMISSION_KEY)
    return value if isinstance(value, Permission) else None


async def permission_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    permission = declared_permission(handler)
    if permission is None:
        raise PermissionDeniedException("this route declares no permission and is closed")
    if permission is Permission.PUBLIC:
        return
    principal: Principal | None = connection.scope.get("user")
    if principal is None:
        raise NotAuthorizedException("sign in first")
    if not principal.can(permission):
        raise PermissionDeniedException(f"you lack the permission {permission.value}")
    if permission is not Permission.SIGNED_IN and await must_enrol(connection.app.state.settings, principal):
        raise PermissionDeniedException("your role requires a passkey: register one on your profile first")

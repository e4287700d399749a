"""The permission guard: every route declares `opt={"permission": Permission.X}`; none is denied.

Routes say what they need with the `needs(...)` helper. A route without a declaration is
refused at runtime (and a test walks every route to keep it so).
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from storage.access import Permission, Principal

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

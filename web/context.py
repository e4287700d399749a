"""Small helpers every route uses: the settings, the caller as an audit actor, the principal."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request
from litestar.exceptions import NotAuthorizedException
from litestar.params import PathParameter

from storage.access import Principal
from storage.audit import Actor
from web.observability import client_ip, request_id_var
from web.settings import Settings

AnyRequest = Request[Any, Any, Any]
# A row id in a path: bounded so that no value overflows a 32-bit SERIAL column.
RowId = Annotated[int, PathParameter(ge=1, le=2**31 - 1)]


def settings_of(request: AnyRequest) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def principal_of(request: AnyRequest) -> Principal:
    principal: Principal | None = request.scope.get("user")
    if principal is None:
        raise NotAuthorizedException("sign in first")
    return principal


def actor_of(request: AnyRequest) -> Actor:
    principal: Principal | None = request.scope.get("user")
    return Actor(
        id=principal.id if principal else None,
        name=principal.name if principal else "",
        ip=client_ip(request.scope),
        request_id=request_id_var.get(),
    )

"""ASGI middleware: who is calling (session cookie or bearer token), and CSRF for cookies.

`AuthenticationMiddleware` never refuses a request: it puts the `Principal` (or None) into
`scope["user"]`; the permission guard decides. `CSRFMiddleware` is Litestar's double-submit
check, skipped only for requests that authenticate with `Authorization: Bearer` and carry no
session cookie: a browser cannot be tricked into sending a bearer header.
"""

from __future__ import annotations

from litestar.config.csrf import CSRFConfig
from litestar.middleware.csrf import CSRFMiddleware as LitestarCSRFMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from storage.org import load_principal
from web.auth.sessions import SESSION_COOKIE, person_for_api_token, person_for_session


def bearer_token(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


def cookie_value(scope: Scope, name: str) -> str | None:
    for header, value in scope.get("headers", ()):
        if header == b"cookie":
            for part in value.decode("latin-1").split(";"):
                key, _, val = part.strip().partition("=")
                if key == name and val:
                    return val
    return None


class AuthenticationMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope["user"] = None
            scope["auth"] = None
            person_id = None
            if token := bearer_token(scope):
                person_id = await person_for_api_token(token)
                scope["auth"] = "token" if person_id else None
            elif token := cookie_value(scope, SESSION_COOKIE):
                person_id = await person_for_session(token)
                scope["auth"] = "session" if person_id else None
            if person_id is not None:
                scope["user"] = await load_principal(person_id)
        await self.app(scope, receive, send)


class CSRFMiddleware(LitestarCSRFMiddleware):
    def __init__(self, app: ASGIApp, config: CSRFConfig) -> None:
        super().__init__(app, config)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and bearer_token(scope) and not cookie_value(scope, SESSION_COOKIE):
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

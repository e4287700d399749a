"""Sign-in and sign-out pages, the language switch, and the token API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlparse

import msgspec
from litestar import Response, get, post
from litestar.datastructures import Cookie
from litestar.exceptions import NotAuthorizedException
from litestar.params import FromQuery, JSONBody, URLEncodedBody
from litestar.response import Redirect, Template

from storage import audit
from storage.access import Permission
from storage.database import write_transaction
from storage.tables import Person
from web.auth.guards import needs
from web.auth.middleware import cookie_value
from web.auth.sessions import SESSION_COOKIE, close_session, issue_api_token, open_session
from web.auth.signin import Failure, SignInResult, check_password
from web.context import AnyRequest, actor_of, settings_of
from web.i18n import LOCALE_COOKIE, LOCALES, _

ShortText = Annotated[str, msgspec.Meta(max_length=200)]


class LoginForm(msgspec.Struct, kw_only=True):
    username: ShortText = ""
    password: ShortText = ""
    next: Annotated[str, msgspec.Meta(max_length=2000)] = "/"


class TokenRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    username: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] = "api"
    days: Annotated[int, msgspec.Meta(ge=1, le=366)] | None = 90


class TokenResponse(msgspec.Struct, kw_only=True):
    token: str
    id: int
    expires_in_days: int | None


def safe_next(target: str) -> str:
    """Only same-site paths: `/x?y`, never `//host` or `https://host`."""
    parts = urlparse(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def failure_message(result: SignInResult, lockout_minutes: int) -> str:
    if result.failure is Failure.LOCKED:
        return _("Too many failed attempts: this account is locked for {minutes} minutes.").format(
            minutes=lockout_minutes
        )
    if result.failure is Failure.THROTTLED:
        return _("Too many failed sign-ins from your network. Wait ten minutes and try again.")
    if result.attempts_left is not None and result.attempts_left <= 2:
        return _("Wrong employee number or password. {n} attempts left before the account locks.").format(
            n=result.attempts_left
        )
    return _("Wrong employee number or password.")


@get("/login", opt=needs(Permission.PUBLIC), sync_to_thread=False)
def login_page(request: AnyRequest, next: FromQuery[str] = "/") -> Template:
    return Template("login.html", context={"next": safe_next(next), "error": "", "username": ""})


@post("/login", opt=needs(Permission.PUBLIC), status_code=200)
async def login(request: AnyRequest, data: URLEncodedBody[LoginForm]) -> Response[Any]:
    settings = settings_of(request)
    actor = actor_of(request)
    result = await check_password(settings, data.username, data.password, actor)
    if result.person_id is None:
        status = 429 if result.failure is Failure.THROTTLED else 401
        if result.failure is Failure.LOCKED:
            status = 423
        return Template(
            "login.html",
            context={
                "next": safe_next(data.next),
                "error": failure_message(result, settings.login_lockout_minutes),
                "username": data.username[:32],
            },
            status_code=status,
        )
    async with write_transaction(Person._meta.db):
        token = await open_session(
            result.person_id, settings.session_hours, actor.ip, request.headers.get("user-agent", "")
        )
        await audit.record(
            "auth.login",
            msgspec.structs.replace(actor, id=result.person_id, name=result.person_name),
            target_type="person",
            target_id=result.person_id,
            after={"method": "password"},
        )
    old = cookie_value(request.scope, SESSION_COOKIE)
    if old:
        await close_session(old)
    response = Redirect(safe_next(data.next), status_code=303)
    response.set_cookie(
        Cookie(
            key=SESSION_COOKIE,
            value=token,
            httponly=True,
            secure=not settings.dev,
            samesite="lax",
            max_age=settings.session_hours * 3600,
            path="/",
        )
    )
    return response


@post("/logout", opt=needs(Permission.PUBLIC), status_code=303)
async def logout(request: AnyRequest) -> Redirect:
    token = cookie_value(request.scope, SESSION_COOKIE)
    if token:
        async with write_transaction(Person._meta.db):
            person_id = await close_session(token)
            if person_id is not None:
                await audit.record(
                    "auth.logout", actor_of(request), target_type="person", target_id=person_id
                )
    response = Redirect("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


class LanguageForm(msgspec.Struct, kw_only=True):
    lang: str = "zh-CN"
    next: Annotated[str, msgspec.Meta(max_length=2000)] = "/"


@post("/language", opt=needs(Permission.PUBLIC), status_code=303)
async def switch_language(
    data: URLEncodedBody[LanguageForm],
) -> Redirect:
    response = Redirect(safe_next(data.next), status_code=303)
    lang = data.lang if data.lang in LOCALES else "zh-CN"
    response.set_cookie(Cookie(key=LOCALE_COOKIE, value=lang, max_age=365 * 86400, samesite="lax", path="/"))
    return response


@post("/api/v1/auth/token", opt=needs(Permission.PUBLIC), status_code=201)
async def create_token(request: AnyRequest, data: JSONBody[TokenRequest]) -> TokenResponse:
    """Exchange an employee number and password for a personal access token (Bearer)."""
    settings = settings_of(request)
    actor = actor_of(request)
    result = await check_password(settings, data.username, data.password, actor, method="token")
    if result.person_id is None:
        raise NotAuthorizedException(failure_message(result, settings.login_lockout_minutes))
    async with write_transaction(Person._meta.db):
        token_id, token = await issue_api_token(result.person_id, data.name, data.days)
        await audit.record(
            "auth.token_created",
            msgspec.structs.replace(actor, id=result.person_id, name=result.person_name),
            target_type="api_token",
            target_id=token_id,
            after={"name": data.name, "days": data.days, "at": datetime.now(UTC)},
        )
    return TokenResponse(token=token, id=token_id, expires_in_days=data.days)


ROUTES = [login_page, login, logout, switch_language, create_token]

"""Sign-in and sign-out: password, single sign-on (OpenID Connect), passkeys; the language switch
and the token API.

Every way in ends the same: a new server-side session (any previous one of this browser is
closed), an `auth.login` audit entry naming the method (`password`, `sso` with the provider,
`passkey`), and a redirect to the page the person asked for. Every refusal shows a clear
message on the login page and writes `auth.login_failed` with the method and the reason.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlparse

import msgspec
from litestar import Response, get, post
from litestar.datastructures import Cookie
from litestar.exceptions import NotAuthorizedException, NotFoundException, PermissionDeniedException
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter, URLEncodedBody
from litestar.response import Redirect, Template

from storage import audit
from storage.access import Permission
from storage.database import write_transaction
from storage.org import load_principal
from storage.tables import Person
from web.auth import challenges, oidc, passkeys, sso
from web.auth.guards import needs
from web.auth.middleware import cookie_value
from web.auth.oidc_config import OidcProvider, parse_providers
from web.auth.sessions import (
    SESSION_COOKIE,
    close_session,
    issue_api_token,
    open_session,
    remember_sso,
    sso_of_session,
)
from web.auth.signin import Failure, SignInResult, check_password, record_failure
from web.context import AnyRequest, actor_of, settings_of
from web.i18n import LOCALE_COOKIE, LOCALES, _
from web.settings import Settings, secret_key

ShortText = Annotated[str, msgspec.Meta(max_length=200)]
NextPath = Annotated[str, msgspec.Meta(max_length=2000)]


class LoginForm(msgspec.Struct, kw_only=True):
    username: ShortText = ""
    password: ShortText = ""
    next: NextPath = "/"


class TokenRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    username: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] = "api"
    days: Annotated[int, msgspec.Meta(ge=1, le=366)] | None = 90


class TokenResponse(msgspec.Struct, kw_only=True):
    token: str
    id: int
    expires_in_days: int | None


class PasskeyAnswer(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    credential: dict[str, Any]
    next: NextPath = "/"


def safe_next(target: str) -> str:
    """Only same-site paths: `/x?y`, never `//host` or `https://host`."""
    parts = urlparse(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    if "\\" in target:
        return "/"
    return target


def public_origin(request: AnyRequest) -> str:
    """`FORMFLOW_BASE_URL` when set (required in production for SSO), else this request's origin."""
    base = settings_of(request).base_url.rstrip("/")
    if base:
        return base
    return f"{request.url.scheme}://{request.url.netloc}"


def failure_message(result: SignInResult, lockout_minutes: int) -> str:
    if result.failure is Failure.LOCKED:
        return _("Too many failed attempts: this account is locked for {minutes} minutes.").format(
            minutes=lockout_minutes
        )
    if result.failure is Failure.THROTTLED:
        return _("Too many failed sign-ins from your network. Wait ten minutes and try again.")
    if result.failure is Failure.PASSKEY_REQUIRED:
        return _("Your role signs in with a passkey: choose “Sign in with a passkey”.")
    if result.attempts_left is not None and result.attempts_left <= 2:
        return _("Wrong employee number or password. {n} attempts left before the account locks.").format(
            n=result.attempts_left
        )
    return _("Wrong employee number or password.")


def sso_message(reason: str, who: str = "") -> str:
    messages: dict[str, str] = {
        oidc.Reason.BAD_STATE: _(
            "The sign-in took too long or was started in another browser. Please start again."
        ),
        oidc.Reason.PROVIDER_ERROR: _("The company sign-in was cancelled or refused."),
        oidc.Reason.PROVIDER_UNREACHABLE: _(
            "The company sign-in service cannot be reached. Try again later."
        ),
        oidc.Reason.TOKEN_EXCHANGE_FAILED: _(
            "The company sign-in service did not confirm the sign-in. Please start again."
        ),
        oidc.Reason.BAD_SIGNATURE: _(
            "The company sign-in answer is not genuine: its signature does not verify. Please start again."
        ),
        oidc.Reason.INVALID_TOKEN: _("The company sign-in answer cannot be read. Please start again."),
        oidc.Reason.EXPIRED: _("The company sign-in answer has expired. Please start again."),
        oidc.Reason.WRONG_ISSUER: _("The company sign-in answer comes from an unexpected issuer."),
        oidc.Reason.WRONG_AUDIENCE: _("The company sign-in answer was issued for another application."),
        oidc.Reason.WRONG_NONCE: _(
            "The company sign-in answer does not belong to this sign-in (nonce mismatch). Please start again."
        ),
        oidc.Reason.MISSING_CLAIM: _(
            "Your company account does not say who you are in Formflow. Ask an administrator."
        ),
        sso.Refusal.UNKNOWN_PERSON: _(
            "No Formflow account matches your company account ({who}). Ask an administrator to add you."
        ),
        sso.Refusal.AMBIGUOUS_EMAIL: _(
            "Several Formflow accounts share the e-mail address {who}. Ask an administrator."
        ),
        sso.Refusal.UNVERIFIED_EMAIL: _("Your company account's e-mail address is not verified."),
        sso.Refusal.INACTIVE: _("This account is deactivated."),
        sso.Refusal.CANNOT_CREATE: _(
            "Your Formflow account could not be created automatically ({who}). Ask an administrator."
        ),
        Failure.PASSKEY_REQUIRED: _("Your role signs in with a passkey: choose “Sign in with a passkey”."),
    }
    return messages.get(reason, _("The company sign-in failed. Please start again.")).format(who=who or "—")


def passkey_message(reason: passkeys.Reason) -> str:
    return {
        passkeys.Reason.CHALLENGE_USED_OR_EXPIRED: _(
            "This passkey answer was already used or has expired. Please try again."
        ),
        passkeys.Reason.UNKNOWN_PASSKEY: _("This passkey is not registered in Formflow."),
        passkeys.Reason.REVOKED: _("This passkey was revoked. Sign in another way."),
        passkeys.Reason.REPLAYED: _(
            "This passkey answer was replayed (its counter did not go up). Sign in again; "
            "if this repeats, revoke the passkey."
        ),
        passkeys.Reason.INACTIVE: _("This account is deactivated."),
        passkeys.Reason.ALREADY_REGISTERED: _("This passkey is already registered."),
    }.get(reason, _("The passkey could not be verified. Please try again."))


def login_context(settings: Settings, next_path: str, error: str = "", username: str = "") -> dict[str, Any]:
    providers = parse_providers(settings.oidc_providers)
    return {
        "next": safe_next(next_path),
        "error": error,
        "username": username,
        "password_login": settings.password_login,
        "providers": list(providers.values()),
    }


def _login_page(request: AnyRequest, next_path: str, error: str, status: int, username: str = "") -> Template:
    context = login_context(settings_of(request), next_path, error, username)
    return Template("login.html", context=context, status_code=status)


@get("/login", opt=needs(Permission.PUBLIC), sync_to_thread=False)
def login_page(request: AnyRequest, next: FromQuery[str] = "/") -> Template:
    return Template("login.html", context=login_context(settings_of(request), next))


async def _open(
    request: AnyRequest,
    person_id: int,
    person_name: str,
    method: str,
    details: dict[str, Any] | None = None,
) -> str:
    """A new session and its `auth.login` entry; call inside the sign-in's write transaction."""
    settings = settings_of(request)
    actor = actor_of(request)
    token = await open_session(
        person_id, settings.session_hours, actor.ip, request.headers.get("user-agent", "")
    )
    await audit.record(
        "auth.login",
        msgspec.structs.replace(actor, id=person_id, name=person_name),
        target_type="person",
        target_id=person_id,
        after={"method": method, **(details or {})},
    )
    return token


async def _landing(settings: Settings, person_id: int, target: str) -> str:
    """Where to go after signing in: an admin who must first register a passkey goes to the profile."""
    principal = await load_principal(person_id)
    if principal is not None and await passkeys.must_enrol(settings, principal):
        return "/profile#passkeys"
    return safe_next(target)


async def _with_session(request: AnyRequest, response: Response[Any], token: str) -> Response[Any]:
    settings = settings_of(request)
    old = cookie_value(request.scope, SESSION_COOKIE)
    if old:
        await close_session(old)
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
    response.delete_cookie(challenges.SIGNIN_COOKIE, path="/auth")
    return response


@post("/login", opt=needs(Permission.PUBLIC), status_code=200)
async def login(request: AnyRequest, data: URLEncodedBody[LoginForm]) -> Response[Any]:
    settings = settings_of(request)
    actor = actor_of(request)
    if not settings.password_login:
        async with write_transaction(Person._meta.db):
            await record_failure(
                actor, data.username.strip()[:32], Failure.PASSWORD_DISABLED.value, "password"
            )
        message = _("Password sign-in is switched off here: use your company account.")
        return _login_page(request, data.next, message, 403)
    result = await check_password(settings, data.username, data.password, actor)
    if result.person_id is None:
        statuses = {Failure.THROTTLED: 429, Failure.LOCKED: 423, Failure.PASSKEY_REQUIRED: 403}
        status = statuses.get(result.failure, 401) if result.failure else 401
        message = failure_message(result, settings.login_lockout_minutes)
        return _login_page(request, data.next, message, status, data.username[:32])
    async with write_transaction(Person._meta.db):
        token = await _open(request, result.person_id, result.person_name, "password")
    target = await _landing(settings, result.person_id, data.next)
    return await _with_session(request, Redirect(target, status_code=303), token)


def _provider(request: AnyRequest, name: str) -> OidcProvider:
    provider = parse_providers(settings_of(request).oidc_providers).get(name)
    if provider is None:
        raise NotFoundException(f"no identity provider named {name!r}")
    return provider


def _redirect_uri(request: AnyRequest, provider: OidcProvider) -> str:
    return f"{public_origin(request)}/auth/sso/{provider.name}/callback"


def _binding_cookie(value: str) -> Cookie:
    return Cookie(
        key=challenges.SIGNIN_COOKIE,
        value=value,
        httponly=True,
        samesite="lax",
        max_age=challenges.SIGNIN_COOKIE_SECONDS,
        path="/auth",
    )


async def _sso_refused(
    request: AnyRequest, provider: OidcProvider, reason: str, status: int, who: str = "", next_path: str = "/"
) -> Template:
    async with write_transaction(Person._meta.db):
        await record_failure(actor_of(request), who[:32], reason, "sso", provider=provider.name)
    return _login_page(request, next_path, sso_message(reason, who), status)


@get("/auth/sso/{name:str}", opt=needs(Permission.PUBLIC))
async def sso_start(request: AnyRequest, name: FromPath[str], next: FromQuery[str] = "/") -> Response[Any]:
    """Send the browser to the identity provider (authorization code flow with PKCE)."""
    provider = _provider(request, name)
    binding = challenges.new_binding()
    try:
        async with write_transaction(Person._meta.db):
            started = await oidc.begin(
                provider, _redirect_uri(request, provider), binding, safe_next(next[:2000])
            )
    except oidc.SsoError as exc:
        return await _sso_refused(request, provider, exc.reason.value, 502, next_path=next[:2000])
    response: Response[Any] = Redirect(started.url, status_code=303)
    response.set_cookie(_binding_cookie(binding))
    return response


@get("/auth/sso/{name:str}/callback", opt=needs(Permission.PUBLIC))
async def sso_callback(
    request: AnyRequest,
    name: FromPath[str],
    code: FromQuery[str] = "",
    oauth_state: Annotated[str, QueryParameter(name="state")] = "",
    error: FromQuery[str] = "",
) -> Response[Any]:
    """The provider sends the browser back here with a code (or an error) and the state."""
    settings = settings_of(request)
    provider = _provider(request, name)
    async with write_transaction(Person._meta.db):
        pending = await challenges.take(
            challenges.Purpose.SSO, oauth_state[:200], cookie_value(request.scope, challenges.SIGNIN_COOKIE)
        )
    if pending is None:
        return await _sso_refused(request, provider, oidc.Reason.BAD_STATE.value, 400)
    next_path = str(pending.data.get("next") or "/")
    if error or not code:
        return await _sso_refused(
            request, provider, oidc.Reason.PROVIDER_ERROR.value, 401, next_path=next_path
        )
    try:
        identity = await oidc.finish(provider, pending, code[:2000], _redirect_uri(request, provider))
    except oidc.SsoError as exc:
        return await _sso_refused(request, provider, exc.reason.value, 401, next_path=next_path)
    who = identity.employee_no if provider.match_by == "employee_no" else identity.email
    actor = actor_of(request)
    async with write_transaction(Person._meta.db):
        match = await sso.match_person(settings, provider, identity, actor)
        refusal: str | None = match.refusal.value if match.refusal else None
        if match.person_id is not None:
            principal = await load_principal(match.person_id)
            roles = principal.roles if principal else frozenset()
            if await passkeys.passkey_required(settings, match.person_id, roles):
                refusal = Failure.PASSKEY_REQUIRED.value
        if refusal is None and match.person_id is not None:
            details = {"provider": provider.name, "subject": identity.subject[:200], "created": match.created}
            token = await _open(request, match.person_id, match.person_name, "sso", details)
            await remember_sso(token, provider.name, identity.id_token)
    if refusal is not None or match.person_id is None:
        return await _sso_refused(request, provider, refusal or "unknown_person", 403, who, next_path)
    target = await _landing(settings, match.person_id, next_path)
    return await _with_session(request, Redirect(target, status_code=303), token)


@post("/auth/passkey/options", opt=needs(Permission.PUBLIC), status_code=200)
async def passkey_options(request: AnyRequest) -> Response[Any]:
    """A fresh challenge for `navigator.credentials.get`, bound to this browser."""
    rp = passkeys.relying_party(settings_of(request), public_origin(request))
    binding = challenges.new_binding()
    async with write_transaction(Person._meta.db):
        options = await passkeys.sign_in_options(rp, binding)
    response: Response[Any] = Response(
        content=options.encode(), media_type="application/json", headers={"cache-control": "no-store"}
    )
    response.set_cookie(_binding_cookie(binding))
    return response


@post("/auth/passkey/sign-in", opt=needs(Permission.PUBLIC), status_code=200)
async def passkey_sign_in(request: AnyRequest, data: JSONBody[PasskeyAnswer]) -> Response[Any]:
    """Verify the passkey's answer and open a session; JSON `{"redirect"}` or `{"detail"}`."""
    settings = settings_of(request)
    rp = passkeys.relying_party(settings, public_origin(request))
    binding = cookie_value(request.scope, challenges.SIGNIN_COOKIE)
    actor = actor_of(request)
    failure: passkeys.PasskeyError | None = None
    # One transaction either way: a refused answer still uses up its challenge.
    async with write_transaction(Person._meta.db):
        try:
            credential = msgspec.json.encode(data.credential).decode()
            signed = await passkeys.sign_in(rp, binding, credential, secret_key(settings))
            details = {"passkey_id": signed.passkey_id, "passkey": signed.passkey_name}
            token = await _open(request, signed.person_id, signed.person_name, "passkey", details)
        except passkeys.PasskeyError as exc:
            failure = exc
            row = None
            if exc.person_id is not None:
                row = await Person.select(Person.employee_no).where(Person.id == exc.person_id).first()
            who = row["employee_no"] if row else ""
            await record_failure(actor, who, exc.reason.value, "passkey", person_id=exc.person_id)
    if failure is not None:
        return Response(
            {"detail": passkey_message(failure.reason), "reason": failure.reason.value},
            status_code=400 if failure.reason is passkeys.Reason.MALFORMED else 401,
        )
    target = await _landing(settings, signed.person_id, data.next)
    return await _with_session(request, Response({"redirect": target}), token)


@post("/logout", opt=needs(Permission.PUBLIC), status_code=303)
async def logout(request: AnyRequest) -> Redirect:
    """End the local session; after an SSO sign-in, continue to the provider's logout when it has one."""
    token = cookie_value(request.scope, SESSION_COOKIE)
    target = "/login"
    if token:
        signed_in_by = await sso_of_session(token)
        async with write_transaction(Person._meta.db):
            person_id = await close_session(token)
            if person_id is not None:
                await audit.record(
                    "auth.logout",
                    actor_of(request),
                    target_type="person",
                    target_id=person_id,
                    after={"method": "sso", "provider": signed_in_by[0]} if signed_in_by else None,
                )
        if signed_in_by is not None:
            target = await _provider_logout(request, *signed_in_by) or target
    response = Redirect(target, status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


async def _provider_logout(request: AnyRequest, name: str, id_token: str) -> str | None:
    provider = parse_providers(settings_of(request).oidc_providers).get(name)
    if provider is None:
        return None
    try:
        meta = await oidc.metadata(provider)
    except oidc.SsoError:
        return None
    return oidc.end_session_url(meta, provider, id_token, f"{public_origin(request)}/login")


class LanguageForm(msgspec.Struct, kw_only=True):
    lang: str = "zh-CN"
    next: NextPath = "/"


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
    if not settings.password_login:
        async with write_transaction(Person._meta.db):
            await record_failure(actor, data.username, Failure.PASSWORD_DISABLED.value, "token")
        raise PermissionDeniedException("password sign-in is switched off on this deployment")
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


ROUTES = [
    login_page,
    login,
    sso_start,
    sso_callback,
    passkey_options,
    passkey_sign_in,
    logout,
    switch_language,
    create_token,
]

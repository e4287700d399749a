"""Single sign-on through OpenID Connect: the good path and every refused answer.

The identity provider is played by an `httpx.MockTransport` that serves discovery, keys, the
token endpoint (checking the PKCE verifier against the challenge it was sent) and userinfo. ID
tokens are signed with joserfc and a test RSA key; each bad case changes one thing about them.
Each refusal must show a clear message on the login page, open no session and write an
`auth.login_failed` entry naming the method, the provider and the reason.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import msgspec
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from litestar import Litestar
from litestar.testing import AsyncTestClient

from storage.tables import AuditEntry, Department, Person, SsoSession, UserSession
from tests.web.session import Client, csrf_from, sign_in
from web.app import create_app
from web.auth import oidc
from web.settings import Settings, SettingsError, load_settings

ISSUER = "https://sso.example.test"
CLIENT_ID = "formflow"
PROVIDER = {"name": "corp", "issuer": ISSUER, "client_id": CLIENT_ID, "client_secret": "s3cret"}
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256", "use": "sig"})
STRANGER_KEY = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256", "use": "sig"})
NEXT_KEY = RSAKey.generate_key(2048, parameters={"kid": "k2", "alg": "RS256", "use": "sig"})


class FakeProvider:
    """The provider's HTTP side; the test decides what the next ID token says."""

    def __init__(self) -> None:
        self.challenge = ""
        self.claims: dict[str, Any] = {}
        self.key = KEY
        self.published = [KEY]
        self.tamper = False
        self.token_requests: list[dict[str, list[str]]] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/.well-known/openid-configuration":
            return httpx.Response(
                200,
                json={
                    "issuer": ISSUER,
                    "authorization_endpoint": f"{ISSUER}/auth",
                    "token_endpoint": f"{ISSUER}/token",
                    "jwks_uri": f"{ISSUER}/jwks",
                    "userinfo_endpoint": f"{ISSUER}/userinfo",
                    "end_session_endpoint": f"{ISSUER}/logout",
                    "id_token_signing_alg_values_supported": ["RS256"],
                },
            )
        if path == "/jwks":
            return httpx.Response(200, json=KeySet(self.published).as_dict(private=False))
        if path == "/token":
            form = parse_qs(request.content.decode())
            self.token_requests.append(form)
            verifier = form["code_verifier"][0]
            expected = (
                base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            )
            if expected != self.challenge or request.headers.get("authorization", "").lower()[:6] != "basic ":
                return httpx.Response(400, json={"error": "invalid_grant"})
            return httpx.Response(
                200, json={"access_token": "at", "token_type": "Bearer", "id_token": self.id_token()}
            )
        if path == "/userinfo":
            return httpx.Response(200, json={"sub": self.claims.get("sub", "u-1")})
        return httpx.Response(404)

    def id_token(self) -> str:
        token = jwt.encode({"alg": "RS256", "kid": self.key.kid}, self.claims, self.key)
        if self.tamper:
            header, _, signature = token.split(".")
            claims = {**self.claims, "employee_no": "admin"}
            body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
            token = f"{header}.{body}.{signature}"
        return token


@pytest.fixture()
def provider(monkeypatch: pytest.MonkeyPatch) -> FakeProvider:
    fake = FakeProvider()
    monkeypatch.setattr(oidc, "transport", httpx.MockTransport(fake.handle))
    oidc.forget_cached_metadata()
    return fake


def _settings(**changes: Any) -> Settings:
    return msgspec.structs.replace(load_settings(), oidc_providers=json.dumps([PROVIDER]), **changes)


@pytest.fixture()
async def sso_app(db: None) -> Litestar:
    return create_app(_settings())


@pytest.fixture()
async def browser(sso_app: Litestar) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=sso_app, base_url="http://testserver.local") as c:
        yield c


@pytest.fixture()
async def other_browser(sso_app: Litestar) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=sso_app, base_url="http://testserver.local") as c:
        yield c


def good_claims(nonce: str, /, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": CLIENT_ID,
        "sub": "u-1",
        "iat": now,
        "exp": now + 300,
        "nonce": nonce,
        "employee_no": "e1001",
        "name": "张伟",
        "email": "e1001@demo.formflow.local",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


async def start(
    browser: Client, provider: FakeProvider, next_path: str = "/process-center"
) -> dict[str, str]:
    response = await browser.get(f"/auth/sso/corp?next={next_path}", follow_redirects=False)
    assert response.status_code == 303, response.text
    location = urlparse(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{ISSUER}/auth"
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["code_challenge_method"] == "S256" and query["response_type"] == "code"
    assert query["redirect_uri"] == "http://testserver.local/auth/sso/corp/callback"
    provider.challenge = query["code_challenge"]
    return query


async def come_back(browser: Client, query: dict[str, str]) -> httpx.Response:
    return await browser.get(
        f"/auth/sso/corp/callback?code=the-code&state={query['state']}", follow_redirects=False
    )


async def last_failure() -> dict[str, Any]:
    entry = (
        await AuditEntry.select()
        .where(AuditEntry.action == "auth.login_failed")
        .order_by(AuditEntry.id, ascending=False)
        .first()
        .output(load_json=True)
    )
    assert entry is not None, "the refusal was not audited"
    return entry


async def test_e1001_signs_in_with_the_company_account_and_lands_where_they_were_going(
    browser: Client, provider: FakeProvider
) -> None:
    query = await start(browser, provider)
    provider.claims = good_claims(query["nonce"])
    response = await come_back(browser, query)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/process-center"
    assert provider.token_requests[0]["code_verifier"], "the code is exchanged with the PKCE verifier"
    page = await browser.get("/process-center", headers={"accept": "text/html"})
    assert page.status_code == 200 and "张伟" in page.text
    entry = await AuditEntry.select().where(AuditEntry.action == "auth.login").first().output(load_json=True)
    assert entry["after"]["method"] == "sso" and entry["after"]["provider"] == "corp"
    assert entry["actor_name"] == "张伟"
    assert await SsoSession.count() == 1


def _expired(nonce: str) -> dict[str, Any]:
    return good_claims(nonce, iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)


BAD_ANSWERS = [
    ("wrong nonce", lambda n: good_claims("not-the-nonce"), {}, "wrong_nonce", "nonce 不符"),
    ("expired", _expired, {}, "expired_token", "应答已过期"),
    ("tampered", good_claims, {"tamper": True}, "bad_signature", "签名校验失败"),
    ("signed by a stranger", good_claims, {"key": STRANGER_KEY}, "bad_signature", "签名校验失败"),
    ("signed by an unpublished key", good_claims, {"key": NEXT_KEY}, "bad_signature", "签名校验失败"),
    ("wrong audience", lambda n: good_claims(n, aud="another-app"), {}, "wrong_audience", "签发给其他应用"),
    ("wrong issuer", lambda n: good_claims(n, iss="https://evil.test"), {}, "wrong_issuer", "未配置的签发方"),
    ("no nonce", lambda n: good_claims(n, nonce=None), {}, "wrong_nonce", "nonce 不符"),
]


@pytest.mark.parametrize(
    ("case", "claims", "provider_changes", "reason", "message"), BAD_ANSWERS, ids=[c[0] for c in BAD_ANSWERS]
)
async def test_a_bad_id_token_is_refused_with_a_message_and_an_audit_entry(
    browser: Client,
    provider: FakeProvider,
    case: str,
    claims: Any,
    provider_changes: dict[str, Any],
    reason: str,
    message: str,
) -> None:
    query = await start(browser, provider)
    provider.claims = claims(query["nonce"])
    for name, value in provider_changes.items():
        setattr(provider, name, value)
    response = await come_back(browser, query)
    assert response.status_code == 401, f"{case}: {response.status_code}"
    assert message in response.text, case
    assert await UserSession.count() == 0
    failure = await last_failure()
    assert failure["after"] == {"reason": reason, "method": "sso", "employee_no": "", "provider": "corp"}


async def test_a_rotated_signing_key_is_fetched_again(browser: Client, provider: FakeProvider) -> None:
    query = await start(browser, provider)
    provider.claims = good_claims(query["nonce"])
    assert (await come_back(browser, query)).status_code == 303
    browser.cookies.delete("formflow_session")
    provider.key, provider.published = NEXT_KEY, [NEXT_KEY]  # the provider rotated its key
    query = await start(browser, provider)
    provider.claims = good_claims(query["nonce"])
    assert (await come_back(browser, query)).status_code == 303


async def test_the_answer_only_counts_in_the_browser_that_asked_and_only_once(
    browser: Client, other_browser: Client, provider: FakeProvider
) -> None:
    query = await start(browser, provider)
    provider.claims = good_claims(query["nonce"])
    stolen = await come_back(other_browser, query)  # no sign-in cookie: begun elsewhere
    assert stolen.status_code == 400 and "在另一个浏览器中开始" in stolen.text
    assert (await last_failure())["after"]["reason"] == "bad_state"
    again = await come_back(browser, query)  # the state was used up by the first answer
    assert again.status_code == 400
    assert await UserSession.count() == 0


async def test_a_provider_error_is_shown_and_audited(browser: Client, provider: FakeProvider) -> None:
    query = await start(browser, provider)
    response = await browser.get(
        f"/auth/sso/corp/callback?error=access_denied&state={query['state']}", follow_redirects=False
    )
    assert response.status_code == 401 and "已取消或被拒绝" in response.text
    assert (await last_failure())["after"]["reason"] == "provider_error"


async def test_an_unknown_person_is_refused_by_default(browser: Client, provider: FakeProvider) -> None:
    query = await start(browser, provider)
    provider.claims = good_claims(query["nonce"], employee_no="x9999")
    response = await come_back(browser, query)
    assert response.status_code == 403
    assert "没有与您的企业账号（x9999）对应的 Formflow 账号" in response.text
    failure = await last_failure()
    assert failure["after"]["reason"] == "unknown_person" and failure["actor_name"] == "x9999"
    assert not await Person.exists().where(Person.employee_no == "x9999")


async def test_an_unknown_person_is_created_as_an_employee_when_the_admin_allows_it(
    db: None, provider: FakeProvider
) -> None:
    app = create_app(_settings(sso_unknown_people="create", sso_default_department="MKT"))
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as browser:
        query = await start(browser, provider)
        provider.claims = good_claims(query["nonce"], employee_no="x9999", name="新同事")
        response = await come_back(browser, query)
        assert response.status_code == 303
    person = (
        await Person.select(Person.name, Person.department.code).where(Person.employee_no == "x9999").first()
    )
    assert person == {"name": "新同事", "department.code": "MKT"}
    assert await AuditEntry.exists().where(AuditEntry.action == "org.person_created")
    assert await Department.exists().where(Department.code == "MKT")


async def test_people_can_be_matched_by_email(db: None, provider: FakeProvider) -> None:
    by_email = {**PROVIDER, "match_by": "email"}
    app = create_app(msgspec.structs.replace(load_settings(), oidc_providers=json.dumps([by_email])))
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as browser:
        query = await start(browser, provider)
        provider.claims = good_claims(query["nonce"], employee_no=None, email="E2001@Demo.Formflow.Local")
        response = await come_back(browser, query)
        assert response.status_code == 303
        page = await browser.get("/", headers={"accept": "text/html"})
        assert "王芳" in page.text


async def test_logout_ends_the_session_here_and_at_the_provider(
    browser: Client, provider: FakeProvider
) -> None:
    query = await start(browser, provider)
    provider.claims = good_claims(query["nonce"])
    await come_back(browser, query)
    page = await browser.get("/", headers={"accept": "text/html"})
    response = await browser.post(
        "/logout", data={"_csrf_token": csrf_from(page.text)}, follow_redirects=False
    )
    assert response.status_code == 303
    location = urlparse(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{ISSUER}/logout"
    logout = parse_qs(location.query)
    assert logout["post_logout_redirect_uri"] == ["http://testserver.local/login"]
    assert logout["id_token_hint"] and logout["client_id"] == [CLIENT_ID]
    assert await UserSession.count() == 0 and await SsoSession.count() == 0


async def test_password_sign_in_can_be_switched_off(db: None, provider: FakeProvider) -> None:
    app = create_app(_settings(password_login=False))
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as browser:
        page = await browser.get("/login", headers={"accept": "text/html"})
        assert "使用企业账号登录" in page.text and 'name="password"' not in page.text
        response = await browser.post(
            "/login",
            data={"username": "e1001", "password": "formflow", "_csrf_token": csrf_from(page.text)},
            follow_redirects=False,
        )
        assert response.status_code == 403 and "已关闭密码登录" in response.text
        assert (await last_failure())["after"]["reason"] == "password_disabled"
        token = await browser.post("/api/v1/auth/token", json={"username": "e1001", "password": "formflow"})
        assert token.status_code == 403
    assert await UserSession.count() == 0


async def test_the_login_page_offers_the_company_account_beside_the_password(browser: Client) -> None:
    page = await browser.get("/login?next=/inbox", headers={"accept": "text/html"})
    assert (
        'href="/auth/sso/corp?next=/inbox"' in page.text or 'href="/auth/sso/corp?next=%2Finbox"' in page.text
    )
    assert "使用企业账号登录" in page.text and "使用通行密钥登录" in page.text
    await sign_in(browser, "e1001")  # the password still works


async def test_an_unknown_provider_is_not_found(browser: Client) -> None:
    response = await browser.get("/auth/sso/nobody", headers={"accept": "text/html"}, follow_redirects=False)
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not json", "FORMFLOW_OIDC_PROVIDERS: not valid JSON"),
        ('[{"name": "corp"}]', "FORMFLOW_OIDC_PROVIDERS: Object missing required field `issuer`"),
        (
            '[{"name": "corp", "issuer": "http://sso.example.com", "client_id": "x"}]',
            "FORMFLOW_OIDC_PROVIDERS: provider 0 (corp): issuer must use https",
        ),
        (
            '[{"name": "corp", "issuer": "https://sso.example.com", "client_id": "x", "scopes": ["email"]}]',
            "FORMFLOW_OIDC_PROVIDERS: provider 0 (corp): scopes must include openid",
        ),
        ('[{"name": "Corp!", "issuer": "https://a.example", "client_id": "x"}]', "FORMFLOW_OIDC_PROVIDERS:"),
    ],
)
def test_bad_provider_settings_stop_start_up_naming_the_variable(value: str, message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({"FORMFLOW_OIDC_PROVIDERS": value})
    assert str(raised.value).startswith(message)

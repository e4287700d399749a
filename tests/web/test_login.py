"""Signing in and out in the browser: messages, audit entries, sessions, lockout, CSRF."""

from __future__ import annotations

from storage.tables import AuditEntry, Person, UserSession
from tests.web.session import Client, csrf_from, sign_in


async def _post_login(client: Client, username: str, password: str) -> tuple[int, str]:
    page = await client.get("/login", headers={"accept": "text/html"})
    response = await client.post(
        "/login",
        data={"username": username, "password": password, "_csrf_token": csrf_from(page.text)},
        follow_redirects=False,
    )
    return response.status_code, response.text


async def test_admin_signs_in_and_sees_the_admin_page(client: Client) -> None:
    await sign_in(client, "admin")
    page = await client.get("/admin", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "组织架构" in page.text and "市场部" in page.text
    assert await AuditEntry.exists().where(AuditEntry.action == "auth.login")


async def test_wrong_password_shows_a_clear_message_audits_and_opens_no_session(client: Client) -> None:
    status, html = await _post_login(client, "e1001", "not-the-password")
    assert status == 401
    assert "工号或密码错误" in html
    assert await UserSession.count() == 0
    entry = (
        await AuditEntry.select()
        .where(AuditEntry.action == "auth.login_failed")
        .first()
        .output(load_json=True)
    )
    assert entry["actor_name"] == "e1001"
    assert entry["after"]["reason"] == "bad_credentials"
    assert (await client.get("/", headers={"accept": "text/html"}, follow_redirects=False)).status_code == 302


async def test_unknown_employee_number_gets_the_same_message(client: Client) -> None:
    status, html = await _post_login(client, "nobody", "formflow")
    assert status == 401
    assert "工号或密码错误" in html


async def test_repeated_failures_lock_the_account_even_for_the_right_password(client: Client) -> None:
    for attempt in range(4):
        status, html = await _post_login(client, "e1001", f"wrong-{attempt}")
        assert status == 401
    assert "再失败 1 次账号将被锁定" in html
    status, html = await _post_login(client, "e1001", "wrong-last")
    assert status == 423
    assert "账号已锁定 15 分钟" in html
    status, html = await _post_login(client, "e1001", "formflow")
    assert status == 423, "a locked account must refuse the right password too"
    person = await Person.objects().where(Person.employee_no == "e1001").first()
    assert person.locked_until is not None
    assert await UserSession.count() == 0


async def test_sign_in_issues_a_new_session_id_and_logout_ends_it(client: Client) -> None:
    await sign_in(client, "e1001")
    first = client.cookies.get("formflow_session")
    token = await sign_in(client, "e1001")
    second = client.cookies.get("formflow_session")
    assert first and second and first != second
    assert await UserSession.count() == 1, "the previous session is closed at the new sign-in"
    response = await client.post("/logout", data={"_csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303
    assert await UserSession.count() == 0
    assert await AuditEntry.exists().where(AuditEntry.action == "auth.logout")


async def test_post_without_csrf_token_is_refused(client: Client) -> None:
    await client.get("/login", headers={"accept": "text/html"})
    response = await client.post("/login", data={"username": "admin", "password": "formflow"})
    assert response.status_code == 403
    assert await UserSession.count() == 0


async def test_login_redirect_never_leaves_the_site(client: Client) -> None:
    page = await client.get("/login", headers={"accept": "text/html"})
    response = await client.post(
        "/login",
        data={
            "username": "e1001",
            "password": "formflow",
            "next": "//evil.example/x",
            "_csrf_token": csrf_from(page.text),
        },
        follow_redirects=False,
    )
    assert response.headers["location"] == "/"


async def test_pages_need_a_session_and_send_the_browser_to_login(client: Client) -> None:
    response = await client.get("/inbox", headers={"accept": "text/html"}, follow_redirects=False)
    assert response.status_code == 302
    assert response.headers["location"] == "/login?next=/inbox"


async def test_session_cookie_flags(client: Client) -> None:
    page = await client.get("/login", headers={"accept": "text/html"})
    response = await client.post(
        "/login",
        data={"username": "e1001", "password": "formflow", "_csrf_token": csrf_from(page.text)},
        follow_redirects=False,
    )
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie


async def test_english_switch(client: Client) -> None:
    page = await client.get("/login", headers={"accept": "text/html"})
    response = await client.post(
        "/language",
        data={"lang": "en", "next": "/login", "_csrf_token": csrf_from(page.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303
    page = await client.get("/login", headers={"accept": "text/html"})
    assert "Employee number" in page.text and 'lang="en"' in page.text

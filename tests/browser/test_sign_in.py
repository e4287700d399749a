"""Single sign-on and passkeys in a real browser, against real peers.

The module starts its own stack: the certified `oidc-provider` package (Node.js, from
`node_modules`, see tests/oidc_provider/provider.mjs) on a free loopback port with Formflow
registered as a client, and `formflow serve` on a fresh seeded SQLite file, configured with
that provider. The browser talks to Formflow as `http://localhost:<port>`: WebAuthn needs a
domain as RP id (an IP address is refused). Passkeys are created and used by Chromium's virtual
authenticator (CDP `WebAuthn.addVirtualAuthenticator`: internal, resident keys, user verified).
Without chromium, node or the npm packages the tests skip, except in CI.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tests.conftest import require

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
PROVIDER_SCRIPT = ROOT / "tests" / "oidc_provider" / "provider.mjs"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
PHONE = {"width": 375, "height": 800}
START_TIMEOUT = 60.0  # seconds for the provider and the server to come up
CLIENT_SECRET = "loopback-test-client-secret-0123456789"


class Stack(msgspec.Struct, frozen=True, kw_only=True):
    base: str
    issuer: str
    database: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _formflow(*args: str, env: dict[str, str]) -> None:
    command = [str(Path(sys.executable).parent / "formflow"), *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"formflow {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"


def _start_provider(base: str, log: Any) -> tuple[subprocess.Popen[str], str]:
    client = {
        "client_id": "formflow",
        "client_secret": CLIENT_SECRET,
        "redirect_uris": [f"{base}/auth/sso/corp/callback"],
        "post_logout_redirect_uris": [f"{base}/login"],
    }
    process = subprocess.Popen(
        ["node", str(PROVIDER_SCRIPT), json.dumps(client)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()  # the script prints its issuer once it listens
    if not line:
        process.wait(timeout=10)
        pytest.fail("the OpenID provider did not start (see provider.log)")
    issuer: str = json.loads(line)["issuer"]
    return process, issuer


def _stop(process: subprocess.Popen[Any]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require("chromium", Path(CHROMIUM).exists(), f"{CHROMIUM} is missing (apt-get install -y chromium)")
    require("node", shutil.which("node") is not None, "Node.js is missing")
    require(
        "oidc-provider",
        (ROOT / "node_modules" / "oidc-provider").is_dir(),
        "node_modules/oidc-provider is missing (make assets)",
    )
    home = tmp_path_factory.mktemp("sign-in")
    port = _free_port()
    base = f"http://localhost:{port}"
    provider_log = (home / "provider.log").open("w")
    provider, issuer = _start_provider(base, provider_log)
    providers = [{"name": "corp", "issuer": issuer, "client_id": "formflow", "client_secret": CLIENT_SECRET}]
    env = {
        **os.environ,
        "FORMFLOW_DATABASE_URL": f"sqlite:///{home / 'formflow.sqlite3'}",
        "FORMFLOW_VAR_DIR": str(home),
        "FORMFLOW_STORAGE_PATH": str(home / "attachments"),
        "FORMFLOW_BROKER_URL": "memory://",
        "FORMFLOW_IN_PROCESS_WORKER": "true",
        "FORMFLOW_SECRET_KEY": "browser-test-secret-browser-test-secret-0123",
        "FORMFLOW_PASSWORD_HASH_TIME_COST": "1",
        "FORMFLOW_PASSWORD_HASH_MEMORY_KIB": "1024",
        "FORMFLOW_LOG_LEVEL": "WARNING",
        "FORMFLOW_BASE_URL": base,
        "FORMFLOW_OIDC_PROVIDERS": json.dumps(providers),
    }
    server_log = (home / "serve.log").open("w")
    server: subprocess.Popen[Any] | None = None
    try:
        _formflow("migrate", env=env)
        _formflow("seed-demo", env=env)
        server = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "formflow"),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=env,
            stdout=server_log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"formflow serve did not start:\n{(home / 'serve.log').read_text()}")
            time.sleep(0.2)
        yield Stack(base=base, issuer=issuer, database=home / "formflow.sqlite3")
    finally:
        if server is not None:
            _stop(server)
        _stop(provider)
        server_log.close()
        provider_log.close()


@pytest.fixture(scope="module")
def browser(stack: Stack) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture()
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("FORMFLOW_TEST_ARTIFACTS") or tmp_path) / "screenshots" / "sign_in"
    folder.mkdir(parents=True, exist_ok=True)
    print(f"screenshots in {folder}")
    return folder


def _page(browser: Any) -> Any:
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # hx-confirm asks before revoking
    return page


def _last_sign_in(stack: Stack, action: str) -> dict[str, Any]:
    with sqlite3.connect(stack.database) as db:
        row = db.execute(
            "SELECT actor_name, after FROM audit_entry WHERE action = ? ORDER BY id DESC LIMIT 1", (action,)
        ).fetchone()
    assert row is not None, f"no {action} entry in the audit trail"
    return {"actor_name": row[0], **json.loads(row[1] or "{}")}


def test_e1001_signs_in_through_the_company_provider_and_lands_on_the_process_center(
    stack: Stack, browser: Any, shots: Path
) -> None:
    from playwright.sync_api import expect

    page = _page(browser)
    page.goto(f"{stack.base}/process-center")
    assert "/login" in page.url, "signed out, the process center sends the browser to the login page"
    page.screenshot(path=str(shots / "01-login.png"), full_page=True)
    with page.expect_navigation(url=f"{stack.issuer}/**"):
        page.get_by_role("link", name="使用企业账号登录").click()

    # The provider's own pages: sign in there, then allow Formflow to read the profile.
    page.locator("input[name=login]").fill("e1001")
    page.locator("input[name=password]").fill("any password at the test provider")
    page.get_by_role("button", name="Sign-in").click()
    with page.expect_navigation(url=f"{stack.base}/process-center"):
        page.get_by_role("button", name="Continue").click()

    expect(page.get_by_role("heading", level=1)).to_contain_text("流程中心")
    expect(page.locator(".whoami")).to_contain_text("张伟")
    entry = _last_sign_in(stack, "auth.login")
    assert entry["method"] == "sso" and entry["provider"] == "corp"
    assert entry["actor_name"] == "张伟"

    # Signing out ends the Formflow session and continues to the provider's logout.
    with page.expect_navigation(url=f"{stack.issuer}/**"):
        page.get_by_role("button", name="退出登录").click()
    with page.expect_navigation(url=f"{stack.base}/login**"):
        page.get_by_role("button", name="Yes, sign me out").click()
    page.goto(f"{stack.base}/process-center")
    assert "/login" in page.url
    page.context.close()


def test_admin_registers_a_passkey_signs_in_with_it_and_a_revoked_one_is_refused(
    stack: Stack, browser: Any, shots: Path
) -> None:
    from playwright.sync_api import expect

    page = _page(browser)
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )

    page.goto(f"{stack.base}/login")
    page.get_by_label("工号").fill("admin")
    page.get_by_label("密码").fill("formflow")
    with page.expect_navigation():
        page.get_by_label("密码").press("Enter")
    page.goto(f"{stack.base}/profile")
    page.get_by_label("新通行密钥的名称").fill("管理员的笔记本")
    with page.expect_navigation(url="**/profile?added=1*"):
        page.get_by_role("button", name="添加通行密钥").click()
    expect(page.get_by_role("status")).to_contain_text("已添加通行密钥")
    expect(page.get_by_label("通行密钥的名称", exact=True)).to_have_value("管理员的笔记本")
    page.screenshot(path=str(shots / "02-profile-passkeys.png"), full_page=True)

    # Signed out, the passkey alone signs admin in (the keyboard reaches the button).
    with page.expect_navigation(url=f"{stack.base}/login**"):
        page.get_by_role("button", name="退出登录").click()
    with page.expect_navigation(url=f"{stack.base}/"):
        page.get_by_role("button", name="使用通行密钥登录").focus()
        page.keyboard.press("Enter")
    expect(page.locator(".whoami")).to_contain_text("admin")
    entry = _last_sign_in(stack, "auth.login")
    assert entry["method"] == "passkey" and entry["actor_name"] == "系统管理员"

    # Revoked, the same passkey is refused with a clear message and an audit entry.
    page.goto(f"{stack.base}/profile")
    page.locator("#passkeys-list").get_by_role("button", name="吊销").click()
    expect(page.locator("#passkeys-list")).to_contain_text("已吊销")
    with page.expect_navigation(url=f"{stack.base}/login**"):
        page.get_by_role("button", name="退出登录").click()
    page.get_by_role("button", name="使用通行密钥登录").click()
    expect(page.locator("#passkey-error")).to_contain_text("该通行密钥已被吊销")
    page.screenshot(path=str(shots / "03-revoked-passkey.png"), full_page=True)
    failure = _last_sign_in(stack, "auth.login_failed")
    assert failure["method"] == "passkey" and failure["reason"] == "revoked_passkey"
    assert failure["employee_no"] == "admin"
    page.context.close()

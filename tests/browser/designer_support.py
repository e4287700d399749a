"""What the designer's browser test needs: its own server, a desktop sign-in, drags, timings.

The server is a real `formflow serve` on a free loopback port with its own SQLite file (migrated
and seeded first), started once for the module. Drags use real mouse events in small steps, as
SortableJS needs them; timings are measured inside the page with `performance.now()`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.phone import CHROMIUM
from tests.conftest import require

DESKTOP = {"width": 1400, "height": 1500}
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
START_TIMEOUT = 60.0  # seconds for the server to answer /health/live
ANIMATION_MS = 250
"""SortableJS animates moves for 120 ms and ignores the pointer meanwhile."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _formflow(*args: str, env: dict[str, str]) -> None:
    command = [str(Path(sys.executable).parent / "formflow"), *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"formflow {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def designer_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`formflow serve` on a fresh, seeded SQLite database; yields its base URL."""
    require("chromium", Path(CHROMIUM).exists(), f"{CHROMIUM} is missing (apt-get install -y chromium)")
    home = tmp_path_factory.mktemp("designer-server")
    port = _free_port()
    env = {
        **os.environ,
        "FORMFLOW_DATABASE_URL": f"sqlite:///{home / 'formflow.sqlite3'}",
        "FORMFLOW_VAR_DIR": str(home),
        "FORMFLOW_STORAGE_PATH": str(home / "attachments"),
        "FORMFLOW_BROKER_URL": "memory://",
        "FORMFLOW_IN_PROCESS_WORKER": "true",
        "FORMFLOW_SECRET_KEY": "designer-test-secret-designer-test-secret-01",
        "FORMFLOW_PASSWORD_HASH_TIME_COST": "1",
        "FORMFLOW_PASSWORD_HASH_MEMORY_KIB": "1024",
        "FORMFLOW_LOG_LEVEL": "WARNING",
    }
    _formflow("migrate", env=env)
    _formflow("seed-demo", env=env)
    log = (home / "serve.log").open("w")
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "formflow"), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health/live", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"formflow serve did not start:\n{(home / 'serve.log').read_text()}")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="module")
def designer_browser(designer_server: str) -> Iterator[Any]:
    """One chromium for the module (Playwright's sync API runs one instance at a time)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield launched
        launched.close()


def sign_in_desktop(browser: Any, base: str, who: str) -> Any:
    """A new desktop-sized browser context signed in as `who`; confirmations are accepted."""
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"{base}/login")
    page.get_by_label("工号").fill(who)
    page.get_by_label("密码").fill("formflow")
    with page.expect_navigation():
        page.get_by_label("密码").press("Enter")
    return page


def drag(page: Any, source: Any, target: Any, *, at: str = "bottom") -> None:
    """Drag `source` onto `target` with real mouse moves (near its top or bottom edge, or its middle)."""
    source.scroll_into_view_if_needed()
    start = source.bounding_box()
    page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
    page.mouse.down()
    page.mouse.move(start["x"] + start["width"] / 2 + 8, start["y"] + start["height"] / 2 + 8, steps=4)
    for _ in range(8):  # the placeholder moves things about: aim again until it sits at the target
        end = target.bounding_box()
        x = end["x"] + end["width"] / 2
        y = end["y"] + {"top": end["height"] / 4, "middle": end["height"] / 2}.get(at, end["height"] - 6)
        page.mouse.move(x, y, steps=12)
        page.wait_for_timeout(ANIMATION_MS)
        page.mouse.move(x, y + 1, steps=2)
        page.wait_for_timeout(ANIMATION_MS)
        if target.evaluate(
            """(el) => { const ghost = document.querySelector(".sortable-ghost");
            return !!ghost && (el.contains(ghost) || ghost.nextElementSibling === el); }"""
        ):
            break
    page.mouse.up()


def settled(page: Any, action: str, target: str = "designer-panel") -> float:
    """Run `action` (JavaScript) in the page; milliseconds until htmx settled the answer in `target`."""
    elapsed: float = page.evaluate(
        """async ([action, target]) => {
            const done = new Promise((resolve) => {
                const listener = (event) => {
                    if (event.detail.target && event.detail.target.id === target) {
                        document.removeEventListener("htmx:afterSettle", listener);
                        resolve();
                    }
                };
                document.addEventListener("htmx:afterSettle", listener);
            });
            const start = performance.now();
            (new Function(action))();
            await done;
            return performance.now() - start;
        }""",
        [action, target],
    )
    return elapsed


def csrf(page: Any) -> str:
    token: str = page.evaluate("JSON.parse(document.body.getAttribute('hx-headers'))['x-csrftoken']")
    return token

"""Browser fixtures: a real `formflow serve` and one chromium per test module.

Each module gets its own server on a free loopback port with its own SQLite file (migrated and
seeded first), so a module's story starts from the demo organisation and nothing else. The
browser is Debian's chromium driven by Playwright; without it the tests are skipped, except in
CI. Screenshots go to $FORMFLOW_TEST_ARTIFACTS (or a temporary folder whose path is printed),
one folder per module.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.phone import CHROMIUM, sign_in
from tests.conftest import require

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
START_TIMEOUT = 60.0  # seconds for the server to answer /health/live


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
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`formflow serve` on a fresh, seeded SQLite database; yields its base URL."""
    require("chromium", Path(CHROMIUM).exists(), f"{CHROMIUM} is missing (apt-get install -y chromium)")
    home = tmp_path_factory.mktemp("server")
    port = _free_port()
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
def browser(server: str) -> Iterator[Any]:
    """One chromium per module (Playwright's sync API allows one running instance at a time)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def person(browser: Any, server: str) -> Iterator[Callable[[str], Any]]:
    """`person("e1001")`: that person's page, signed in once per module in a context of its own."""
    pages: dict[str, Any] = {}

    def page_of(who: str) -> Any:
        if who not in pages:
            pages[who] = sign_in(browser, server, who)
        return pages[who]

    yield page_of
    for page in pages.values():
        page.context.close()


@pytest.fixture()
def shots(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    root = Path(os.environ.get("FORMFLOW_TEST_ARTIFACTS") or tmp_path)
    folder = root / "screenshots" / request.module.__name__.rsplit(".", 1)[-1]
    folder.mkdir(parents=True, exist_ok=True)
    print(f"screenshots in {folder}")
    return folder

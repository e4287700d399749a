"""What the designer's browser tests need: the module's server and browser, a desktop sign-in,
drags, timings. Drags use real mouse events in small steps, as SortableJS needs them; timings
are measured inside the page with `performance.now()`.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.phone import sign_in

DESKTOP = {"width": 1400, "height": 1500}
ANIMATION_MS = 250
"""SortableJS animates moves for 120 ms and ignores the pointer meanwhile."""


@pytest.fixture(scope="module")
def designer_server(server: str) -> str:
    """The module's `formflow serve` (tests/browser/conftest.py)."""
    return server


@pytest.fixture(scope="module")
def designer_browser(browser: Any) -> Any:
    """The module's chromium (tests/browser/conftest.py)."""
    return browser


def sign_in_desktop(browser: Any, base: str, who: str) -> Any:
    """A new desktop-sized browser context signed in as `who`; confirmations are accepted."""
    return sign_in(browser, base, who, viewport=DESKTOP)


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

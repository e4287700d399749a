"""What a person does on a phone-sized screen: sign in, tab through a page, attach files.

Elements are found by role, label and text, as a person finds them.
"""

from __future__ import annotations

import base64
import io
from typing import Any

CHROMIUM = "/usr/bin/chromium"
PHONE = {"width": 375, "height": 800}
TAB_LIMIT = 120
"""Tab presses after which an element counts as unreachable by keyboard."""


def sign_in(browser: Any, base: str, who: str, viewport: dict[str, int] = PHONE) -> Any:
    """A new browser context (phone-sized unless told) signed in as `who`; returns its page."""
    context = browser.new_context(viewport=viewport, locale="zh-CN")
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # hx-confirm asks before each action
    page.goto(f"{base}/login")
    page.get_by_label("工号").fill(who)
    page.get_by_label("密码").fill("formflow")
    with page.expect_navigation():
        page.get_by_label("密码").press("Enter")
    return page


def fits_the_phone(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} is {width}px wide at 375px: it scrolls sideways"


def request_head(page: Any) -> Any:
    """A request's heading region: its title, status badges and facts."""
    title = page.get_by_role("heading", level=1).inner_text()
    return page.get_by_role("region", name=title, exact=True)


def tab_to(page: Any, target: Any) -> None:
    """Press Tab until `target` has the focus, as a keyboard user moves through the page."""
    for _ in range(TAB_LIMIT):
        page.keyboard.press("Tab")
        if target.evaluate("element => element === document.activeElement"):
            return
    raise AssertionError(f"{target} is not reachable with Tab within {TAB_LIMIT} presses on {page.url}")


def commit_last_field(page: Any) -> None:
    """Leave the field just filled (Tab) and wait for the form's check of it to come back.

    A form re-checks itself on the server at every change; it is sent once that check is back,
    so one request at a time is in flight."""
    with page.expect_response(lambda response: response.url.endswith("/evaluate")):
        page.keyboard.press("Tab")


def attach(page: Any, widget_label: str, files: list[dict[str, Any]]) -> None:
    """Choose files in an upload widget and wait until each is uploaded (it can be removed then)."""
    page.get_by_label(widget_label, exact=True).set_input_files(files)
    for file in files:
        page.get_by_role("button", name=f"删除 {file['name']}").wait_for()


def photo(page: Any) -> bytes:
    """A small real JPEG, drawn by the browser itself."""
    data_url = page.evaluate(
        """() => { const c = document.createElement("canvas"); c.width = 160; c.height = 100;
        const g = c.getContext("2d"); g.fillStyle = "#1456f0"; g.fillRect(0, 0, 160, 100);
        g.fillStyle = "#fff"; g.fillRect(20, 20, 60, 40); return c.toDataURL("image/jpeg", 0.8); }"""
    )
    return base64.b64decode(data_url.split(",", 1)[1])


def quote() -> bytes:
    """A real XLSX workbook (the supplier quote), made with openpyxl."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["项目", "金额"])
    sheet.append(["场地租赁", 120000])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()

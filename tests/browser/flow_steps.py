"""Building the marketing-activity flow in the flow designer, as a process admin does it.

Start -> head of department (the starter flow) -> supervising leader -> the finance co-review
plugin step (it adds finance only over 50,000) -> execution stage -> summary -> end.
Elements are found by role, label and text; one step is added with the keyboard only.
"""

from __future__ import annotations

from typing import Any


def designer(page: Any) -> Any:
    return page.locator("#flow-designer")


def _saved(page: Any, action: Any) -> None:
    """Run `action` and wait until the designer re-rendered with a newer row version."""
    before = int(designer(page).get_attribute("data-row-version"))
    action()
    page.wait_for_function(
        "n => Number(document.getElementById('flow-designer').dataset.rowVersion) > n",
        arg=before,
        timeout=15_000,
    )


def add_step(page: Any, plus: Any, kind: str) -> None:
    """Open a "+" menu and choose a step kind (its label, e.g. "审批")."""
    plus.click()
    menu = plus.locator("xpath=..").locator("form")
    _saved(page, lambda: menu.get_by_role("button", name=kind, exact=True).click())


def panel(page: Any) -> Any:
    return page.get_by_role("complementary")


def save_step(page: Any) -> None:
    _saved(page, lambda: panel(page).get_by_role("button", name="保存步骤").click())


def open_step(page: Any, name: str) -> None:
    page.get_by_role("link", name=name).click()
    page.wait_for_selector(".flow-panel")


def build_marketing_flow(page: Any, base: str, key: str, amount_field: str = "budget") -> None:
    page.goto(f"{base}/designer/{key}/flow")
    pluses = lambda: page.get_by_role("button", name="在此处添加步骤")  # noqa: E731

    # after the department head: the supervising leader (added with the keyboard only)
    slot = pluses().nth(1)
    slot.focus()
    page.keyboard.press("Enter")
    menu = slot.locator("xpath=..").locator("form")
    menu.get_by_role("button", name="审批", exact=True).focus()
    _saved(page, lambda: page.keyboard.press("Enter"))
    panel(page).get_by_label("步骤名称").fill("分管领导审批")
    panel(page).get_by_label("规则").first.select_option(label="分管领导")
    save_step(page)

    # the finance co-review plugin after the leader: it joins only when the budget is over 50,000
    add_step(page, pluses().nth(2), "插件步骤")
    panel(page).get_by_label("插件").select_option(label="财务联审")
    save_step(page)
    panel(page).get_by_label("amount_field").fill(amount_field)
    panel(page).get_by_label("threshold").fill("50000")
    save_step(page)

    # execution and summary, before the end
    add_step(page, pluses().last, "执行阶段")
    panel(page).get_by_label("步骤名称").fill("活动执行")
    save_step(page)
    add_step(page, pluses().last, "执行阶段")
    panel(page).get_by_label("步骤名称").fill("总结报告")
    panel(page).get_by_label("用途").select_option(label="总结报告")
    save_step(page)

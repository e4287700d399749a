"""A process admin builds a template in the designer by drag and drop; a running request keeps its version.

A real `formflow serve` (its own SQLite file, migrated and seeded) driven by Debian's chromium.
`admin` creates 市场活动（设计器）, drags text, money, date, select, attachment and a detail table
with an amount column from the palette, sets labels, required flags and the column total in the
property panel, and publishes V1 with a change note. 张伟 (e1001) starts a request on it. The
admin then adds a field and publishes V2: the running request still shows V1, a new request V2.

The last test measures (and prints, never asserts) how fast the designer answers on a form of 200
fields and how fast the filled form recomputes a detail table of 500 rows.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.browser import designer_support
from tests.browser.designer_support import csrf, drag, settled, sign_in_desktop
from tests.browser.flow_steps import build_marketing_flow
from tests.browser.phone import sign_in

designer_server = designer_support.designer_server
designer_browser = designer_support.designer_browser
KEY = "marketing-event"
NAME = "市场活动（设计器）"


@pytest.fixture(scope="module")
def admin(designer_server: str, designer_browser: Any) -> Iterator[Any]:
    page = sign_in_desktop(designer_browser, designer_server, "admin")
    yield page
    page.context.close()


@pytest.fixture()
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("FORMFLOW_TEST_ARTIFACTS") or tmp_path) / "screenshots" / "test_designer"
    folder.mkdir(parents=True, exist_ok=True)
    print(f"screenshots in {folder}")
    return folder


@contextmanager
def saving(page: Any) -> Iterator[None]:
    """Wait until the action inside has been saved (the draft's row version moved on)."""
    before = int(page.locator("#row-version").get_attribute("value"))
    yield
    page.wait_for_function(
        "n => Number(document.getElementById('row-version').value) > n", arg=before, timeout=15_000
    )


def add(page: Any, kind: str, label: str, *, into: Any = None) -> None:
    """Drag a field type from the palette onto the form (or a table), then name it in the panel."""
    from playwright.sync_api import expect

    page.evaluate("window.scrollTo(0, 0)")
    with saving(page):
        if into is None:
            drag(page, page.locator(f"#palette [data-kind={kind}]"), page.locator("ol.canvas-list").first)
        else:
            drag(page, page.locator(f"#palette [data-kind={kind}]"), into, at="middle")
    name = page.locator(".panel").get_by_label("名称（中文）", exact=True)
    if name.input_value() != label:
        with saving(page):
            name.fill(label)
            name.press("Tab")
    expect(page.locator(".field-card.selected .card-select").first).to_contain_text(label)


def tick(page: Any, label: str) -> None:
    with saving(page):
        page.locator(".panel").get_by_label(label, exact=True).check()


def card(page: Any, label: str) -> Any:
    return page.locator(".field-card").filter(has=page.locator(".card-select", has_text=label)).last


def publish(page: Any, base: str, note: str, number: int) -> None:
    from playwright.sync_api import expect

    page.goto(f"{base}/designer/{KEY}?tab=versions")
    page.get_by_label("变更说明").fill(note)
    page.get_by_role("button", name="发布", exact=True).click()
    expect(page.get_by_role("status").filter(has_text=f"已发布为 V{number}")).to_be_visible()
    expect(page.get_by_role("row").filter(has_text=note)).to_contain_text("生效中")


def test_build_publish_start_and_keep_the_running_request_on_its_version(
    admin: Any, designer_server: str, designer_browser: Any, shots: Path
) -> None:
    from playwright.sync_api import expect

    base = designer_server
    admin.goto(f"{base}/designer")
    admin.get_by_text("新建模板").click()
    admin.get_by_label("标识").fill(KEY)
    admin.get_by_label("名称（中文）").fill(NAME)
    admin.get_by_label("分类").fill("marketing")
    admin.get_by_role("button", name="创建并开始设计").click()
    expect(admin.get_by_role("heading", level=1)).to_contain_text(NAME)

    add(admin, "text", "活动名称")
    tick(admin, "必填")
    add(admin, "money", "预算金额")
    tick(admin, "必填")
    add(admin, "select", "活动类型")
    add(admin, "date", "开始日期")
    add(admin, "detail_table", "预算明细")
    add(admin, "money", "金额", into=admin.locator("ol.column-list").first)
    tick(admin, "在此列下显示合计")
    add(admin, "attachment", "附件")
    with saving(admin):
        admin.locator(".panel").get_by_label("单个文件上限（MB）").fill("20")
        admin.locator(".panel").get_by_label("单个文件上限（MB）").press("Tab")
    builder = admin.locator(".panel [data-cel-for='prop-visible_when']")
    builder.get_by_label("字段").select_option(label="预算金额")
    builder.get_by_label("比较方式").select_option(">")
    builder.get_by_label("值").fill("50000")
    with saving(admin):
        builder.get_by_role("button", name="添加条件").click()
    expect(admin.locator(".panel").get_by_label("显示条件（CEL）")).to_have_value("money_1 > 50000")
    expect(card(admin, "附件")).to_contain_text("有条件")

    # the keyboard way: 开始日期 moves up above 活动类型
    with saving(admin):
        card(admin, "开始日期").get_by_role("button", name="上移: 开始日期").click()
    order = [
        c.inner_text() for c in admin.locator("ol.canvas-list > .field-card > .card-head .card-select").all()
    ]
    assert [text.strip(" *\n") for text in order] == [
        "活动名称",
        "预算金额",
        "开始日期",
        "活动类型",
        "预算明细",
        "附件",
    ]
    columns = admin.locator("ol.column-list > .field-card")
    expect(columns).to_have_count(2)
    expect(columns.filter(has_text="金额")).to_contain_text("合计")

    # the mouse way: 附件 is dragged to the top; undo puts it back, redo moves it again
    canvas = admin.locator("ol.canvas-list > .field-card")
    admin.evaluate("window.scrollTo(0, 0)")
    with saving(admin):
        drag(admin, card(admin, "附件").locator(".drag-handle"), canvas.first, at="top")
    expect(canvas.first).to_contain_text("附件")
    with saving(admin):
        admin.get_by_role("button", name="撤销").click()
    expect(canvas.last).to_contain_text("附件")
    with saving(admin):
        admin.get_by_role("button", name="重做").click()
    expect(canvas.first).to_contain_text("附件")
    expect(admin.get_by_text("没有问题：可以发布。")).to_be_visible()
    admin.screenshot(path=shots / "1-designer.png", full_page=True)

    # the flow: head -> leader -> finance co-review over 50,000 -> execution -> summary
    build_marketing_flow(admin, base, KEY, amount_field="money_1")
    expect(admin.locator("#flow-designer").get_by_role("status")).to_contain_text("没有问题")
    admin.goto(f"{base}/designer/{KEY}?tab=flow")
    expect(admin.locator("#flow-tab")).to_contain_text("分管领导审批")
    expect(admin.locator("#flow-tab")).to_contain_text("财务联审")

    admin.goto(f"{base}/designer/{KEY}?tab=preview")
    admin.get_by_role("button", name="手机（375 px）").click()
    assert admin.locator("[data-preview-frame]").evaluate("el => el.getBoundingClientRect().width") <= 375
    admin.get_by_label("活动名称").fill("预览")
    admin.get_by_role("button", name="查看审批路线").click()
    expect(admin.get_by_role("region", name="审批路线预览")).to_contain_text("部门负责人审批")
    admin.screenshot(path=shots / "2-preview.png", full_page=True)

    publish(admin, base, "首次发布：市场活动表单", 1)

    applicant = sign_in(designer_browser, base, "e1001")
    applicant.goto(f"{base}/process-center/{KEY}")
    expect(applicant.get_by_role("heading", level=1)).to_contain_text("V1")
    applicant.get_by_label("活动名称").fill("设计器里搭的推广会")
    applicant.get_by_label("预算金额").fill("30000")
    applicant.get_by_label("开始日期").fill("2027-03-01")
    applicant.get_by_role("button", name="添加一行").click()
    applicant.get_by_label("项目", exact=True).fill("场地")
    applicant.get_by_label("金额", exact=True).fill("30000")
    applicant.get_by_label("金额", exact=True).press("Tab")
    expect(applicant.get_by_role("table", name="预算明细").locator("tfoot output")).to_have_text("30,000.00")
    applicant.get_by_role("button", name="提交审批").click()
    expect(applicant.get_by_role("status").filter(has_text="已提交审批")).to_be_visible()
    request_page = applicant.url
    assert re.search(r"/instances/\d+", request_page)
    expect(applicant.locator("main")).to_contain_text(f"{NAME} V1")

    admin.goto(f"{base}/designer/{KEY}")
    add(admin, "textarea", "备注")
    publish(admin, base, "增加备注", 2)
    admin.get_by_label("比较").select_option("1")
    admin.get_by_label("与").select_option("2")
    admin.get_by_role("button", name="查看差异").click()
    expect(admin.locator("#version-diff")).to_contain_text("新增")
    expect(admin.locator("#version-diff")).to_contain_text("备注")
    expect(admin.get_by_role("row").filter(has_text="首次发布")).to_contain_text("1")  # one request on V1
    admin.screenshot(path=shots / "3-versions.png", full_page=True)

    applicant.goto(request_page)
    expect(applicant.locator("main")).to_contain_text(f"{NAME} V1")
    applicant.goto(f"{base}/process-center/{KEY}")
    expect(applicant.get_by_role("heading", level=1)).to_contain_text("V2")
    expect(applicant.get_by_label("备注")).to_be_visible()
    applicant.context.close()


def _request_ms(page: Any, path: str) -> float:
    """How long the last request to `path` took, from sending it to the last byte of its answer."""
    elapsed: float = page.evaluate(
        """(path) => {
            const asked = performance.getEntriesByType("resource").filter((e) => e.name.includes(path));
            const last = asked[asked.length - 1];
            return last ? last.responseEnd - last.startTime : 0;
        }""",
        path,
    )
    return elapsed


def _big_form(rows: int) -> dict[str, Any]:
    kinds = ["text", "money", "date", "select", "number"]
    fields: list[dict[str, Any]] = []
    for number in range(199):
        kind = kinds[number % len(kinds)]
        field: dict[str, Any] = {
            "type": kind,
            "key": f"f{number}",
            "label": {"zh": f"字段{number}", "en": f"F{number}"},
        }
        if kind == "select":
            field["options"] = [{"value": "a", "label": {"zh": "甲", "en": "A"}}]
        fields.append(field)
    fields.append(
        {
            "type": "detail_table",
            "key": "lines",
            "label": {"zh": "明细", "en": "Lines"},
            "max_rows": rows,
            "totals": ["amount"],
            "columns": [
                {"type": "text", "key": "item", "label": {"zh": "项目", "en": "Item"}},
                {"type": "money", "key": "amount", "label": {"zh": "金额", "en": "Amount"}},
            ],
        }
    )
    return {
        "key": "perf-200",
        "version": 1,
        "title": {"zh": "两百个字段", "en": "200 fields"},
        "fields": fields,
    }


def test_a_form_of_200_fields_and_500_rows_stays_responsive(admin: Any, designer_server: str) -> None:
    """Timings are printed for the record; a slow machine does not fail the build."""
    from playwright.sync_api import expect

    base = designer_server
    admin.goto(f"{base}/designer")
    headers = {"x-csrftoken": csrf(admin)}
    created = admin.request.post(
        f"{base}/api/v1/designer/templates",
        data={"key": "perf-200", "name_zh": "两百个字段"},
        headers=headers,
    )
    assert created.status == 201, created.text()
    draft = created.json()
    saved = admin.request.put(
        f"{base}/api/v1/designer/templates/perf-200/draft",
        data={"form": _big_form(1000), "flow": draft["flow"], "row_version": draft["row_version"]},
        headers=headers,
    )
    assert saved.status == 200 and saved.json()["problems"] == [], saved.text()
    published = admin.request.post(
        f"{base}/api/v1/designer/templates/perf-200/publish",
        data={"change_note": "性能", "row_version": saved.json()["row_version"]},
        headers=headers,
    )
    assert published.status == 201, published.text()

    admin.goto(f"{base}/designer/perf-200")
    expect(admin.locator(".field-card")).to_have_count(202)
    # Each action is measured five times (the machine is shared); an action answers the property
    # panel, and the cards that changed come out of band.
    timings: dict[str, list[float]] = {}

    def designer(name: str, path: str, action: str) -> None:
        timings.setdefault(f"designer: {name}", []).append(settled(admin, action, "designer-panel"))
        timings.setdefault(f"  {name}: the request to the server", []).append(_request_ms(admin, path))

    choose = "document.querySelector('[data-ref=\"{ref}\"] .card-select').click()"
    for ref in ("f101", "f100", "f101", "f100", "f101", "f100"):
        designer("choose a field", "/fields/select", choose.format(ref=ref))
    expect(admin.locator("#panel-title")).to_contain_text("字段100")
    expect(admin.locator("[data-ref='f100'] .card-select")).to_have_attribute("aria-pressed", "true")
    expect(admin.locator("[data-ref='f101'] .card-select")).to_have_attribute("aria-pressed", "false")
    for n in range(5):
        designer(
            "rename it",
            "/fields/property",
            f"const i = document.getElementById('prop-label-zh'); i.value = '改名{n}'; "
            "i.dispatchEvent(new Event('change', {bubbles: true}));",
        )
    expect(admin.locator("[data-ref='f100'] .card-select")).to_contain_text("改名4")
    press = "const b = document.querySelector('[data-ref=\"f100\"] .card-actions button:nth-child({n})'); b.focus(); b.click();"
    for n in (2, 1, 2, 1, 2):
        designer("move it down or up", "/fields/move", press.format(n=n))
    expect(admin.locator("ol.canvas-list > .field-card").nth(101)).to_contain_text("改名4")
    expect(admin.locator("ol.canvas-list > .field-card").nth(100)).to_contain_text("字段101")
    expect(admin.locator("ol.canvas-list > .field-card")).to_have_count(200)
    # The keyboard user's focus stays on the button they pressed, on the card's new place.
    expect(admin.get_by_role("button", name="下移: 改名4")).to_be_focused()

    rows = [{"item": f"第{n}行", "amount": "10"} for n in range(500)]
    saved_request = admin.request.post(
        f"{base}/api/v1/instances", data={"template": "perf-200", "data": {"lines": rows}}, headers=headers
    )
    assert saved_request.status == 201, saved_request.text()
    admin.goto(f"{base}/instances/{saved_request.json()['id']}/edit")
    expect(admin.locator("[data-table='lines'] tbody [data-row]")).to_have_count(500)
    expect(admin.locator("#f-lines-total-amount")).to_have_text("5,000.00")
    for amount in (20, 30, 40, 50, 60):
        changed = admin.evaluate(
            """async (amount) => {
                const total = () => (document.getElementById("f-lines-total-amount") || {}).textContent;
                const before = total();
                const start = performance.now();
                const input = document.querySelectorAll("[data-table='lines'] tbody [data-row]")[250]
                    .querySelector("input[name$='.amount']");
                input.value = amount;
                input.dispatchEvent(new Event("change", { bubbles: true }));
                await new Promise((resolve) => {
                    const check = () => total() !== before ? resolve() : setTimeout(check, 5);
                    check();
                });
                const elapsed = performance.now() - start;
                const asked = performance.getEntriesByType("resource").filter((e) => e.name.endsWith("/evaluate"));
                const last = asked[asked.length - 1];
                return [elapsed, last ? last.responseEnd - last.startTime : 0];
            }""",
            str(amount),
        )
        timings.setdefault("form (500 rows): change row 250, totals back", []).append(changed[0])
        timings.setdefault("  change row 250: the request to the server", []).append(changed[1])
    expect(admin.locator("#f-lines-total-amount")).to_have_text("5,050.00")
    timings["form (500 rows): add row 501, shown"] = [
        admin.evaluate(
            """() => { const start = performance.now(); document.querySelector("[data-add-row]").click();
            return performance.now() - start; }"""
        )
    ]
    expect(admin.locator("[data-table='lines'] tbody [data-row]")).to_have_count(501)
    print()
    for name, values in timings.items():
        ordered = sorted(values)
        spread = (
            f" (min {ordered[0]:.0f}, max {ordered[-1]:.0f}, n={len(ordered)})" if len(ordered) > 1 else ""
        )
        print(f"  {name}: median {ordered[len(ordered) // 2]:.0f} ms{spread}")

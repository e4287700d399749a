"""The marketing-activity story in a real browser at phone width (375 x 800).

A real `formflow serve` on a free loopback port with its own SQLite file (migrated and seeded
first), driven by Debian's chromium through Playwright. 张伟 (e1001) fills the form and submits
it; 王芳 (e2001) approves it from her to-do list with the keyboard. Elements are found by role
and label, as a person finds them. Screenshots go to $FORMFLOW_TEST_ARTIFACTS (or a temporary
folder whose path the test prints). Without chromium the test is skipped, except in CI.
"""

from __future__ import annotations

import base64
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
PHONE = {"width": 375, "height": 800}
START_TIMEOUT = 60.0  # seconds for the server to answer /health/live
PLAN = "2024Q3新品推广会策划案_市场部_20240701.pdf"
PHOTO = "场地照片_市场部_20240701.jpg"
QUOTE = "供应商报价_市场部_20240701.xlsx"


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
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture()
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("FORMFLOW_TEST_ARTIFACTS") or tmp_path) / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    print(f"screenshots in {folder}")
    return folder


def _sign_in(browser: Any, base: str, who: str) -> Any:
    """A new phone-sized browser session signed in as `who`."""
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # hx-confirm asks before each action
    page.goto(f"{base}/login")
    page.get_by_label("工号").fill(who)
    page.get_by_label("密码").fill("formflow")
    with page.expect_navigation():
        page.get_by_label("密码").press("Enter")
    return page


def _quote() -> bytes:
    """A real XLSX workbook (the supplier quote), made with openpyxl."""
    import io

    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["项目", "金额"])
    sheet.append(["场地租赁", 120000])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _photo(page: Any) -> bytes:
    """A small real JPEG, drawn by the browser itself."""
    data_url = page.evaluate(
        """() => { const c = document.createElement("canvas"); c.width = 160; c.height = 100;
        const g = c.getContext("2d"); g.fillStyle = "#1456f0"; g.fillRect(0, 0, 160, 100);
        g.fillStyle = "#fff"; g.fillRect(20, 20, 60, 40); return c.toDataURL("image/jpeg", 0.8); }"""
    )
    return base64.b64decode(data_url.split(",", 1)[1])


def _fits_the_phone(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} is {width}px wide at 375px: it scrolls sideways"


def test_apply_at_375_px_then_approve_from_the_inbox(browser: Any, server: str, shots: Path) -> None:
    from playwright.sync_api import expect

    applicant = _sign_in(browser, server, "e1001")
    applicant.goto(f"{server}/process-center")
    applicant.get_by_role("article").filter(has_text="市场活动审批").get_by_role(
        "link", name="新建流程"
    ).click()
    expect(applicant.get_by_role("heading", level=1)).to_contain_text("市场活动审批")
    _fits_the_phone(applicant)

    applicant.get_by_label("活动名称").fill("2024年Q3新品推广会")
    applicant.get_by_label("联系电话").fill("13800138000")
    applicant.get_by_label("开始日期").fill("2027-03-01")
    applicant.get_by_label("结束日期").fill("2027-03-03")
    applicant.get_by_label("预算金额").fill("200000")
    applicant.get_by_label("活动目标").fill("新品认知度提升30%")
    applicant.get_by_label("目标受众").fill("华东区域的潜在客户")
    applicant.get_by_label("执行计划").fill("场地确认、物料采购、活动执行、总结复盘")
    for index, (item, category, amount) in enumerate(
        [("场地租赁", "venue", "120000"), ("物料制作", "materials", "80000")]
    ):
        applicant.get_by_role("button", name="添加一行").click()
        applicant.get_by_label("项目", exact=True).nth(index).fill(item)
        applicant.get_by_label("类别", exact=True).nth(index).select_option(category)
        applicant.get_by_label("金额", exact=True).nth(index).fill(amount)
    applicant.get_by_label("金额", exact=True).nth(1).press("Tab")  # the change sends the totals
    expect(applicant.locator("#f-budget_lines-total-amount")).to_have_text("200,000.00")
    applicant.get_by_label("附件", exact=True).set_input_files(
        [
            {"name": PLAN, "mimeType": "application/pdf", "buffer": b"%PDF-1.4\n% plan\n%%EOF\n"},
            {"name": PHOTO, "mimeType": "image/jpeg", "buffer": _photo(applicant)},
            {
                "name": QUOTE,
                "mimeType": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "buffer": _quote(),
            },
        ]
    )
    uploaded = applicant.locator("[data-upload-list]")
    expect(uploaded).to_contain_text(PLAN)
    expect(uploaded).to_contain_text(PHOTO)
    expect(uploaded).to_contain_text(QUOTE)
    applicant.screenshot(path=shots / "1-form-375.png", full_page=True)

    applicant.get_by_role("button", name="提交审批").click()
    expect(applicant.get_by_role("status").filter(has_text="已提交审批")).to_be_visible()
    expect(applicant.locator(".instance-head")).to_contain_text("审批中")
    expect(applicant.get_by_role("heading", name="流程")).to_be_visible()
    files = applicant.get_by_role("region", name="附件")
    expect(files.get_by_role("link", name=PLAN)).to_have_attribute(
        "href", re.compile(r"^/api/v1/attachments/[0-9a-f]{32}$")
    )
    expect(files.get_by_role("img", name=PHOTO)).to_be_visible()
    _fits_the_phone(applicant)
    applicant.screenshot(path=shots / "2-submitted-375.png", full_page=True)

    approver = _sign_in(browser, server, "e2001")
    approver.goto(f"{server}/inbox")
    expect(approver.locator("#nav-count-inbox")).to_have_text("1")
    task = approver.get_by_role("listitem").filter(has_text="2024年Q3新品推广会")
    expect(task).to_contain_text("市场部负责人")
    _fits_the_phone(approver)
    approver.screenshot(path=shots / "3-inbox-375.png", full_page=True)

    task.get_by_role("link", name="去处理").click()
    expect(approver.get_by_role("heading", name="您可以")).to_be_visible()
    approver_files = approver.get_by_role("region", name="附件")
    for name in (PLAN, QUOTE):  # the approver sees the request's files, with links that work for them
        expect(approver_files.get_by_role("link", name=name)).to_have_attribute(
            "href", re.compile(r"^/api/v1/attachments/[0-9a-f]{32}$")
        )
    expect(approver_files.get_by_role("img", name=PHOTO)).to_be_visible()
    quote_href = approver_files.get_by_role("link", name=QUOTE).get_attribute("href")
    download = approver.request.get(f"{server}{quote_href}")
    assert download.status == 200 and download.body()[:2] == b"PK"
    _fits_the_phone(approver)
    approver.screenshot(path=shots / "4-instance-375.png", full_page=True)
    approver.get_by_label("审批意见").fill("预算合理，同意")
    approve = approver.get_by_role("button", name="同意", exact=True)
    approve.focus()
    approver.keyboard.press("Enter")  # keyboard only; the confirmation is accepted
    expect(approver.get_by_role("status").filter(has_text="已同意")).to_be_visible()
    expect(approver.locator(".timeline")).to_contain_text("王芳 已同意")
    expect(approver.locator(".timeline")).to_contain_text("预算合理，同意")
    approver.screenshot(path=shots / "5-approved-375.png", full_page=True)

    applicant.goto(f"{server}/my-requests")
    expect(applicant.get_by_role("listitem").filter(has_text="2024年Q3新品推广会")).to_contain_text(
        "分管领导审批"
    )
    applicant.screenshot(path=shots / "6-my-requests-375.png", full_page=True)
    for who, page in (("applicant", applicant), ("approver", approver)):  # and on a desktop screen
        page.set_viewport_size({"width": 1280, "height": 800})
        page.goto(f"{server}/inbox" if who == "approver" else page.url)
        page.screenshot(path=shots / f"6-{who}-1280.png", full_page=True)


def test_a_return_without_a_note_is_refused_in_place(browser: Any, server: str, shots: Path) -> None:
    from playwright.sync_api import expect

    applicant = _sign_in(browser, server, "e1001")
    applicant.goto(f"{server}/my-requests?tab=in_approval")
    expect(applicant.get_by_role("listitem").first).to_be_visible()
    leader = _sign_in(browser, server, "e3001")
    leader.goto(f"{server}/inbox")
    leader.get_by_role("link", name="去处理").first.click()
    leader.get_by_role("button", name="退回补充").click()
    expect(leader.get_by_role("alert").filter(has_text="退回时请写明需要补充或修改的内容")).to_be_visible()
    leader.screenshot(path=shots / "7-return-refused-375.png", full_page=True)
    leader.get_by_label("审批意见").fill("需补充竞品分析数据")
    leader.get_by_role("button", name="退回补充").click()
    expect(leader.get_by_role("status").filter(has_text="已退回申请人补充")).to_be_visible()

    applicant.goto(f"{server}/my-requests?tab=returned")
    expect(applicant.get_by_role("listitem").first).to_contain_text("需补充竞品分析数据")
    applicant.get_by_role("link", name="修改并重新提交").first.click()
    expect(applicant.get_by_role("note")).to_contain_text("需补充竞品分析数据")
    _fits_the_phone(applicant)
    applicant.screenshot(path=shots / "8-resubmit-375.png", full_page=True)


def test_execution_progress_with_a_photo_and_the_summary(browser: Any, server: str, shots: Path) -> None:
    """A small budget (no finance step): approved by the head and the leader, then the applicant
    records the stages, one with a photo, and files the summary; the request is archived."""
    from playwright.sync_api import expect

    applicant = _sign_in(browser, server, "e1001")
    applicant.goto(f"{server}/process-center/marketing-activity")
    applicant.get_by_label("活动名称").fill("校园推广")
    applicant.get_by_label("联系电话").fill("13800138000")
    applicant.get_by_label("开始日期").fill("2027-04-01")
    applicant.get_by_label("结束日期").fill("2027-04-02")
    applicant.get_by_label("预算金额").fill("30000")
    applicant.get_by_label("活动目标").fill("新增会员500人")
    applicant.get_by_label("目标受众").fill("在校大学生")
    applicant.get_by_label("执行计划").fill("场地确认、物料采购、活动执行")
    applicant.get_by_role("button", name="添加一行").click()
    applicant.get_by_label("项目", exact=True).fill("场地与物料")
    applicant.get_by_label("类别", exact=True).select_option("venue")
    applicant.get_by_label("金额", exact=True).fill("30000")
    applicant.get_by_role("button", name="提交审批").click()
    expect(applicant.get_by_role("status").filter(has_text="已提交审批")).to_be_visible()
    request_url = applicant.url.split("?")[0]

    for who in ("e2001", "e3001"):
        approver = _sign_in(browser, server, who)
        approver.goto(request_url)
        approver.get_by_role("button", name="同意", exact=True).click()
        expect(approver.get_by_role("status").filter(has_text="已同意")).to_be_visible()

    applicant.goto(request_url)
    expect(applicant.locator(".instance-head")).to_contain_text("执行中")
    applicant.get_by_label("结果", exact=True).fill("场地已确认")
    applicant.get_by_label("照片或记录").set_input_files(
        [{"name": "场地照片_市场部_20270401.jpg", "mimeType": "image/jpeg", "buffer": _photo(applicant)}]
    )
    expect(applicant.locator("#progress-form [data-upload-list]")).to_contain_text("场地照片")
    applicant.get_by_role("button", name="记录进展").click()
    expect(applicant.get_by_role("status").filter(has_text="进展已记录")).to_be_visible()
    record = applicant.get_by_role("region", name="执行记录")
    expect(record).to_contain_text("场地已确认")
    expect(applicant.locator(".timeline").get_by_role("link", name="照片 1")).to_be_visible()
    for result in ("物料已采购", "活动顺利举办"):
        applicant.get_by_label("结果", exact=True).fill(result)
        applicant.get_by_role("button", name="记录进展").click()
        expect(record).to_contain_text(result)  # the page after this step, not the one before

    applicant.get_by_label("实际花费（元）").fill("28500")
    applicant.get_by_label("活动成果").fill("新增会员620人")
    applicant.get_by_label("存在问题").fill("物料晚到一天")
    applicant.get_by_role("button", name="提交总结报告").click()
    expect(applicant.get_by_role("status").filter(has_text="流程已归档")).to_be_visible()
    expect(applicant.locator(".instance-head")).to_contain_text("已归档")
    _fits_the_phone(applicant)
    applicant.screenshot(path=shots / "9-archived-375.png", full_page=True)

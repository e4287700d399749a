"""The marketing-activity story in a real browser at phone width (375 x 800).

A real `formflow serve` on a free loopback port with its own SQLite file (migrated and seeded
first), driven by Debian's chromium through Playwright. 张伟 (e1001) fills the form and submits
it; 王芳 (e2001) approves it from her to-do list with the keyboard. Elements are found by role
and label, as a person finds them. Screenshots go to $FORMFLOW_TEST_ARTIFACTS (or a temporary
folder whose path the test prints). Without chromium the test is skipped, except in CI.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.browser.phone import (
    attach,
    commit_last_field,
    fits_the_phone,
    photo,
    quote,
    request_head,
    sign_in,
)

PLAN = "2024Q3新品推广会策划案_市场部_20240701.pdf"
PHOTO = "场地照片_市场部_20240701.jpg"
QUOTE = "供应商报价_市场部_20240701.xlsx"


def test_apply_at_375_px_then_approve_from_the_inbox(browser: Any, server: str, shots: Path) -> None:
    from playwright.sync_api import expect

    applicant = sign_in(browser, server, "e1001")
    applicant.goto(f"{server}/process-center")
    applicant.get_by_role("article").filter(has_text="市场活动审批").get_by_role(
        "link", name="新建流程"
    ).click()
    expect(applicant.get_by_role("heading", level=1)).to_contain_text("市场活动审批")
    fits_the_phone(applicant)

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
    total = applicant.get_by_role("row").filter(has=applicant.get_by_role("rowheader", name="合计"))
    expect(total).to_contain_text("200,000.00")
    attach(
        applicant,
        "附件",
        [
            {"name": PLAN, "mimeType": "application/pdf", "buffer": b"%PDF-1.4\n% plan\n%%EOF\n"},
            {"name": PHOTO, "mimeType": "image/jpeg", "buffer": photo(applicant)},
            {
                "name": QUOTE,
                "mimeType": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "buffer": quote(),
            },
        ],
    )
    applicant.screenshot(path=shots / "1-form-375.png", full_page=True)

    applicant.get_by_role("button", name="提交审批").click()
    expect(applicant.get_by_role("status").filter(has_text="已提交审批")).to_be_visible()
    expect(request_head(applicant)).to_contain_text("审批中")
    expect(applicant.get_by_role("heading", name="流程")).to_be_visible()
    files = applicant.get_by_role("region", name="附件")
    expect(files.get_by_role("link", name=PLAN)).to_have_attribute(
        "href", re.compile(r"^/api/v1/attachments/[0-9a-f]{32}$")
    )
    expect(files.get_by_role("img", name=PHOTO)).to_be_visible()
    fits_the_phone(applicant)
    applicant.screenshot(path=shots / "2-submitted-375.png", full_page=True)

    approver = sign_in(browser, server, "e2001")
    approver.goto(f"{server}/inbox")
    expect(
        approver.get_by_role("navigation", name="待办事项").get_by_role("link", name="待办 1")
    ).to_be_visible()
    task = approver.get_by_role("listitem").filter(has_text="2024年Q3新品推广会")
    expect(task).to_contain_text("市场部负责人")
    fits_the_phone(approver)
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
    fits_the_phone(approver)
    approver.screenshot(path=shots / "4-instance-375.png", full_page=True)
    approver.get_by_label("审批意见").fill("预算合理，同意")
    approve = approver.get_by_role("button", name="同意", exact=True)
    approve.focus()
    approver.keyboard.press("Enter")  # keyboard only; the confirmation is accepted
    expect(approver.get_by_role("status").filter(has_text="已同意")).to_be_visible()
    expect(approver.get_by_role("region", name="时间线")).to_contain_text("王芳 已同意")
    expect(approver.get_by_role("region", name="时间线")).to_contain_text("预算合理，同意")
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

    applicant = sign_in(browser, server, "e1001")
    applicant.goto(f"{server}/my-requests?tab=in_approval")
    expect(applicant.get_by_role("listitem").first).to_be_visible()
    leader = sign_in(browser, server, "e3001")
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
    fits_the_phone(applicant)
    applicant.screenshot(path=shots / "8-resubmit-375.png", full_page=True)


def test_execution_progress_with_a_photo_and_the_summary(browser: Any, server: str, shots: Path) -> None:
    """A small budget (no finance step): approved by the head and the leader, then the applicant
    records the stages, one with a photo, and files the summary; the request is archived."""
    from playwright.sync_api import expect

    applicant = sign_in(browser, server, "e1001")
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
    commit_last_field(applicant)
    applicant.get_by_role("button", name="提交审批").click()
    expect(applicant.get_by_role("status").filter(has_text="已提交审批")).to_be_visible()
    request_url = applicant.url.split("?")[0]

    for who in ("e2001", "e3001"):
        approver = sign_in(browser, server, who)
        approver.goto(request_url)
        approver.get_by_role("button", name="同意", exact=True).click()
        expect(approver.get_by_role("status").filter(has_text="已同意")).to_be_visible()

    applicant.goto(request_url)
    expect(request_head(applicant)).to_contain_text("执行中")
    applicant.get_by_label("结果", exact=True).fill("场地已确认")
    attach(
        applicant,
        "照片或记录",
        [{"name": "场地照片_市场部_20270401.jpg", "mimeType": "image/jpeg", "buffer": photo(applicant)}],
    )
    applicant.get_by_role("button", name="记录进展").click()
    expect(applicant.get_by_role("status").filter(has_text="进展已记录")).to_be_visible()
    record = applicant.get_by_role("region", name="执行记录")
    expect(record).to_contain_text("场地已确认")
    expect(applicant.get_by_role("region", name="时间线").get_by_role("link", name="照片 1")).to_be_visible()
    for result in ("物料已采购", "活动顺利举办"):
        applicant.get_by_label("结果", exact=True).fill(result)
        applicant.get_by_role("button", name="记录进展").click()
        expect(record).to_contain_text(result)  # the page after this step, not the one before

    applicant.get_by_label("实际花费（元）").fill("28500")
    applicant.get_by_label("活动成果").fill("新增会员620人")
    applicant.get_by_label("存在问题").fill("物料晚到一天")
    applicant.get_by_role("button", name="提交总结报告").click()
    expect(applicant.get_by_role("status").filter(has_text="流程已归档")).to_be_visible()
    expect(request_head(applicant)).to_contain_text("已归档")
    fits_the_phone(applicant)
    applicant.screenshot(path=shots / "9-archived-375.png", full_page=True)

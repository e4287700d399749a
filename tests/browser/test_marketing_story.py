"""The whole marketing-activity example (SCENARIO.md), in a real browser at 375 px.

One server and one database for the module; the tests run in order and tell one story:

1. 张伟 (e1001) submits an urgent request with a budget of 200,000; 王芳 (e2001) returns it with a
   note; 张伟 sees the note above the form, fixes the plan and resubmits.
2. 王芳 approves it with the keyboard alone.
3. 李强 (e3001) approves; the budget is over 50,000, so 刘洋 (e4001, finance) gets the finance
   co-review and approves; the request is executing.
4. A second request at 30,000 is executing after the head and the leader, with no finance task.
5. 张伟 records the stages (owner, planned and actual completion, result), files a change of
   venue and end date, which 王芳 approves and the timeline shows as before → after; then the
   summary, and the request is archived and listed with the finished ones.

Elements are found by role, label and text only. Screenshots of the inbox and the request's
page at 375 px go to $FORMFLOW_TEST_ARTIFACTS (or the printed temporary folder).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.browser.phone import attach, commit_last_field, fits_the_phone, photo, request_head, tab_to

BIG = "2024年Q3新品推广会"
SMALL = "高校巡回路演"
RETURN_NOTE = "需补充竞品分析数据"
VENUE, NEW_VENUE = "国际会展中心A馆", "国际会展中心B馆"
A_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}")
Person = Callable[[str], Any]


@pytest.fixture(scope="module")
def story() -> dict[str, str]:
    """What one test hands to the next: the requests' page addresses."""
    return {}


def _fill_request(page: Any, title: str, budget: str, lines: list[tuple[str, str, str]]) -> None:
    page.get_by_label("活动名称").fill(title)
    page.get_by_label("联系电话").fill("13800138000")
    page.get_by_label("开始日期").fill("2027-03-01")
    page.get_by_label("结束日期").fill("2027-03-03")
    page.get_by_label("预算金额").fill(budget)
    page.get_by_label("活动目标").fill("新品认知度提升30%")
    page.get_by_label("目标受众").fill("华东区域的潜在客户")
    page.get_by_label("执行计划").fill("场地确认、物料采购、活动执行、总结复盘")
    for index, (item, category, amount) in enumerate(lines):
        page.get_by_role("button", name="添加一行").click()
        page.get_by_label("项目", exact=True).nth(index).fill(item)
        page.get_by_label("类别", exact=True).nth(index).select_option(category)
        page.get_by_label("金额", exact=True).nth(index).fill(amount)


def _approve(page: Any, url: str, opinion: str = "") -> None:
    from playwright.sync_api import expect

    page.goto(url)
    if opinion:
        page.get_by_label("审批意见").fill(opinion)
    page.get_by_role("button", name="同意", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="已同意")).to_be_visible()


def test_an_urgent_request_is_returned_with_a_note_and_resubmitted(
    person: Person, server: str, shots: Path, story: dict[str, str]
) -> None:
    from playwright.sync_api import expect

    applicant = person("e1001")
    applicant.goto(f"{server}/process-center/marketing-activity")
    _fill_request(
        applicant,
        BIG,
        "200000",
        [
            ("场地租赁", "venue", "80000"),
            ("物料制作", "materials", "70000"),
            ("宣传推广", "publicity", "50000"),
        ],
    )
    applicant.get_by_role("switch", name="加急").check()
    applicant.get_by_label("加急原因").fill("发布会日期已对外公布")
    commit_last_field(applicant)
    applicant.get_by_role("button", name="提交审批").click()
    expect(applicant.get_by_role("status").filter(has_text="已提交审批")).to_be_visible()
    head = request_head(applicant)
    expect(head).to_contain_text("审批中")
    expect(head).to_contain_text("加急")
    story["big"] = applicant.url.split("?")[0]

    head_of_dept = person("e2001")
    head_of_dept.goto(f"{server}/inbox")
    task = head_of_dept.get_by_role("listitem").filter(has_text=BIG)
    expect(task).to_contain_text("加急")
    expect(task).to_contain_text("部门负责人审批")
    fits_the_phone(head_of_dept)
    head_of_dept.screenshot(path=shots / "1-inbox-urgent-375.png", full_page=True)
    task.get_by_role("link", name="去处理").click()
    head_of_dept.get_by_label("审批意见").fill(RETURN_NOTE)
    head_of_dept.get_by_role("button", name="退回补充").click()
    expect(head_of_dept.get_by_role("status").filter(has_text="已退回申请人补充")).to_be_visible()

    applicant.goto(f"{server}/my-requests?tab=returned")
    returned = applicant.get_by_role("listitem").filter(has_text=BIG)
    expect(returned).to_contain_text(RETURN_NOTE)
    returned.get_by_role("link", name="修改并重新提交").click()
    note = applicant.get_by_role("note")
    expect(note).to_contain_text(RETURN_NOTE)
    expect(note).to_contain_text("王芳")
    name_field = applicant.get_by_label("活动名称")
    expect(name_field).to_have_value(BIG)  # the form keeps what was filed
    note_box, field_box = note.bounding_box(), name_field.bounding_box()
    assert note_box and field_box and note_box["y"] < field_box["y"], "the note is not above the form"
    fits_the_phone(applicant)
    applicant.screenshot(path=shots / "2-returned-note-375.png", full_page=True)

    applicant.get_by_label("执行计划").fill(
        "竞品分析：对比三家竞品的发布会；场地确认、物料采购、活动执行、总结复盘"
    )
    applicant.get_by_label("活动场地").fill(VENUE)
    commit_last_field(applicant)
    applicant.get_by_role("button", name="重新提交").click()
    expect(applicant.get_by_role("status").filter(has_text="已提交审批")).to_be_visible()
    expect(request_head(applicant)).to_contain_text("审批中")
    expect(applicant.get_by_role("note")).to_have_count(0)
    timeline = applicant.get_by_role("region", name="时间线")
    expect(timeline).to_contain_text("重新提交")
    expect(timeline).to_contain_text(RETURN_NOTE)


def test_the_head_approves_with_the_keyboard_alone(person: Person, server: str, shots: Path) -> None:
    from playwright.sync_api import expect

    head_of_dept = person("e2001")
    head_of_dept.goto(f"{server}/inbox")
    handle = head_of_dept.get_by_role("listitem").filter(has_text=BIG).get_by_role("link", name="去处理")
    tab_to(head_of_dept, handle)
    with head_of_dept.expect_navigation():
        head_of_dept.keyboard.press("Enter")
    opinion = head_of_dept.get_by_label("审批意见")
    tab_to(head_of_dept, opinion)
    head_of_dept.keyboard.type("补充后预算合理，同意")
    fits_the_phone(head_of_dept)
    head_of_dept.screenshot(path=shots / "3-instance-approver-375.png", full_page=True)
    tab_to(head_of_dept, head_of_dept.get_by_role("button", name="同意", exact=True))
    head_of_dept.keyboard.press("Enter")  # the confirmation is accepted
    expect(head_of_dept.get_by_role("status").filter(has_text="已同意")).to_be_visible()
    timeline = head_of_dept.get_by_role("region", name="时间线")
    expect(timeline).to_contain_text("王芳 已同意")
    expect(timeline).to_contain_text("补充后预算合理，同意")


def test_the_leader_and_then_finance_approve_a_budget_over_50000(
    person: Person, server: str, shots: Path, story: dict[str, str]
) -> None:
    from playwright.sync_api import expect

    _approve(person("e3001"), story["big"], "战略价值高，同意")

    finance = person("e4001")
    finance.goto(f"{server}/inbox")
    task = finance.get_by_role("listitem").filter(has_text=BIG)
    expect(task).to_contain_text("财务联审")
    expect(task).to_contain_text("加急")
    fits_the_phone(finance)
    finance.screenshot(path=shots / "4-inbox-finance-375.png", full_page=True)
    task.get_by_role("link", name="去处理").click()
    finance.get_by_label("审批意见").fill("预算明细与报价一致")
    finance.get_by_role("button", name="同意", exact=True).click()
    expect(finance.get_by_role("status").filter(has_text="已同意")).to_be_visible()

    applicant = person("e1001")
    applicant.goto(story["big"])
    expect(request_head(applicant)).to_contain_text("执行中")
    flow = applicant.get_by_role("region", name="流程")
    expect(flow.get_by_role("listitem").filter(has_text="财务联审")).to_contain_text("刘洋")
    timeline = applicant.get_by_role("region", name="时间线")
    for line in ("王芳 已同意", "李强 已同意", "刘洋 已同意", "预算明细与报价一致"):
        expect(timeline).to_contain_text(line)


def test_a_budget_of_30000_needs_no_finance(person: Person, server: str, story: dict[str, str]) -> None:
    from playwright.sync_api import expect

    applicant = person("e1001")
    applicant.goto(f"{server}/process-center/marketing-activity")
    _fill_request(applicant, SMALL, "30000", [("场地与物料", "venue", "30000")])
    commit_last_field(applicant)
    applicant.get_by_role("button", name="提交审批").click()
    expect(applicant.get_by_role("status").filter(has_text="已提交审批")).to_be_visible()
    small = applicant.url.split("?")[0]
    story["small"] = small

    _approve(person("e2001"), small)
    _approve(person("e3001"), small)
    applicant.goto(small)
    expect(request_head(applicant)).to_contain_text("执行中")
    expect(applicant.get_by_role("region", name="时间线")).to_contain_text("无需财务联审")
    flow = applicant.get_by_role("region", name="流程")
    expect(flow.get_by_role("listitem").filter(has_text="财务联审")).not_to_contain_text("刘洋")

    finance = person("e4001")
    finance.goto(f"{server}/inbox")
    expect(finance.get_by_role("heading", name="待办", level=1)).to_be_visible()
    expect(finance.get_by_role("listitem").filter(has_text=SMALL)).to_have_count(0)
    expect(finance.get_by_role("link", name="去处理")).to_have_count(0)


def test_execution_a_change_and_the_summary_archive_the_request(
    person: Person, server: str, shots: Path, story: dict[str, str]
) -> None:
    from playwright.sync_api import expect

    applicant = person("e1001")
    applicant.goto(story["big"])
    expect(applicant.get_by_text("阶段：")).to_contain_text("场地确认")
    applicant.get_by_label("结果", exact=True).fill("场地已确认")
    attach(
        applicant,
        "照片或记录",
        [{"name": "场地照片_市场部_20270301.jpg", "mimeType": "image/jpeg", "buffer": photo(applicant)}],
    )
    applicant.get_by_role("button", name="记录进展").click()
    expect(applicant.get_by_role("status").filter(has_text="进展已记录")).to_be_visible()
    record = applicant.get_by_role("region", name="执行记录")
    venue = record.get_by_role("row").filter(has=applicant.get_by_role("rowheader", name="场地确认"))
    expect(venue.get_by_role("cell").nth(0)).to_contain_text("张伟")  # owner
    expect(venue.get_by_role("cell").nth(1)).to_contain_text(A_TIME)  # planned completion
    expect(venue.get_by_role("cell").nth(2)).to_contain_text(A_TIME)  # actual completion
    expect(venue.get_by_role("cell").nth(3)).to_contain_text("场地已确认")
    timeline = applicant.get_by_role("region", name="时间线")
    expect(timeline.get_by_role("link", name="照片 1")).to_be_visible()

    applicant.get_by_role("link", name="申请变更").click()
    expect(applicant.get_by_role("heading", name="申请变更", level=1)).to_be_visible()
    applicant.get_by_label("活动场地").fill(NEW_VENUE)
    applicant.get_by_label("结束日期").fill("2027-03-04")
    applicant.get_by_label("变更原因").fill("A馆档期冲突，改到B馆并延长一天")
    commit_last_field(applicant)
    applicant.get_by_role("button", name="预览变更").click()
    diff = applicant.get_by_role("region", name="变更内容")
    venue_change = diff.get_by_role("row").filter(has=applicant.get_by_role("rowheader", name="活动场地"))
    expect(venue_change).to_contain_text(VENUE)
    expect(venue_change).to_contain_text(NEW_VENUE)
    expect(diff.get_by_role("rowheader", name="结束日期")).to_be_visible()
    fits_the_phone(applicant)
    applicant.screenshot(path=shots / "5-change-diff-375.png", full_page=True)
    applicant.get_by_role("button", name="提交变更申请").click()
    expect(applicant.get_by_role("status").filter(has_text="变更申请已提交")).to_be_visible()
    expect(request_head(applicant)).to_contain_text("变更审批中")

    head_of_dept = person("e2001")
    head_of_dept.goto(f"{server}/inbox")
    review = head_of_dept.get_by_role("listitem").filter(has_text=BIG)
    expect(review).to_contain_text("变更")
    review.get_by_role("link", name="去处理").click()
    expect(head_of_dept.get_by_role("region", name="时间线")).to_contain_text(NEW_VENUE)
    head_of_dept.get_by_role("button", name="同意", exact=True).click()
    expect(head_of_dept.get_by_role("status").filter(has_text="已同意")).to_be_visible()

    applicant.goto(story["big"])
    expect(timeline).to_contain_text("变更已通过并生效")
    expect(timeline).to_contain_text(f"活动场地：{VENUE} → {NEW_VENUE}")
    expect(applicant.get_by_role("region", name="表单")).to_contain_text(NEW_VENUE)
    expect(request_head(applicant)).not_to_contain_text("变更审批中")

    for stage, result, problem in (
        ("物料采购", "物料已采购", "供应商缺货，改用备选供应商"),
        ("活动执行", "活动顺利举办", ""),
    ):
        expect(applicant.get_by_text("阶段：")).to_contain_text(stage)
        applicant.get_by_label("结果", exact=True).fill(result)
        applicant.get_by_label("异常说明").fill(problem)
        applicant.get_by_role("button", name="记录进展").click()
        row = record.get_by_role("row").filter(has=applicant.get_by_role("rowheader", name=stage))
        expect(row).to_contain_text(result)  # the page after this stage, not the one before
    expect(record.get_by_role("row").filter(has_text="物料采购")).to_contain_text("供应商缺货")
    execution = record.get_by_role("row").filter(has=applicant.get_by_role("rowheader", name="活动执行"))
    expect(execution.get_by_role("cell").nth(1)).to_contain_text("2027-03-04")  # the changed end date

    applicant.get_by_label("实际花费（元）").fill("186000")
    applicant.get_by_label("活动成果").fill("新品认知度提升35%，收集线索420条")
    applicant.get_by_label("存在问题").fill("物料晚到一天")
    applicant.get_by_role("button", name="提交总结报告").click()
    expect(applicant.get_by_role("status").filter(has_text="流程已归档")).to_be_visible()
    expect(request_head(applicant)).to_contain_text("已归档")
    expect(timeline).to_contain_text("186,000.00")
    expect(applicant.get_by_role("region", name="流程").get_by_role("listitem").last).to_contain_text(
        "已完成"
    )
    fits_the_phone(applicant)
    applicant.screenshot(path=shots / "6-instance-archived-375.png", full_page=True)

    applicant.goto(f"{server}/my-requests?tab=done")
    archived = applicant.get_by_role("list", name="申请").get_by_role("listitem").filter(has_text=BIG)
    expect(archived).to_contain_text("已归档")
    fits_the_phone(applicant)
    applicant.screenshot(path=shots / "7-my-requests-archived-375.png", full_page=True)

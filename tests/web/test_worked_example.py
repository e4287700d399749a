"""The guide's worked example, marketing activity approval, played over the API by the demo people.

张伟 (e1001, 市场部) applies; 王芳 (e2001) heads 市场部; 李强 (e3001) is its supervising leader;
刘洋 (e4001) is the finance specialist who co-reviews budgets over 50,000. The clock is the
test's: it starts at 10:00 on a working day and moves as the story does.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from litestar import Litestar

from runtime.service.pipeline import CALENDAR
from storage.tables import AuditEntry, OutboxMessage, Task
from tests.service.api_client import ApiUser, api_user, ok
from tests.service.support import Clock, marketing_data
from tests.web.session import Client

TEMPLATE = "marketing-activity"


def when(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


async def people(client: Client) -> tuple[ApiUser, ApiUser, ApiUser, ApiUser]:
    applicant = await api_user(client, "e1001")
    head = await api_user(client, "e2001")
    leader = await api_user(client, "e3001")
    finance = await api_user(client, "e4001")
    return applicant, head, leader, finance


async def submitted(applicant: ApiUser, data: dict[str, Any], **options: Any) -> dict[str, Any]:
    body = {"template": TEMPLATE, "data": data, "submit": True, **options}
    return ok(await applicant.post("/api/v1/instances", body), 201)


def approvals(preview: dict[str, Any]) -> list[tuple[str, list[str], list[str]]]:
    return [
        (step["node_id"], [a["name"] for a in step["assignees"]], step["why"])
        for step in preview["steps"]
        if step["kind"] == "approval"
    ]


async def test_the_whole_story_with_a_budget_of_200000(app: Litestar, client: Client) -> None:
    clock = Clock()
    app.state.clock = clock
    applicant, head, leader, finance = await people(client)

    # Who would approve, and why: the finance co-review joins because the budget is over 50,000.
    preview = ok(
        await applicant.post(f"/api/v1/templates/{TEMPLATE}/preview-route", {"data": marketing_data(200_000)})
    )
    assert approvals(preview) == [
        ("dept_head", ["王芳"], ["市场部负责人"]),
        ("leader", ["李强"], ["市场部的分管领导"]),
        ("finance", ["刘洋"], ["角色：财务专员（金额 200,000.00 超过财务联审金额 50,000.00）"]),
    ]

    # 保存草稿: a draft needs no complete data; it is numbered FL + year and month + sequence.
    draft = ok(
        await applicant.post(
            "/api/v1/instances", {"template": TEMPLATE, "data": {"activity_name": "2024年Q3新品推广会"}}
        ),
        201,
    )
    instance = draft["id"]
    assert draft["status"] == "draft"
    assert re.fullmatch(rf"FL{clock.now:%Y%m}\d{{3}}", draft["number"])
    incomplete = await applicant.post(f"/api/v1/instances/{instance}/submit")
    assert incomplete.status_code == 422
    paths = [error["path"] for error in incomplete.json()["errors"]]
    assert {"contact_phone", "budget", "budget_lines", "goal"} <= set(paths)

    # 提交审批: complete the draft and submit it; it is 审批中 at the department head.
    ok(await applicant.put(f"/api/v1/instances/{instance}/data", marketing_data(200_000)))
    clock.advance(minutes=10)
    result = ok(await applicant.post(f"/api/v1/instances/{instance}/submit"))
    assert (result["status"], result["current_step"]) == ("in_approval", "部门负责人审批")

    # The department head has the task, with why and a deadline of two working days.
    task = await head.my_task(instance)
    assert (task["number"], task["why"], task["urgent"]) == (draft["number"], "市场部负责人", False)
    assert when(task["due_at"]) == CALENDAR.add_working_hours(when(task["created_at"]), 16)
    clock.advance(hours=2)
    ok(await head.act(task["id"], "approve", comment="预算合理，同意"))

    # The supervising leader sends it back with a note saying what to add.
    task = await leader.my_task(instance)
    assert task["why"] == "市场部的分管领导"
    clock.advance(hours=3)
    result = ok(await leader.act(task["id"], "return", note="需补充竞品分析数据"))
    assert result["status"] == "returned"
    assert ok(await applicant.get("/api/v1/me/counts"))["returned"] == 1
    detail = await applicant.detail(instance)
    assert {"submit", "update_data", "withdraw"} <= set(detail["actions"])
    [sent_back] = [entry for entry in detail["timeline"] if entry["kind"] == "return"]
    assert (sent_back["actor"]["name"], sent_back["data"]["note"]) == ("李强", "需补充竞品分析数据")

    # The applicant adds the analysis and resubmits; it resumes at the leader.
    amended = marketing_data(200_000, goal="新品认知度提升30%；竞品分析：A品牌同期活动预算25万，覆盖人群相近")
    clock.advance(days=1)
    result = ok(await applicant.post(f"/api/v1/instances/{instance}/submit", {"data": amended}))
    assert (result["status"], result["current_step"]) == ("in_approval", "分管领导审批")
    task = await leader.my_task(instance)
    ok(await leader.act(task["id"], "approve", comment="战略价值高，同意"))

    # Finance co-reviews (its scope is its own requests, but a task lets it see this one).
    task = await finance.my_task(instance)
    assert task["why"] == "角色：财务专员（金额 200,000.00 超过财务联审金额 50,000.00）"
    assert (await finance.detail(instance))["data"]["budget"] == "200000.00"
    result = ok(await finance.act(task["id"], "approve", comment="预算合规"))
    assert (result["status"], result["current_step"]) == ("executing", "场地确认")

    # 执行中: the applicant records each stage.
    clock.advance(days=1)
    ok(await applicant.post(f"/api/v1/instances/{instance}/progress", {"result": "场地已确认"}))
    clock.advance(days=2)
    stage = await applicant.my_task(instance)
    assert stage["title"] == "物料采购"
    record = {"task_id": stage["id"], "result": "物料已采购", "note": "供应商缺货，已切换备用供应商"}
    result = ok(await applicant.post(f"/api/v1/instances/{instance}/progress", record))
    assert result["current_step"] == "活动执行"

    # A change during execution (new dates) is approved again, then applied with a recorded diff.
    change = {"changes": {"end_date": "2027-03-05"}, "reason": "场地档期调整，活动延长两天"}
    ok(await applicant.post(f"/api/v1/instances/{instance}/change-requests", change))
    review = await head.my_task(instance)
    assert (review["kind"], review["why"]) == ("change_review", "市场部负责人（变更审批）")
    assert (await applicant.detail(instance))["data"]["end_date"] == "2027-03-03"  # not before approval
    ok(await head.act(review["id"], "approve", comment="同意变更"))
    detail = await applicant.detail(instance)
    assert (detail["data"]["end_date"], detail["data"]["duration_days"]) == ("2027-03-05", 5)
    [applied] = [entry for entry in detail["timeline"] if entry["kind"] == "change_applied"]
    assert applied["data"]["diff"] == {"end_date": {"before": "2027-03-03", "after": "2027-03-05"}}
    assert applied["actor"]["name"] == "王芳"

    result = ok(await applicant.post(f"/api/v1/instances/{instance}/progress", {"result": "活动顺利举办"}))
    assert (result["status"], result["current_step"]) == ("awaiting_summary", "总结报告")

    # 总结: due three working days after the (changed) end date; then the request is archived.
    summary = await applicant.my_task(instance)
    due = CALENDAR.closing(CALENDAR.add_working_days(dt.date(2027, 3, 5), 3))
    assert when(summary["due_at"]) == due
    report = {
        "actual_spend": "186000.00",
        "results": "新品认知度提升32%，新增会员8200人",
        "problems": "物料供应商临时缺货",
    }
    result = ok(await applicant.post(f"/api/v1/instances/{instance}/summary", report))
    assert result["status"] == "archived"

    detail = await applicant.detail(instance)
    assert (detail["status_label"], detail["tasks"], detail["actions"]) == ("已归档", [], ["comment"])
    assert detail["closed_at"] is not None
    said = [
        (entry["kind"], entry["actor"]["name"])
        for entry in detail["timeline"]
        if entry["actor"] is not None and entry["kind"] not in ("stage_completed", "summary_submitted")
    ]
    assert said == [
        ("created", "张伟"),
        ("data_updated", "张伟"),
        ("submit", "张伟"),
        ("approve", "王芳"),
        ("return", "李强"),
        ("resubmit", "张伟"),
        ("approve", "李强"),
        ("approve", "刘洋"),
        ("progress", "张伟"),
        ("progress", "张伟"),
        ("change_request", "张伟"),
        ("change_requested", "张伟"),
        ("approve", "王芳"),
        ("change_applied", "王芳"),
        ("progress", "张伟"),
        ("summary", "张伟"),
    ]
    statuses = [entry["data"]["to"] for entry in detail["timeline"] if entry["kind"] == "status_changed"]
    assert statuses == ["in_approval", "returned", "in_approval", "executing", "awaiting_summary", "archived"]
    why = {
        entry["node_id"]: entry["data"]["why"]
        for entry in detail["timeline"]
        if entry["kind"] == "task_created"
    }
    assert (why["dept_head"], why["leader"], why["finance"]) == (
        "市场部负责人",
        "市场部的分管领导",
        "角色：财务专员（金额 200,000.00 超过财务联审金额 50,000.00）",
    )
    [executed] = [
        e for e in detail["timeline"] if e["kind"] == "stage_completed" and e["node_id"] == "materials"
    ]
    assert executed["data"]["note"] == "供应商缺货，已切换备用供应商"

    # Everyone involved was told; the audit trail names every action.
    assert await Task.count() == 9  # 3 approvals, the leader again, 3 stages, the change review, summary
    assert await OutboxMessage.count().where(OutboxMessage.key.like("task_assigned:%")) == 9
    actions = [row["action"] for row in await AuditEntry.select(AuditEntry.action).order_by(AuditEntry.id)]
    instance_actions = [action for action in actions if action.startswith("instance.")]
    assert instance_actions[:5] == [
        "instance.create",
        "instance.update_data",
        "instance.submit",
        "instance.approve",
        "instance.return",
    ]
    assert instance_actions[-1] == "instance.summary"

    # Data scopes: 产品部's employee does not see it; 市场部's head and the admin do.
    outsider = await api_user(client, "e1002")
    assert (await outsider.get(f"/api/v1/instances/{instance}")).status_code == 404
    assert (await outsider.post(f"/api/v1/instances/{instance}/comment", {"text": "?"})).status_code == 404
    assert ok(await outsider.get("/api/v1/instances", mine="false"))["total"] == 0
    assert (await head.detail(instance))["number"] == draft["number"]
    admin = await api_user(client, "admin")
    assert (await admin.detail(instance))["status"] == "archived"
    assert ok(await head.get("/api/v1/instances", mine="false"))["total"] == 1


async def test_a_budget_of_30000_skips_the_finance_co_review(app: Litestar, client: Client) -> None:
    clock = Clock()
    app.state.clock = clock
    applicant, head, leader, finance = await people(client)
    preview = ok(
        await applicant.post(f"/api/v1/templates/{TEMPLATE}/preview-route", {"data": marketing_data(30_000)})
    )
    assert [step for step, _, _ in approvals(preview)] == ["dept_head", "leader"]

    created = await submitted(applicant, marketing_data(30_000))
    ok(await head.act((await head.my_task(created["id"]))["id"], "approve"))
    result = ok(await leader.act((await leader.my_task(created["id"]))["id"], "approve"))
    assert (result["status"], result["current_step"]) == ("executing", "场地确认")
    assert ok(await finance.get("/api/v1/tasks"))["total"] == 0
    assert await Task.count().where(Task.node_id == "finance") == 0
    # the finance co-review step looked at the budget and let the request pass, saying why
    detail = await applicant.detail(created["id"])
    [review] = [entry for entry in detail["timeline"] if entry["node_id"] == "finance"]
    assert review["kind"] == "plugin_continued"
    assert review["data"]["note"] == "金额 30,000.00 未超过财务联审金额 50,000.00，无需财务联审"


async def test_an_urgent_request_is_due_in_24_hours_instead_of_two_working_days(
    app: Litestar, client: Client
) -> None:
    clock = Clock()
    app.state.clock = clock
    applicant, head, _, _ = await people(client)
    urgent = await submitted(applicant, marketing_data(200_000, urgent=True, urgent_reason="展会档期临近"))
    normal = await submitted(applicant, marketing_data(200_000))

    task = await head.my_task(urgent["id"])
    assert task["urgent"] is True
    assert when(task["due_at"]) - when(task["created_at"]) == dt.timedelta(hours=24)
    other = await head.my_task(normal["id"])
    assert when(other["due_at"]) == CALENDAR.add_working_hours(when(other["created_at"]), 16)
    assert when(other["due_at"]) - when(other["created_at"]) > dt.timedelta(hours=24)
    inbox = ok(await head.get("/api/v1/tasks"))["items"]
    assert [item["instance_id"] for item in inbox] == [urgent["id"], normal["id"]], "urgent first"

    # 加急 later: the open task's deadline is pulled in to 24 hours after it was created.
    clock.advance(hours=1)
    ok(await applicant.post(f"/api/v1/instances/{normal['id']}/mark-urgent"))
    moved = await head.my_task(normal["id"])
    assert when(moved["due_at"]) - when(moved["created_at"]) == dt.timedelta(hours=24)

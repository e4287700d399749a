"""The work pages driven like a browser: forms posted, pages read, as the demo people.

张伟 (e1001) saves a draft and submits it; 王芳 (e2001) finds it in her to-do list and sends
it back with a note; 张伟 reads the note, fixes the form and resubmits; 王芳, 李强 (e3001) and
刘洋 (e4001, finance: the budget is over 50,000) approve; the request's page tells the story.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from storage.tables import Notification
from tests.service.support import Clock, person_id
from tests.web.session import Client, sign_in

HTML = {"accept": "text/html"}
HTMX = {"accept": "text/html", "hx-request": "true"}
FORM = "/process-center/marketing-activity"
PAGE = 20

FILLED: dict[str, str] = {
    "activity_name": "2024年Q3新品推广会",
    "department": "2",
    "applicant": "4",
    "contact_phone": "13800138000",
    "start_date": "2027-03-01",
    "end_date": "2027-03-03",
    "budget": "200000",
    "urgent": "false",
    "goal": "新品认知度提升30%",
    "audience": "华东区域的潜在客户",
    "execution_plan": "场地确认、物料采购、活动执行、总结复盘",
    "venue": "上海国际会议中心",
    "budget_lines[0].item": "场地租赁",
    "budget_lines[0].category": "venue",
    "budget_lines[0].amount": "120000",
    "budget_lines[1].item": "物料制作",
    "budget_lines[1].category": "materials",
    "budget_lines[1].amount": "80000",
    "attachments": "[]",
}


class Person:
    """A demo person with their own browser session (cookies) and CSRF token."""

    def __init__(self, client: Client, token: str) -> None:
        self.client = client
        self.token = token

    async def page(self, path: str, status: int = 200) -> str:
        response = await self.client.get(path, headers=HTML)
        assert response.status_code == status, f"{path}: {response.status_code} {response.text[:500]}"
        return response.text

    async def post(self, path: str, data: dict[str, Any], *, htmx: bool = False) -> httpx.Response:
        body = {**data, "_csrf_token": self.token}
        headers = {**HTMX, "x-csrftoken": self.token} if htmx else HTML
        return await self.client.post(path, data=body, headers=headers, follow_redirects=False)

    async def task_on(self, instance_id: int) -> int:
        """The id of the caller's open decision on the request, read from its page."""
        html = await self.page(f"/instances/{instance_id}")
        found = re.findall(r'action="/tasks/(\d+)/act"', html)
        assert len(found) == 1, f"expected one task form on the page, found {found}"
        return int(found[0])


@pytest.fixture()
async def people(app: Litestar) -> AsyncIterator[dict[str, Person]]:
    """The four people of the story, each signed in with their own client; the clock is the test's."""
    app.state.clock = Clock()
    async with contextlib.AsyncExitStack() as stack:
        signed: dict[str, Person] = {}
        for who in ("e1001", "e2001", "e3001", "e4001"):
            client = await stack.enter_async_context(
                AsyncTestClient(app=app, base_url="http://testserver.local")
            )
            signed[who] = Person(client, await sign_in(client, who))
        yield signed


def instance_of(response: httpx.Response) -> int:
    assert response.status_code == 303, f"{response.status_code}: {response.text[:800]}"
    found = re.match(r"^/instances/(\d+)", response.headers["location"])
    assert found, response.headers["location"]
    return int(found.group(1))


def text_of(html: str) -> str:
    """The page's words without tags, for asserting what a reader sees."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


async def test_the_story_through_the_pages(people: dict[str, Person]) -> None:
    applicant, head, leader, finance = (people[who] for who in ("e1001", "e2001", "e3001", "e4001"))

    # 保存草稿: only the activity name so far; the draft opens in its form again.
    saved = await applicant.post(f"{FORM}/draft", {"activity_name": "2024年Q3新品推广会", "urgent": "false"})
    instance = instance_of(saved)
    assert saved.headers["location"] == f"/instances/{instance}/edit?done=saved"
    edit = await applicant.page(saved.headers["location"])
    assert "草稿已保存" in edit and 'value="2024年Q3新品推广会"' in edit
    assert f'formaction="/instances/{instance}/submit"' in edit
    drafts = text_of(await applicant.page("/my-requests?tab=drafts"))
    assert "2024年Q3新品推广会" in drafts and "草稿" in drafts

    # 提交审批 with fields missing: errors beside the fields, nothing typed is lost.
    incomplete = await applicant.post(
        f"/instances/{instance}/submit", {**FILLED, "contact_phone": "", "goal": ""}
    )
    assert incomplete.status_code == 422
    assert 'id="f-contact_phone-error"' in incomplete.text and 'id="f-goal-error"' in incomplete.text
    assert 'value="上海国际会议中心"' in incomplete.text and 'value="120000"' in incomplete.text

    submitted = await applicant.post(f"/instances/{instance}/submit", FILLED)
    assert instance_of(submitted) == instance
    page = text_of(await applicant.page(submitted.headers["location"]))
    assert "已提交审批" in page and "审批中" in page and "部门负责人审批" in page
    mine = text_of(await applicant.page("/my-requests?tab=in_approval"))
    assert "审批中" in mine and "王芳" in mine, "the list says who holds the request"

    # 王芳 has it in her to-do list, with a count in the navigation.
    inbox = await head.page("/inbox")
    assert re.search(r'id="nav-count-inbox" class="nav-count">1<', inbox)
    assert f'href="/instances/{instance}"' in inbox and "市场部负责人" in inbox
    badges = await head.client.get("/nav-counts", headers=HTMX)
    assert re.search(r'id="nav-count-inbox" class="nav-count" hx-swap-oob="true">1<', badges.text)

    # A return without a note is refused, in place, with a message.
    task = await head.task_on(instance)
    refused = await head.post(
        f"/tasks/{task}/act", {"instance": instance, "action": "return", "note": ""}, htmx=True
    )
    assert refused.status_code == 422 and refused.headers["x-formflow-message"] == "1"
    assert "退回时请写明需要补充或修改的内容" in refused.text
    refused_page = await head.post(
        f"/tasks/{task}/act", {"instance": instance, "action": "return", "note": " "}
    )
    assert refused_page.status_code == 422 and "退回时请写明需要补充或修改的内容" in refused_page.text

    returned = await head.post(
        f"/tasks/{task}/act",
        {"instance": instance, "action": "return", "note": "需补充竞品分析数据", "fix": "goal"},
        htmx=True,
    )
    assert (
        returned.status_code == 200
        and returned.headers["hx-redirect"] == f"/instances/{instance}?done=return"
    )

    # 张伟 sees the note at the top; the form opens with the field to fix marked.
    listed = text_of(await applicant.page("/my-requests?tab=returned"))
    assert "需补充竞品分析数据" in listed and "退回补充" in listed
    edit = await applicant.page(f"/instances/{instance}/edit")
    assert "需补充竞品分析数据" in edit
    assert 'id="f-goal-field"' in edit and re.search(
        r'class="field field-textarea has-error" id="f-goal-field"', edit
    )

    amended = {**FILLED, "goal": "新品认知度提升30%；竞品分析：A品牌同期活动预算25万"}
    resubmitted = await applicant.post(f"/instances/{instance}/submit", amended)
    assert instance_of(resubmitted) == instance
    assert "审批中" in text_of(await applicant.page(f"/instances/{instance}"))

    # Approvals continue: the head again, the supervising leader, then finance (over 50,000).
    for approver in (head, leader, finance):
        task = await approver.task_on(instance)
        approved = await approver.post(
            f"/tasks/{task}/act", {"instance": instance, "action": "approve", "note": "同意"}, htmx=True
        )
        assert approved.status_code == 200, approved.text
    page = text_of(await applicant.page(f"/instances/{instance}"))
    assert "执行中" in page and "场地确认" in page

    # The timeline names every decision with who, the note and how long it took.
    for words in (
        "张伟 提交审批",
        "王芳 退回补充",
        "需补充竞品分析数据",
        "张伟 重新提交",
        "刘洋 已同意",
        "用时",
    ):
        assert words in page, words
    timeline = page[page.index("时间线") :]
    assert timeline.index("王芳 退回补充") < timeline.index("张伟 重新提交") < timeline.index("李强 已同意")


async def test_a_second_approval_of_the_same_task_is_a_conflict_shown_in_place(
    people: dict[str, Person],
) -> None:
    applicant, head = people["e1001"], people["e2001"]
    instance = instance_of(await applicant.post(f"{FORM}/submit", FILLED))
    task = await head.task_on(instance)
    body = {"instance": instance, "action": "approve"}
    assert (await head.post(f"/tasks/{task}/act", body, htmx=True)).status_code == 200
    again = await head.post(f"/tasks/{task}/act", body, htmx=True)
    assert again.status_code == 409 and "其他人已先处理" in again.text and "重新加载" in again.text


async def test_withdraw_and_urge_from_my_requests(people: dict[str, Person]) -> None:
    applicant = people["e1001"]
    instance = instance_of(await applicant.post(f"{FORM}/submit", FILLED))
    listed = await applicant.page("/my-requests")
    assert f'hx-post="/instances/{instance}/urge"' in listed and "hx-confirm" in listed
    urged = await applicant.post(f"/instances/{instance}/urge", {}, htmx=True)
    assert urged.headers["hx-redirect"] == f"/instances/{instance}?done=urge"
    too_soon = await applicant.post(f"/instances/{instance}/urge", {}, htmx=True)
    assert too_soon.status_code == 429 and "一小时内" in too_soon.text
    withdrawn = await applicant.post(f"/instances/{instance}/withdraw", {})
    assert withdrawn.status_code == 303
    assert "已撤回" in text_of(await applicant.page("/my-requests?tab=done"))


async def test_batch_approval_acts_on_each_task_and_lists_the_results(people: dict[str, Person]) -> None:
    applicant, head = people["e1001"], people["e2001"]
    first = instance_of(await applicant.post(f"{FORM}/submit", FILLED))
    second = instance_of(await applicant.post(f"{FORM}/submit", {**FILLED, "activity_name": "秋季路演"}))
    tasks = [await head.task_on(first), await head.task_on(second)]
    response = await head.post("/inbox/approve", {"task": [str(t) for t in tasks], "comment": "同意"})
    assert response.status_code == 200
    results = text_of(response.text)
    assert results.count("已同意") >= 2 and "秋季路演" in results
    assert "暂无待办" in results
    done = text_of(await head.page("/inbox?tab=done"))
    assert "秋季路演" in done and "已同意" in done


async def test_inbox_filters_by_applicant_and_overdue(people: dict[str, Person]) -> None:
    applicant, head = people["e1001"], people["e2001"]
    instance_of(await applicant.post(f"{FORM}/submit", FILLED))
    assert "2024年Q3新品推广会" in await head.page("/inbox?applicant=4")
    assert "2024年Q3新品推广会" not in await head.page("/inbox?applicant=999")
    assert "2024年Q3新品推广会" not in await head.page("/inbox?overdue=true")


async def test_outsiders_cannot_open_or_act_on_a_request(people: dict[str, Person], client: Client) -> None:
    applicant, head = people["e1001"], people["e2001"]
    instance = instance_of(await applicant.post(f"{FORM}/submit", FILLED))
    task = await head.task_on(instance)
    token = await sign_in(client, "e1002")  # 产品部: another department
    outsider = Person(client, token)
    assert "您没有权限" not in await outsider.page(f"/instances/{instance}", status=404)
    acted = await outsider.post(f"/tasks/{task}/act", {"instance": instance, "action": "approve"}, htmx=True)
    assert acted.status_code == 404
    # The applicant may see the request but not decide its approval.
    mine = await applicant.post(f"/tasks/{task}/act", {"instance": instance, "action": "approve"}, htmx=True)
    assert mine.status_code == 403 and "您不能" in mine.text
    # The department head reads the budget but cannot edit it at her step (read-only mask).
    page = await head.page(f"/instances/{instance}")
    assert 'name="budget"' not in page and "200,000.00" in page


async def test_execution_progress_change_request_and_summary(people: dict[str, Person]) -> None:
    applicant = people["e1001"]
    small = {
        **FILLED,
        "budget": "30000",
        "budget_lines[0].amount": "20000",
        "budget_lines[1].amount": "10000",
    }
    instance = instance_of(await applicant.post(f"{FORM}/submit", small))
    for who in ("e2001", "e3001"):
        task = await people[who].task_on(instance)
        assert (
            await people[who].post(f"/tasks/{task}/act", {"instance": instance, "action": "approve"})
        ).status_code == 303
    page = await applicant.page(f"/instances/{instance}")
    assert 'id="progress-form"' in page and "场地确认" in page
    flow = text_of(page[page.index('id="flow-title"') :])
    assert "分管领导审批 已完成 李强" in flow and "财务联审 无需" in flow, "30,000 needs no finance co-review"
    assert "场地确认 进行中 张伟" in flow

    recorded = await applicant.post(
        f"/instances/{instance}/progress", {"result": "场地已确认", "attachments": "[]"}
    )
    assert recorded.status_code == 303
    page = text_of(await applicant.page(f"/instances/{instance}"))
    assert "记录进展" in page and "结果：场地已确认" in page and "物料采购" in page

    change_form = await applicant.page(f"/instances/{instance}/change")
    assert 'name="reason"' in change_form
    duration = re.search(r'<output id="[^"]*duration_days[^"]*" class="computed"[^>]*>([^<]*)<', change_form)
    assert duration and duration.group(1).strip() not in ("", "—"), "computed fields show their values"
    changed = {**small, "end_date": "2027-03-05"}
    preview = await applicant.post(
        f"/instances/{instance}/change", {**changed, "reason": "场地档期调整", "preview": "1"}
    )
    assert preview.status_code == 200 and "2027-03-03" in preview.text and "2027-03-05" in preview.text
    unchanged = await applicant.post(f"/instances/{instance}/change", {**small, "reason": "没有变化"})
    assert unchanged.status_code == 422 and "没有修改任何内容" in unchanged.text
    sent = await applicant.post(f"/instances/{instance}/change", {**changed, "reason": "场地档期调整"})
    assert sent.status_code == 303
    page = text_of(await applicant.page(f"/instances/{instance}"))
    assert "变更审批中" in page and "场地档期调整" in page

    review = await people["e2001"].task_on(instance)
    approved = await people["e2001"].post(f"/tasks/{review}/act", {"instance": instance, "action": "approve"})
    assert approved.status_code == 303
    page = text_of(await applicant.page(f"/instances/{instance}"))
    assert "变更已通过并生效" in page and "2027-03-03 → 2027-03-05" in page

    for result in ("物料已采购", "活动顺利举办"):
        assert (
            await applicant.post(f"/instances/{instance}/progress", {"result": result})
        ).status_code == 303
    page = await applicant.page(f"/instances/{instance}")
    assert 'id="summary-form"' in page
    bad = await applicant.post(f"/instances/{instance}/summary", {"actual_spend": "很多"}, htmx=True)
    assert bad.status_code == 422
    done = await applicant.post(
        f"/instances/{instance}/summary",
        {
            "actual_spend": "28,500.50",
            "results": "新增会员820人",
            "problems": "物料晚到一天",
            "attachments": "[]",
        },
    )
    assert done.status_code == 303
    page = text_of(await applicant.page(f"/instances/{instance}"))
    assert "已归档" in page and "实际花费：28,500.50 元" in page


async def test_pages_switch_to_english(people: dict[str, Person]) -> None:
    applicant = people["e1001"]
    applicant.client.cookies.set("lang", "en")
    page = text_of(await applicant.page("/my-requests"))
    assert "My requests" in page and "In approval" in page


async def test_the_print_view_lists_every_opinion(people: dict[str, Person]) -> None:
    applicant, head = people["e1001"], people["e2001"]
    instance = instance_of(await applicant.post(f"{FORM}/submit", FILLED))
    task = await head.task_on(instance)
    body = {"instance": instance, "action": "approve", "note": "预算合理"}
    assert (await head.post(f"/tasks/{task}/act", body)).status_code == 303
    printed = text_of(await applicant.page(f"/instances/{instance}/print"))
    assert "审批记录" in printed and "2024年Q3新品推广会" in printed
    assert "部门负责人审批 王芳 已同意 预算合理" in printed
    assert "张伟 打印于" in printed


async def test_messages_show_unread_and_open_marks_them_read(people: dict[str, Person]) -> None:
    applicant = people["e1001"]
    instance = instance_of(await applicant.post(f"{FORM}/submit", FILLED))
    await Notification.insert(
        Notification(
            key="test:cc",
            person=await person_id("e1001"),
            kind="cc",
            title="抄送给您：2024年Q3新品推广会",
            link=f"/instances/{instance}",
            created_at=dt.datetime.now(dt.UTC),
        )
    )
    page = await applicant.page("/notifications")
    assert "抄送给您：2024年Q3新品推广会" in page
    assert re.search(r'id="nav-count-notifications" class="nav-count">1<', page)
    [message] = re.findall(r'href="/notifications/(\d+)"', page)
    opened = await applicant.client.get(f"/notifications/{message}", headers=HTML, follow_redirects=False)
    assert opened.status_code in (302, 303) and opened.headers["location"] == f"/instances/{instance}"
    assert re.search(
        r'id="nav-count-notifications" class="nav-count"><', await applicant.page("/notifications")
    )
    someone_else = await people["e2001"].client.get(f"/notifications/{message}", headers=HTML)
    assert someone_else.status_code == 404


async def test_transfer_and_add_signer_need_their_people(people: dict[str, Person]) -> None:
    applicant, head, leader = people["e1001"], people["e2001"], people["e3001"]
    instance = instance_of(await applicant.post(f"{FORM}/submit", FILLED))
    task = await head.task_on(instance)
    nobody = await head.post(f"/tasks/{task}/act", {"instance": instance, "action": "transfer"}, htmx=True)
    assert nobody.status_code == 422 and "请选择转交给谁" in nobody.text
    no_position = {"instance": instance, "action": "add_signer", "people": str(await person_id("e2002"))}
    assert "请选择加签方式" in (await head.post(f"/tasks/{task}/act", no_position, htmx=True)).text

    body = {
        "instance": instance,
        "action": "transfer",
        "to": str(await person_id("e3001")),
        "note": "出差，请代批",
    }
    moved = await head.post(f"/tasks/{task}/act", body, htmx=True)
    assert moved.headers["hx-redirect"] == f"/instances/{instance}?done=transfer"
    handed = await leader.task_on(instance)
    page = text_of(await leader.page(f"/instances/{instance}"))
    assert "王芳 转交了任务" in page and "出差，请代批" in page and "王芳 转交" in page, "why 李强 holds it"
    signer = {
        "instance": instance,
        "action": "add_signer",
        "people": str(await person_id("e2002")),
        "position": "after",
    }
    added = await leader.post(f"/tasks/{handed}/act", signer, htmx=True)
    assert added.status_code == 200, added.text
    assert "赵敏" in text_of(await applicant.page(f"/instances/{instance}"))


# -- refusals shown in place ----------------------------------------------------------------


def said_in_place(response: httpx.Response, status: int, words: str, *, htmx: bool) -> None:
    """A refusal: its status, the words in an alert, a fragment for htmx or a whole page without."""
    assert response.status_code == status, f"{response.status_code}: {response.text[:400]}"
    assert response.headers["content-type"].startswith("text/html"), "never a raw JSON error"
    assert 'role="alert"' in response.text and words in response.text, response.text[:800]
    if htmx:
        assert response.headers["x-formflow-message"] == "1", "app.js swaps only marked answers"
        assert "<html" not in response.text, "a fragment, swapped in beside the form"
    else:
        assert "<html" in response.text and 'id="main"' in response.text, "a whole page"


async def test_refused_decisions_say_why_beside_the_form(people: dict[str, Person]) -> None:
    applicant, head = people["e1001"], people["e2001"]
    instance = instance_of(await applicant.post(f"{FORM}/submit", FILLED))
    task = await head.task_on(instance)
    other = str(await person_id("e2002"))
    cases = [
        ({"action": "return", "note": ""}, 422, "退回时请写明需要补充或修改的内容"),
        ({"action": "transfer", "to": ""}, 422, "请选择转交给谁"),
        ({"action": "add_signer", "position": "after"}, 422, "请选择加签人"),
        ({"action": "add_signer", "people": other}, 422, "请选择加签方式"),
        ({"action": "shrug"}, 422, "请选择处理方式"),
    ]
    for body, status, words in cases:
        for htmx in (True, False):
            response = await head.post(f"/tasks/{task}/act", {"instance": instance, **body}, htmx=htmx)
            said_in_place(response, status, words, htmx=htmx)
    for htmx in (True, False):
        empty = await head.post(f"/instances/{instance}/comment", {"text": "  "}, htmx=htmx)
        said_in_place(empty, 422, "请先填写评论内容", htmx=htmx)
    assert "审批中" in text_of(await applicant.page(f"/instances/{instance}")), "nothing happened"


async def test_a_stale_page_says_someone_else_acted(people: dict[str, Person], other_client: Client) -> None:
    """王芳 has the request open in two browsers; she approves in one, then in the other."""
    applicant, head = people["e1001"], people["e2001"]
    second = Person(other_client, await sign_in(other_client, "e2001"))
    instance = instance_of(await applicant.post(f"{FORM}/submit", FILLED))
    task = await head.task_on(instance)
    assert await second.task_on(instance) == task, "both pages show the same task"
    approved = await head.post(f"/tasks/{task}/act", {"instance": instance, "action": "approve"}, htmx=True)
    assert approved.status_code == 200 and approved.headers["hx-redirect"].endswith("done=approve")
    for action in ("approve", "reject", "return"):
        body = {"instance": instance, "action": action, "note": "再看看"}
        for htmx in (True, False):
            stale = await second.post(f"/tasks/{task}/act", body, htmx=htmx)
            said_in_place(stale, 409, "其他人已先处理了这个申请", htmx=htmx)
            assert "重新加载" in stale.text


async def test_refused_requests_of_the_applicant_say_why(people: dict[str, Person]) -> None:
    applicant = people["e1001"]
    instance = instance_of(await applicant.post(f"{FORM}/submit", FILLED))
    assert (await applicant.post(f"/instances/{instance}/urge", {}, htmx=True)).status_code == 200
    for htmx in (True, False):
        again = await applicant.post(f"/instances/{instance}/urge", {}, htmx=htmx)
        said_in_place(again, 429, "一小时内已催办过", htmx=htmx)
    assert (await applicant.post(f"/instances/{instance}/withdraw", {})).status_code == 303
    for htmx in (True, False):
        withdrawn = await applicant.post(f"/instances/{instance}/withdraw", {}, htmx=htmx)
        said_in_place(withdrawn, 409, "重新加载", htmx=htmx)
    # Progress before the request is executing: there is no stage to report on.
    for htmx in (True, False):
        early = await applicant.post(f"/instances/{instance}/progress", {"result": "完成"}, htmx=htmx)
        said_in_place(early, 422, "请选择要记录的阶段", htmx=htmx)


async def test_refused_execution_records_say_why(people: dict[str, Person]) -> None:
    applicant = people["e1001"]
    small = {
        **FILLED,
        "budget": "30000",
        "budget_lines[0].amount": "20000",
        "budget_lines[1].amount": "10000",
    }
    instance = instance_of(await applicant.post(f"{FORM}/submit", small))
    for who in ("e2001", "e3001"):
        task = await people[who].task_on(instance)
        body = {"instance": instance, "action": "approve"}
        assert (await people[who].post(f"/tasks/{task}/act", body)).status_code == 303
    [stage] = re.findall(r'name="task_id" value="(\d+)"', await applicant.page(f"/instances/{instance}"))
    recorded = await applicant.post(
        f"/instances/{instance}/progress", {"task_id": stage, "result": "场地已确认"}
    )
    assert recorded.status_code == 303
    for htmx in (True, False):  # the same stage again, from a page that still showed it
        twice = await applicant.post(
            f"/instances/{instance}/progress", {"task_id": stage, "result": "场地已确认"}, htmx=htmx
        )
        said_in_place(twice, 409, "重新加载", htmx=htmx)
    unchanged = await applicant.post(f"/instances/{instance}/change", {**small, "reason": "没有变化"})
    said_in_place(unchanged, 422, "没有修改任何内容", htmx=False)
    no_reason = await applicant.post(f"/instances/{instance}/change", {**small, "end_date": "2027-03-05"})
    said_in_place(no_reason, 422, "请说明变更原因", htmx=False)
    assert 'value="2027-03-05"' in no_reason.text, "what was typed stays"
    for spend in ("很多", "-5", "1e999", "NaN", "12.345"):
        for htmx in (True, False):
            bad = await applicant.post(f"/instances/{instance}/summary", {"actual_spend": spend}, htmx=htmx)
            said_in_place(bad, 422, "请以元为单位填写实际花费", htmx=htmx)
    page = text_of(await applicant.page(f"/instances/{instance}"))
    assert "执行中" in page and "物料采购" in page, "nothing was recorded"


async def test_inbox_filters_and_pages_in_the_database(people: dict[str, Person]) -> None:
    """25 requests wait for 王芳: a page holds 20; the filters narrow the count and the pages."""
    applicant, head = people["e1001"], people["e2001"]
    for n in range(PAGE + 5):
        instance_of(await applicant.post(f"{FORM}/submit", {**FILLED, "activity_name": f"路演{n:02d}"}))
    first = await head.page("/inbox")
    assert "共 25 项" in text_of(first)
    assert len(re.findall(r'name="task" value="\d+"', first)) == PAGE
    second = await head.page("/inbox?page=2")
    assert len(re.findall(r'name="task" value="\d+"', second)) == 5
    assert set(re.findall(r"路演\d\d", first)).isdisjoint(re.findall(r"路演\d\d", second))
    assert 'value="marketing-activity"' in first and f'value="{await person_id("e1001")}"' in first
    assert (
        len(re.findall(r'name="task" value="\d+"', await head.page("/inbox?template=marketing-activity")))
        == PAGE
    )
    assert "暂无待办" in await head.page("/inbox?template=expense-reimbursement")
    assert "暂无待办" in await head.page("/inbox?applicant=abc")


async def test_my_requests_tabs_spanning_statuses_page_in_the_database(people: dict[str, Person]) -> None:
    applicant = people["e1001"]
    ids = [
        instance_of(await applicant.post(f"{FORM}/submit", {**FILLED, "activity_name": f"路演{n:02d}"}))
        for n in range(3)
    ]
    for instance in ids[:2]:
        assert (await applicant.post(f"/instances/{instance}/withdraw", {})).status_code == 303
    done = text_of(await applicant.page("/my-requests?tab=done"))
    assert "路演00" in done and "路演01" in done and "路演02" not in done
    listed = await applicant.page("/my-requests")
    assert all(f'href="/instances/{instance}"' in listed for instance in ids)
    assert f'hx-post="/instances/{ids[2]}/withdraw"' in listed
    assert f'hx-post="/instances/{ids[0]}/withdraw"' not in listed

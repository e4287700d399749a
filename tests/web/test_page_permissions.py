"""The work pages refuse what the permissions forbid, as the wrong people would try it.

Pages, not the JSON API: the demo organisation and templates, each person with their own
browser session. Someone from another department opens a marketing request, its print view
and its file; an approver whose step hides fields reads the page and the print view and asks
for the hidden file; people post actions their step or their role does not allow. Each refusal
says why in words and leaves the request exactly as it was (no event, same row version).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from storage.tables import Instance, InstanceEvent, Task
from tests.service.support import Clock, demo_flow, person_id, publish
from tests.web.session import sign_in
from tests.web.test_attachments import pdf
from tests.web.test_work_pages import FILLED, FORM, HTML, Person, instance_of, text_of

PEOPLE = ("e1001", "e2001", "e3001", "e4001", "e1002", "e2002")
SECRET_FILE = "venue-contract.pdf"


@pytest.fixture()
async def people(app: Litestar) -> AsyncIterator[dict[str, Person]]:
    app.state.clock = Clock()
    async with contextlib.AsyncExitStack() as stack:
        signed: dict[str, Person] = {}
        for who in PEOPLE:
            client = await stack.enter_async_context(
                AsyncTestClient(app=app, base_url="http://testserver.local")
            )
            signed[who] = Person(client, await sign_in(client, who))
        yield signed


async def upload(person: Person, name: str = SECRET_FILE) -> dict[str, Any]:
    response = await person.client.post(
        "/api/v1/attachments",
        files={"file": (name, pdf(), "application/pdf")},
        headers={"x-csrftoken": person.token},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return {key: body[key] for key in ("id", "name", "size", "content_type")}


async def submitted_with_file(person: Person, form: str = FORM) -> tuple[int, str]:
    """A marketing request with one attached file: (instance id, the file's id)."""
    file = await upload(person)
    instance = instance_of(await person.post(f"{form}/submit", {**FILLED, "attachments": json.dumps([file])}))
    return instance, file["id"]


async def snapshot(instance_id: int) -> tuple[int, int, str, list[tuple[int, str]]]:
    """What a refused action must leave untouched: events, row version, status, open tasks."""
    events = await InstanceEvent.count().where(InstanceEvent.instance == instance_id)
    row = (
        await Instance.select(Instance.row_version, Instance.status).where(Instance.id == instance_id).first()
    )
    tasks = await Task.select(Task.id, Task.status).where(Task.instance == instance_id).order_by(Task.id)
    return events, row["row_version"], row["status"], [(t["id"], t["status"]) for t in tasks]


async def download(person: Person, uid: str) -> tuple[int, bytes]:
    response = await person.client.get(f"/api/v1/attachments/{uid}", follow_redirects=False)
    return response.status_code, response.content


def leaks(html: str) -> list[str]:
    """The request's own words found on a page that should show none of them."""
    words = ("2024年Q3新品推广会", "上海国际会议中心", "13800138000", "200,000", SECRET_FILE, "华东区域")
    return [word for word in words if word in html]


# -- another department ---------------------------------------------------------------------


async def test_another_department_sees_neither_the_page_nor_the_print_view_nor_the_file(
    people: dict[str, Person],
) -> None:
    applicant, outsider = people["e1001"], people["e1002"]  # 市场部, 产品部
    instance, uid = await submitted_with_file(applicant)
    for path in (f"/instances/{instance}", f"/instances/{instance}/print", f"/instances/{instance}/change"):
        response = await outsider.client.get(path, headers=HTML)
        assert response.status_code in (403, 404), path
        assert "text/html" in response.headers["content-type"], "an error page, not a raw error"
        assert not leaks(response.text), (path, leaks(response.text))
    status, content = await download(outsider, uid)
    assert status in (403, 404) and b"%PDF" not in content
    # Nor do the lists of the outsider name it.
    for path in ("/inbox", "/inbox?tab=done", "/inbox?tab=cc", "/my-requests"):
        assert not leaks(await outsider.page(path)), path
    # The applicant still reads and downloads it: the refusals are about the person.
    assert "2024年Q3新品推广会" in await applicant.page(f"/instances/{instance}")
    status, content = await download(applicant, uid)
    assert status == 200 and content.startswith(b"%PDF")


async def test_an_outsider_posting_actions_is_refused_and_nothing_is_recorded(
    people: dict[str, Person],
) -> None:
    applicant, head, outsider = people["e1001"], people["e2001"], people["e1002"]
    instance = instance_of(await applicant.post(f"{FORM}/submit", FILLED))
    task = await head.task_on(instance)
    before = await snapshot(instance)
    attempts = [
        (f"/tasks/{task}/act", {"instance": instance, "action": "approve"}),
        (f"/instances/{instance}/comment", {"text": "看看"}),
        (f"/instances/{instance}/urge", {}),
        (f"/instances/{instance}/withdraw", {}),
        (f"/instances/{instance}/change", {**FILLED, "end_date": "2027-03-09", "reason": "改期"}),
    ]
    for path, body in attempts:
        for htmx in (True, False):
            response = await outsider.post(path, body, htmx=htmx)
            assert response.status_code in (403, 404), (path, htmx, response.status_code)
            assert "text/html" in response.headers["content-type"], (path, htmx)
            assert not leaks(response.text), (path, htmx, leaks(response.text))
    assert await snapshot(instance) == before


# -- a field hidden at a step ---------------------------------------------------------------


async def _hiding_template() -> str:
    """The marketing form with a flow whose first step hides the phone number and the files."""
    flow = demo_flow()
    for node in flow["nodes"]:
        if node["id"] == "dept_head":
            node["field_permissions"] = {**node.get("field_permissions", {}), "contact_phone": "hidden"}
            node["field_permissions"]["attachments"] = "hidden"
    await publish("marketing-hidden", flow)
    return "/process-center/marketing-hidden"


async def test_a_field_hidden_at_the_step_is_absent_from_the_page_the_print_view_and_downloads(
    people: dict[str, Person],
) -> None:
    applicant, head, leader = people["e1001"], people["e2001"], people["e3001"]
    form = await _hiding_template()
    instance, uid = await submitted_with_file(applicant, form)
    for path in (f"/instances/{instance}", f"/instances/{instance}/print"):
        html = await head.page(path)
        shown = text_of(html)
        assert "2024年Q3新品推广会" in shown, "the rest of the form is there"
        assert "联系电话" not in shown and "13800138000" not in html, path
        assert SECRET_FILE not in html and uid not in html, path
    # The hidden field's value is not spelled out in a field list either ("fields to fix").
    assert 'value="contact_phone"' not in await head.page(f"/instances/{instance}")
    status, content = await download(head, uid)
    assert status == 403 and b"%PDF" not in content
    # The applicant and an approver whose step shows the field still get the file.
    assert (await download(applicant, uid))[0] == 200
    task = await head.task_on(instance)
    approved = await head.post(f"/tasks/{task}/act", {"instance": instance, "action": "approve"})
    assert approved.status_code == 303
    page = await leader.page(f"/instances/{instance}")
    assert "13800138000" in page and SECRET_FILE in page
    assert (await download(leader, uid))[0] == 200


async def test_a_field_hidden_at_the_step_stays_hidden_after_the_approver_acted(
    people: dict[str, Person],
) -> None:
    applicant, head = people["e1001"], people["e2001"]
    form = await _hiding_template()
    instance, uid = await submitted_with_file(applicant, form)
    task = await head.task_on(instance)
    assert (
        await head.post(f"/tasks/{task}/act", {"instance": instance, "action": "approve"})
    ).status_code == 303
    html = await head.page(f"/instances/{instance}")
    assert "13800138000" not in html and SECRET_FILE not in html
    assert (await download(head, uid))[0] == 403


async def test_a_change_of_a_hidden_field_does_not_show_its_values_in_the_timeline(
    people: dict[str, Person],
) -> None:
    applicant, head = people["e1001"], people["e2001"]
    form = await _hiding_template()
    instance = instance_of(await applicant.post(f"{form}/submit", FILLED))
    task = await head.task_on(instance)
    note = {"instance": instance, "action": "return", "note": "请补充目标"}
    assert (await head.post(f"/tasks/{task}/act", note)).status_code == 303
    fixed = {**FILLED, "contact_phone": "13900139000", "goal": "新品认知度提升40%"}
    saved = await applicant.post(f"/instances/{instance}/draft", fixed)
    assert saved.status_code == 303, saved.text[:500]
    own = text_of(await applicant.page(f"/instances/{instance}"))
    assert "13800138000 → 13900139000" in own, "the applicant reads the change in the timeline"
    assert instance_of(await applicant.post(f"/instances/{instance}/submit", fixed)) == instance
    html = await head.page(f"/instances/{instance}")
    assert "新品认知度提升40%" in html, "visible changes are listed"
    assert "13900139000" not in html and "13800138000" not in html


# -- actions the step or the person may not take ---------------------------------------------


async def _at_finance(people: dict[str, Person]) -> tuple[int, int]:
    """A 200,000 request approved up to finance co-review (e4001): (instance, finance task)."""
    instance = instance_of(await people["e1001"].post(f"{FORM}/submit", FILLED))
    for who in ("e2001", "e3001"):
        task = await people[who].task_on(instance)
        response = await people[who].post(f"/tasks/{task}/act", {"instance": instance, "action": "approve"})
        assert response.status_code == 303
    return instance, await people["e4001"].task_on(instance)


async def test_adding_signers_where_the_step_does_not_allow_it_is_refused(people: dict[str, Person]) -> None:
    finance = people["e4001"]
    instance, task = await _at_finance(people)
    page = await finance.page(f"/instances/{instance}")
    assert 'value="add_signer"' not in page, "the step offers no add-signer button"
    before = await snapshot(instance)
    body = {
        "instance": instance,
        "action": "add_signer",
        "people": str(await person_id("e4002")),
        "position": "after",
    }
    refused = await finance.post(f"/tasks/{task}/act", body, htmx=True)
    assert refused.status_code == 403 and 'role="alert"' in refused.text
    assert "您不能" in refused.text
    page = await finance.post(f"/tasks/{task}/act", body)
    assert page.status_code == 403 and 'role="alert"' in page.text and "财务联审" in text_of(page.text)
    assert await snapshot(instance) == before


async def test_approving_someone_elses_task_is_refused(people: dict[str, Person]) -> None:
    applicant, head, leader = people["e1001"], people["e2001"], people["e3001"]
    instance = instance_of(await applicant.post(f"{FORM}/submit", FILLED))
    task = await head.task_on(instance)
    before = await snapshot(instance)
    for who in (leader, applicant):  # both may read the request; neither holds the task
        for htmx in (True, False):
            response = await who.post(
                f"/tasks/{task}/act", {"instance": instance, "action": "approve"}, htmx=htmx
            )
            assert response.status_code == 403, response.text[:300]
            assert 'role="alert"' in response.text and "您不能" in response.text
    assert await snapshot(instance) == before


async def test_the_applicants_commands_are_refused_to_an_approver(people: dict[str, Person]) -> None:
    applicant, head = people["e1001"], people["e2001"]
    instance = instance_of(await applicant.post(f"{FORM}/submit", FILLED))
    before = await snapshot(instance)
    for path, body in (
        (f"/instances/{instance}/withdraw", {}),
        (f"/instances/{instance}/urge", {}),
        (f"/instances/{instance}/mark-urgent", {}),
        (f"/instances/{instance}/draft", {**FILLED, "budget": "1"}),
        (f"/instances/{instance}/submit", {**FILLED, "budget": "1"}),
    ):
        for htmx in (True, False):
            refused = await head.post(path, body, htmx=htmx)
            assert refused.status_code in (403, 409), (path, htmx, refused.status_code)
            assert 'role="alert"' in refused.text and "text/html" in refused.headers["content-type"]
            assert 'name="budget"' not in refused.text, "no form to edit is offered"
    assert await snapshot(instance) == before


async def _executing(people: dict[str, Person]) -> int:
    small = {
        **FILLED,
        "budget": "30000",
        "budget_lines[0].amount": "20000",
        "budget_lines[1].amount": "10000",
    }
    instance = instance_of(await people["e1001"].post(f"{FORM}/submit", small))
    for who in ("e2001", "e3001"):
        task = await people[who].task_on(instance)
        response = await people[who].post(f"/tasks/{task}/act", {"instance": instance, "action": "approve"})
        assert response.status_code == 303
    return instance


async def test_recording_progress_on_a_stage_one_does_not_own_is_refused(people: dict[str, Person]) -> None:
    applicant, head = people["e1001"], people["e2001"]
    instance = await _executing(people)
    [stage] = re.findall(r'name="task_id" value="(\d+)"', await applicant.page(f"/instances/{instance}"))
    before = await snapshot(instance)
    body = {"task_id": stage, "result": "场地已确认", "attachments": "[]"}
    for htmx in (True, False):
        refused = await head.post(f"/instances/{instance}/progress", body, htmx=htmx)
        assert refused.status_code == 403, refused.text[:300]
        assert 'role="alert"' in refused.text
    assert await snapshot(instance) == before
    summary = await head.post(f"/instances/{instance}/summary", {"results": "很好"}, htmx=True)
    assert summary.status_code in (403, 409) and 'role="alert"' in summary.text
    assert await snapshot(instance) == before


async def test_a_change_request_by_someone_other_than_the_applicant_is_refused(
    people: dict[str, Person],
) -> None:
    head = people["e2001"]
    instance = await _executing(people)
    before = await snapshot(instance)
    form = await head.client.get(f"/instances/{instance}/change", headers=HTML, follow_redirects=False)
    assert form.status_code in (303, 403) and 'name="reason"' not in form.text
    body = {
        **FILLED,
        "budget": "30000",
        "budget_lines[0].amount": "20000",
        "budget_lines[1].amount": "10000",
        "end_date": "2027-03-05",
        "reason": "改期",
    }
    refused = await head.post(f"/instances/{instance}/change", body)
    assert refused.status_code == 403 and 'role="alert"' in refused.text
    assert "您不能" in refused.text
    assert await snapshot(instance) == before


# -- copied people (抄送) ----------------------------------------------------------------------


async def test_a_person_copied_on_a_request_may_open_it_and_others_may_not(people: dict[str, Person]) -> None:
    applicant, copied, outsider = people["e1001"], people["e2002"], people["e1002"]
    flow = demo_flow()
    flow["nodes"].append(
        {
            "type": "cc",
            "id": "early_copy",
            "title": "抄送产品部",
            "recipients": {"kind": "people", "ids": [await person_id("e2002")]},
        }
    )
    flow["edges"] = [edge for edge in flow["edges"] if edge["from"] != "start"]
    flow["edges"] += [{"from": "start", "to": "early_copy"}, {"from": "early_copy", "to": "dept_head"}]
    await publish("marketing-copied", flow)
    instance, uid = await submitted_with_file(applicant, "/process-center/marketing-copied")

    listed = await copied.page("/inbox?tab=cc")
    assert f'href="/instances/{instance}"' in listed and "2024年Q3新品推广会" in listed
    page = await copied.page(f"/instances/{instance}")
    assert "2024年Q3新品推广会" in page and SECRET_FILE in page
    assert (await download(copied, uid))[0] == 200
    assert 'action="/tasks/' not in page, "a copied person reads; they do not decide"

    response = await outsider.client.get(f"/instances/{instance}", headers=HTML)
    assert response.status_code == 404 and not leaks(response.text)
    assert "2024年Q3新品推广会" not in await outsider.page("/inbox?tab=cc")
    assert (await download(outsider, uid))[0] == 403


async def test_a_field_hidden_in_the_finance_co_review_is_hidden_from_finance(
    people: dict[str, Person],
) -> None:
    """The plugin step's own field permissions mask its reviewers, like an approval step's."""
    flow = demo_flow()
    for node in flow["nodes"]:
        if node["id"] == "finance":
            node["config"]["field_permissions"] = {"contact_phone": "hidden", "attachments": "hidden"}
    await publish("marketing-finance-hidden", flow)
    applicant, head, leader, finance = people["e1001"], people["e2001"], people["e3001"], people["e4001"]
    instance, uid = await submitted_with_file(applicant, "/process-center/marketing-finance-hidden")
    for approver in (head, leader):
        task = await approver.task_on(instance)
        assert (
            await approver.post(f"/tasks/{task}/act", {"instance": instance, "action": "approve"})
        ).status_code == 303
    await finance.task_on(instance)
    html = await finance.page(f"/instances/{instance}")
    assert "2024年Q3新品推广会" in html
    assert "13800138000" not in html and SECRET_FILE not in html
    assert (await download(finance, uid))[0] == 403

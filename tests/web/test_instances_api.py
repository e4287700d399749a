"""The instance API's edges: idempotency keys, withdraw, urge, transfer, add signer, refusals,
bad bodies, lists and counts, attachments of a request."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar

from storage.tables import Attachment, InstanceEvent, Task, Timer
from tests.service.api_client import ApiUser, api_user, ok
from tests.service.support import Clock, marketing_data, notices
from tests.web.session import Client
from tests.web.test_attachments import pdf

TEMPLATE = "marketing-activity"


@pytest.fixture()
def clock(app: Litestar) -> Clock:
    clock = Clock()
    app.state.clock = clock
    return clock


async def start(applicant: ApiUser, budget: int = 200_000, **data: Any) -> dict[str, Any]:
    body = {"template": TEMPLATE, "data": marketing_data(budget, **data), "submit": True}
    return ok(await applicant.post("/api/v1/instances", body), 201)


async def events(instance_id: int, kind: str) -> list[dict[str, Any]]:
    return list(
        await InstanceEvent.select()
        .where((InstanceEvent.instance == instance_id) & (InstanceEvent.kind == kind))
        .output(load_json=True)
    )


# -- Idempotency-Key ------------------------------------------------------------------------


async def test_an_idempotency_key_replays_the_first_answer(client: Client, clock: Clock) -> None:
    applicant, head = await api_user(client, "e1001"), await api_user(client, "e2001")
    created = await start(applicant)
    task = await head.my_task(created["id"])
    path = f"/api/v1/tasks/{task['id']}/actions"
    first = await head.post(path, {"action": "approve", "comment": "同意"}, key="approve-1")
    again = await head.post(path, {"action": "approve", "comment": "同意"}, key="approve-1")
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert len(await events(created["id"], "approve")) == 1
    # without the key the same request acts again, and the task is no longer open
    assert (await head.post(path, {"action": "approve"})).status_code == 409


async def test_the_same_key_on_another_request_is_refused(client: Client, clock: Clock) -> None:
    applicant = await api_user(client, "e1001")
    body = {"template": TEMPLATE, "data": {"activity_name": "甲"}}
    first = await applicant.post("/api/v1/instances", body, key="k-1")
    replay = await applicant.post("/api/v1/instances", body, key="k-1")
    assert (first.status_code, replay.status_code) == (201, 201)
    assert replay.json()["id"] == first.json()["id"]
    other = await applicant.post("/api/v1/instances", {**body, "data": {"activity_name": "乙"}}, key="k-1")
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
    colleague = await api_user(client, "e2001")
    assert (await colleague.post("/api/v1/instances", body, key="k-1")).json()["id"] != first.json()["id"]
    assert ok(await applicant.get("/api/v1/me/counts"))["drafts"] == 1


async def test_an_overlong_idempotency_key_is_a_bad_request(client: Client, clock: Clock) -> None:
    applicant = await api_user(client, "e1001")
    response = await applicant.post("/api/v1/instances", {"template": TEMPLATE}, key="k" * 201)
    assert response.status_code == 400


# -- the initiator's commands ---------------------------------------------------------------


async def test_withdraw_closes_the_tasks_and_cancels_the_timers(client: Client, clock: Clock) -> None:
    applicant, head = await api_user(client, "e1001"), await api_user(client, "e2001")
    created = await start(applicant)
    assert (await head.post(f"/api/v1/instances/{created['id']}/withdraw")).status_code == 403
    result = ok(await applicant.post(f"/api/v1/instances/{created['id']}/withdraw", {"note": "活动取消"}))
    assert (result["status"], result["current_step"]) == ("withdrawn", "")
    assert ok(await head.get("/api/v1/tasks"))["total"] == 0
    assert await Timer.count().where(Timer.status == "pending") == 0
    [told] = await notices("withdrawn")
    assert told["recipients"] == [head.id]
    again = await applicant.post(f"/api/v1/instances/{created['id']}/withdraw")
    assert (again.status_code, again.json()["code"]) == (409, "transition")


async def test_urging_twice_within_an_hour_is_429_with_retry_after(client: Client, clock: Clock) -> None:
    applicant, head = await api_user(client, "e1001"), await api_user(client, "e2001")
    created = await start(applicant)
    urge = f"/api/v1/instances/{created['id']}/urge"
    ok(await applicant.post(urge, {"note": "请尽快审批"}))
    clock.advance(minutes=20)
    refused = await applicant.post(urge)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == str(40 * 60)
    clock.advance(minutes=41)
    ok(await applicant.post(urge))
    assert [message["recipients"] for message in await notices("urge")] == [[head.id], [head.id]]


async def test_only_drafts_and_returned_requests_take_new_data(client: Client, clock: Clock) -> None:
    applicant = await api_user(client, "e1001")
    created = await start(applicant)
    response = await applicant.put(f"/api/v1/instances/{created['id']}/data", marketing_data(1_000))
    assert (response.status_code, response.json()["code"]) == (409, "not_editable")


async def test_a_comment_by_anyone_who_sees_the_request(client: Client, clock: Clock) -> None:
    applicant, leader = await api_user(client, "e1001"), await api_user(client, "e3001")
    created = await start(applicant)
    ok(await leader.post(f"/api/v1/instances/{created['id']}/comment", {"text": "请附上场地报价"}))
    [said] = await events(created["id"], "comment")
    assert (said["actor_id"], said["data"]["text"]) == (leader.id, "请附上场地报价")


# -- approvers' commands --------------------------------------------------------------------


async def test_transfer_hands_the_task_to_another_person(client: Client, clock: Clock) -> None:
    applicant, head = await api_user(client, "e1001"), await api_user(client, "e2001")
    deputy = await api_user(client, "e2002")
    created = await start(applicant)
    task = await head.my_task(created["id"])
    missing = await head.act(task["id"], "transfer")
    assert (missing.status_code, missing.json()["errors"][0]["path"]) == (422, "to")
    ok(await head.act(task["id"], "transfer", to=deputy.id, note="出差中，请代为审批"))
    assert ok(await head.get("/api/v1/tasks"))["total"] == 0
    handed = await deputy.my_task(created["id"])
    assert handed["why"] == "王芳 转交"
    result = ok(await deputy.act(handed["id"], "approve"))
    assert result["current_step"] == "分管领导审批"


async def test_add_signer_before_comes_back_to_the_adder(client: Client, clock: Clock) -> None:
    applicant, head = await api_user(client, "e1001"), await api_user(client, "e2001")
    finance_head = await api_user(client, "e4002")
    created = await start(applicant)
    task = await head.my_task(created["id"])
    refused = await head.act(task["id"], "add_signer", people=[finance_head.id])
    assert (refused.status_code, refused.json()["errors"][0]["path"]) == (422, "position")
    unknown = await head.act(task["id"], "add_signer", people=[999_999], position="before")
    assert (unknown.status_code, unknown.json()["errors"][0]["path"]) == (422, "people")
    ok(
        await head.act(
            task["id"], "add_signer", people=[finance_head.id], position="before", note="请财务把关"
        )
    )
    assert ok(await head.get("/api/v1/tasks"))["total"] == 0
    signer = await finance_head.my_task(created["id"])
    assert signer["why"] == "王芳 加签（前加签）"
    ok(await finance_head.act(signer["id"], "approve"))
    back = await head.my_task(created["id"])
    result = ok(await head.act(back["id"], "approve"))
    assert result["current_step"] == "分管领导审批"


async def test_someone_else_s_task_is_403_or_404(client: Client, clock: Clock) -> None:
    applicant, head = await api_user(client, "e1001"), await api_user(client, "e2001")
    leader, outsider = await api_user(client, "e3001"), await api_user(client, "e1002")
    created = await start(applicant)
    task = await head.my_task(created["id"])
    seen_but_not_theirs = await leader.act(task["id"], "approve")
    assert (seen_but_not_theirs.status_code, seen_but_not_theirs.json()["code"]) == (403, "not_assignee")
    assert (await applicant.act(task["id"], "approve")).status_code == 403
    assert (await outsider.act(task["id"], "approve")).status_code == 404
    assert (await head.act(999_999, "approve")).status_code == 404
    assert await Task.count().where(Task.status == "closed") == 0


async def test_finance_may_not_add_signers_on_its_step(client: Client, clock: Clock) -> None:
    applicant, head = await api_user(client, "e1001"), await api_user(client, "e2001")
    leader, finance = await api_user(client, "e3001"), await api_user(client, "e4001")
    created = await start(applicant)
    ok(await head.act((await head.my_task(created["id"]))["id"], "approve"))
    ok(await leader.act((await leader.my_task(created["id"]))["id"], "approve"))
    task = await finance.my_task(created["id"])
    refused = await finance.act(task["id"], "add_signer", people=[head.id], position="alongside")
    assert (refused.status_code, refused.json()["code"]) == (403, "action_not_allowed")
    detail = await finance.detail(created["id"])
    assert detail["tasks"][0]["actions"] == ["approve", "reject", "return", "transfer"]


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/instances", b"{not json"),
        ("/api/v1/instances", b'{"template": "marketing-activity", "surprise": 1}'),
        ("/api/v1/instances", b'{"template": 7}'),
        ("/api/v1/instances", b'{"template": "Bad Key!"}'),
        ("/api/v1/instances", b'{"template": "marketing-activity", "data": []}'),
        ("/api/v1/instances", b"[]"),
        ("/api/v1/instances/{id}/comment", b'{"text": ""}'),
        ("/api/v1/instances/{id}/progress", b'{"attachments": ["not-a-uid"]}'),
        ("/api/v1/instances/{id}/change-requests", b'{"changes": {}, "reason": "x"}'),
        ("/api/v1/instances/{id}/summary", b'{"actual_spend": "lots"}'),
        ("/api/v1/tasks/{task}/actions", b"{}"),
        ("/api/v1/tasks/{task}/actions", b'{"action": "approve", "comment": "' + b"x" * 2001 + b'"}'),
        ("/api/v1/tasks/{task}/actions", b'{"action": "delegate"}'),
        ("/api/v1/tasks/{task}/actions", b'{"action": "transfer", "to": "e2002"}'),
        ("/api/v1/templates/marketing-activity/preview-route", b'{"data": 1}'),
    ],
)
async def test_malformed_bodies_are_400(client: Client, clock: Clock, path: str, body: bytes) -> None:
    applicant, head = await api_user(client, "e1001"), await api_user(client, "e2001")
    created = await start(applicant)
    task = await head.my_task(created["id"])
    user = head if "/tasks/" in path else applicant
    url = path.format(id=created["id"], task=task["id"])
    response = await user.send("POST", url, body, "application/json")
    assert response.status_code == 400, response.text


async def test_invalid_values_are_422_with_every_path(client: Client, clock: Clock) -> None:
    applicant = await api_user(client, "e1001")
    body = {
        "template": TEMPLATE,
        "data": {**marketing_data(200_000, contact_phone="12"), "budget": -5},
        "submit": True,
    }
    response = await applicant.post("/api/v1/instances", body)
    assert response.status_code == 422
    assert {"contact_phone", "budget"} <= {error["path"] for error in response.json()["errors"]}
    assert (await applicant.post("/api/v1/instances", {"template": "no-such-template"})).status_code == 404
    created = await start(applicant)
    change = {"changes": {"end_date": "2020-01-01", "no_such_field": 1}, "reason": "改期"}
    refused = await applicant.post(f"/api/v1/instances/{created['id']}/change-requests", change)
    assert refused.status_code == 422
    assert [error["path"] for error in refused.json()["errors"]] == ["no_such_field"]


@pytest.mark.parametrize(
    "query",
    [{"status": "sleeping"}, {"page": "0"}, {"mine": "perhaps"}],
)
async def test_bad_list_filters_are_400(client: Client, clock: Clock, query: dict[str, str]) -> None:
    applicant = await api_user(client, "e1001")
    assert (await applicant.get("/api/v1/instances", **query)).status_code == 400


async def test_a_bad_task_state_is_400(client: Client, clock: Clock) -> None:
    head = await api_user(client, "e2001")
    assert (await head.get("/api/v1/tasks", state="later")).status_code == 400


# -- lists ----------------------------------------------------------------------------------


async def test_lists_and_counts(client: Client, clock: Clock) -> None:
    applicant, head = await api_user(client, "e1001"), await api_user(client, "e2001")
    ok(
        await applicant.post("/api/v1/instances", {"template": TEMPLATE, "data": {"activity_name": "草稿"}}),
        201,
    )
    first = await start(applicant)
    clock.advance(minutes=1)
    second = await start(applicant, activity_name="第二场活动")
    mine = ok(await applicant.get("/api/v1/instances"))
    assert mine["total"] == 3
    assert [item["id"] for item in mine["items"]][:2] == [second["id"], first["id"]]
    running = ok(await applicant.get("/api/v1/instances", status="in_approval"))
    assert {item["current_step"] for item in running["items"]} == {"部门负责人审批"}
    assert running["items"][0]["status_label"] == "审批中"
    assert ok(await applicant.get("/api/v1/me/counts")) == {
        "open_tasks": 0,
        "overdue_tasks": 0,
        "drafts": 1,
        "returned": 0,
    }
    assert ok(await head.get("/api/v1/instances"))["total"] == 0  # none of their own
    assert ok(await head.get("/api/v1/instances", mine="false"))["total"] == 2  # drafts stay private
    clock.advance(days=10)
    counts = ok(await head.get("/api/v1/me/counts"))
    assert (counts["open_tasks"], counts["overdue_tasks"]) == (2, 2)
    inbox = ok(await head.get("/api/v1/tasks"))["items"]
    assert all(item["overdue"] for item in inbox)
    ok(await head.act(inbox[0]["id"], "approve"))
    done = ok(await head.get("/api/v1/tasks", state="done"))["items"]
    assert [(item["id"], item["outcome"]) for item in done] == [(inbox[0]["id"], "approved")]


# -- attachments ----------------------------------------------------------------------------


async def test_the_request_s_files_are_linked_and_readable_by_who_sees_it(
    client: Client, clock: Clock
) -> None:
    applicant, head = await api_user(client, "e1001"), await api_user(client, "e2001")
    outsider = await api_user(client, "e1002")
    name = "2024Q3新品推广会策划案_市场部_20240701.pdf"
    content = pdf()
    upload = await client.post(
        "/api/v1/attachments", files={"file": (name, content, "application/pdf")}, headers=applicant.headers
    )
    uid = ok(upload, 201)["id"]
    files = [{"id": uid, "name": name, "size": len(content), "content_type": "application/pdf"}]
    assert (await head.get(f"/api/v1/attachments/{uid}")).status_code == 403
    created = await start(applicant, attachments=files)
    row = await Attachment.select(Attachment.instance_id).where(Attachment.uid == uid).first()
    assert row["instance_id"] == created["id"]
    assert (await head.get(f"/api/v1/attachments/{uid}")).status_code == 200
    assert (await outsider.get(f"/api/v1/attachments/{uid}")).status_code == 403

    body = {"template": TEMPLATE, "data": marketing_data(attachments=files), "submit": True}
    taken = await applicant.post("/api/v1/instances", body)  # the file belongs to the first request
    assert taken.status_code == 422
    assert [error["path"] for error in taken.json()["errors"]] == ["attachments[0].id"]
    assert ok(await applicant.get("/api/v1/instances"))["total"] == 1, "nothing of the refused one is left"

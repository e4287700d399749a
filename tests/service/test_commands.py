"""Service commands against the real database: numbering, pinned versions, optimistic locking,
what one command writes, the organisation directory, visibility, plugin results."""

from __future__ import annotations

import datetime as dt

import pytest

from runtime.flow.errors import TransitionError
from runtime.flow.events import Approve
from runtime.service import (
    CreateRequest,
    NoteRequest,
    TaskAction,
    TaskActionRequest,
    act_on_task,
    create_instance,
    list_instances,
    load_org_directory,
    report_plugin_result,
    withdraw,
)
from runtime.service._command import run_command
from runtime.service.detail import instance_detail
from runtime.service.effects import CommandRecord
from runtime.service.errors import ConflictError, FormInvalid, InstanceNotFound
from runtime.service.pipeline import load_instance
from runtime.service.visibility import may_see
from storage.tables import AuditEntry, Instance, InstanceEvent, OutboxMessage, Task, Timer
from tests.service.support import (
    Clock,
    caller,
    demo_flow,
    department_id,
    marketing_data,
    open_task,
    person_id,
    principal,
    publish,
)

APPROVE = TaskActionRequest(action=TaskAction.APPROVE)


def submission(budget: int = 200_000, template: str = "marketing-activity", **data: object) -> CreateRequest:
    return CreateRequest(template=template, data=marketing_data(budget, **data), submit=True)


async def test_numbers_run_per_month_in_shanghai_time(db: None) -> None:
    applicant = await caller("e1001")
    start = Clock().now
    first = await create_instance(applicant, CreateRequest(template="marketing-activity"), start)
    second = await create_instance(applicant, submission(), start)
    next_month = (start.replace(day=1) + dt.timedelta(days=32)).replace(day=1, hour=0, minute=30)
    third = await create_instance(applicant, CreateRequest(template="marketing-activity"), next_month)
    assert [first.number, second.number] == [f"FL{start:%Y%m}001", f"FL{start:%Y%m}002"]
    assert third.number == f"FL{next_month:%Y%m}001"
    assert next_month.astimezone(dt.UTC).month != next_month.month, "00:30 on the 1st is last month in UTC"


async def test_a_submission_is_checked_completely_and_nothing_is_kept_when_it_fails(db: None) -> None:
    applicant = await caller("e1001")
    with pytest.raises(FormInvalid) as refused:
        await create_instance(
            applicant,
            CreateRequest(template="marketing-activity", data={"budget": "x"}, submit=True),
            Clock()(),
        )
    paths = [error.path for error in refused.value.errors]
    assert "budget" in paths and "activity_name" in paths
    assert await Instance.count() == 0


async def test_a_request_runs_on_the_version_it_started_with(db: None) -> None:
    clock = Clock()
    applicant, head = await caller("e1001"), await caller("e2001")
    started = await create_instance(applicant, submission(), clock())
    flow = demo_flow()
    flow["nodes"] = [node for node in flow["nodes"] if node["id"] != "leader"]
    flow["edges"] = [edge for edge in flow["edges"] if "leader" not in (edge["from"], edge["to"])]
    flow["edges"].append({"from": "dept_head", "to": "finance"})
    await publish("marketing-activity", flow)  # V2: no supervising leader
    newer = await create_instance(applicant, submission(), clock.advance(minutes=1))
    old_task = await open_task(started.id, "e2001")
    new_task = await open_task(newer.id, "e2001")
    assert (await act_on_task(head, old_task["id"], APPROVE, clock())).current_step == "分管领导审批"
    assert (await act_on_task(head, new_task["id"], APPROVE, clock())).current_step == "财务联审"
    versions = {row["id"]: row["version"] for row in await Instance.select(Instance.id, Instance.version)}
    assert versions == {started.id: 1, newer.id: 2}


async def test_a_stale_row_version_is_a_conflict_and_writes_nothing(db: None) -> None:
    clock = Clock()
    applicant, head = await caller("e1001"), await caller("e2001")
    created = await create_instance(applicant, submission(), clock())
    task = await open_task(created.id, "e2001")
    stale = await load_instance(created.id)
    await withdraw(applicant, created.id, NoteRequest(note="不办了"), clock())
    events_before = await InstanceEvent.count()
    with pytest.raises(ConflictError):
        await run_command(
            head,
            stale,
            Approve(actor=head.id, task_id=task["task_key"]),
            CommandRecord("approve", head.id),
            clock(),
            action="approve",
            idempotency=None,
        )
    assert await InstanceEvent.count() == events_before
    assert (await Instance.select(Instance.status).first())["status"] == "withdrawn"
    with pytest.raises(TransitionError):  # with the fresh state the engine refuses it
        await act_on_task(head, task["id"], APPROVE, clock())


async def test_one_command_writes_state_events_tasks_timers_outbox_and_audit(db: None) -> None:
    clock = Clock()
    applicant, head = await caller("e1001"), await caller("e2001")
    created = await create_instance(applicant, submission(), clock())
    task = await open_task(created.id, "e2001")
    assert task["reason"] == {"rule": "department_head", "department": "市场部"}
    timers = await Timer.select().where(Timer.task_key == task["task_key"])
    assert sorted(t["kind"] for t in timers) == ["overdue", "reminder"]
    result = await act_on_task(
        head, task["id"], TaskActionRequest(action=TaskAction.APPROVE, comment="同意"), clock()
    )
    assert result.row_version == 1
    closed = await Task.select().where(Task.id == task["id"]).first()
    assert (closed["status"], closed["outcome"], closed["closed_by"]) == ("closed", "approved", head.id)
    assert {t["status"] for t in await Timer.select().where(Timer.task_key == task["task_key"])} == {
        "cancelled"
    }
    events = (
        await InstanceEvent.select().where(InstanceEvent.instance == created.id).order_by(InstanceEvent.seq)
    )
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    approve = next(e for e in events if e["kind"] == "approve")
    assert (approve["actor_id"], approve["node_id"], approve["task_key"]) == (
        head.id,
        "dept_head",
        task["task_key"],
    )
    keys = [row["key"] for row in await OutboxMessage.select(OutboxMessage.key).order_by(OutboxMessage.id)]
    assert len([k for k in keys if k.startswith("task_assigned:")]) == 2
    [entry] = await AuditEntry.select().where(AuditEntry.action == "instance.approve").output(load_json=True)
    assert (entry["target_id"], entry["before"], entry["after"]) == (
        created.number,
        {"status": "in_approval"},
        {"status": "in_approval", "node": "dept_head"},
    )


async def test_a_draft_refuses_approvals_as_a_transition(db: None) -> None:
    clock = Clock()
    applicant = await caller("e1001")
    draft = await create_instance(applicant, CreateRequest(template="marketing-activity"), clock())
    with pytest.raises(TransitionError):
        await withdraw(applicant, draft.id, NoteRequest(), clock())


async def test_the_org_directory_has_heads_leaders_roles_and_admins(db: None) -> None:
    org = await load_org_directory()
    mkt = org.departments[await department_id("MKT")]
    assert (mkt.name, mkt.head_id, mkt.leader_id) == (
        "市场部",
        await person_id("e2001"),
        await person_id("e3001"),
    )
    assert org.people[await person_id("e2001")].roles == ("department_head", "employee")
    assert org.people[await person_id("e3001")].roles == ("employee", "supervising_leader")
    assert org.role_members["finance_specialist"] == (await person_id("e4001"),)
    assert org.process_admins == (await person_id("admin"),)
    assert org.manager_of(await person_id("e1001")) == await person_id("e2001")


async def test_who_sees_which_request(db: None) -> None:
    clock = Clock()
    mine = await create_instance(await caller("e1001"), submission(), clock())
    theirs = await create_instance(await caller("e1002"), submission(), clock())
    draft = await create_instance(
        await caller("e1001"), CreateRequest(template="marketing-activity"), clock()
    )

    async def seen(employee_no: str) -> set[int]:
        page = await list_instances(await principal(employee_no), mine=False)
        return {item.id for item in page.items}

    assert await seen("e1001") == {mine.id, draft.id}
    assert await seen("e1002") == {theirs.id}
    assert await seen("e2001") == {mine.id}  # head of 市场部
    assert await seen("e3001") == {mine.id, theirs.id}  # supervises both departments
    assert await seen("e4001") == set()  # finance, until a task comes
    assert await seen("admin") == {mine.id, theirs.id}  # drafts stay private even to admins
    with pytest.raises(InstanceNotFound):
        await instance_detail(await principal("e2001"), theirs.id, clock())


async def test_a_command_sees_a_request_exactly_when_the_lists_do(db: None) -> None:
    """`visibility.may_see` (a command's check on the row it read) and `visible_instances`
    (the SQL clause of every list) are the same rule: compared person by person, also for a
    finance specialist who sees a request only once a task of theirs is on it."""
    clock = Clock()
    mine = await create_instance(await caller("e1001"), submission(), clock())
    theirs = await create_instance(await caller("e1002"), submission(), clock())
    draft = await create_instance(
        await caller("e1001"), CreateRequest(template="marketing-activity"), clock()
    )
    people = ("e1001", "e1002", "e2001", "e3001", "e4001", "admin")

    async def agree() -> None:
        rows = {
            r["id"]: r
            for r in await Instance.select(
                Instance.id, Instance.initiator, Instance.department_id, Instance.status
            )
        }
        for employee_no in people:
            who = await principal(employee_no)
            listed = {item.id for item in (await list_instances(who, mine=False)).items}
            for instance_id in (mine.id, theirs.id, draft.id):
                row = rows[instance_id]
                seen = await may_see(
                    who,
                    instance_id,
                    initiator=row["initiator"],
                    department_id=row["department_id"],
                    status=row["status"],
                )
                assert seen == (instance_id in listed), (employee_no, instance_id)

    await agree()
    for approver in ("e2001", "e3001"):  # the head, then the leader: a finance task comes
        task = await open_task(mine.id, approver)
        await act_on_task(await caller(approver), task["id"], APPROVE, clock())
    await open_task(mine.id, "e4001")
    await agree()


async def test_a_plugin_step_waits_for_its_result(db: None) -> None:
    clock = Clock()
    await publish(
        "plugin-demo",
        {
            "key": "plugin-demo",
            "schema_version": 1,
            "nodes": [
                {"type": "start", "id": "start"},
                {"type": "plugin", "id": "check", "title": "外部校验", "plugin": "budget-check"},
                {"type": "end", "id": "end"},
            ],
            "edges": [{"from": "start", "to": "check"}, {"from": "check", "to": "end"}],
        },
    )
    created = await create_instance(await caller("e1001"), submission(template="plugin-demo"), clock())
    assert (created.status, created.current_step) == ("in_approval", "外部校验")
    [call] = await OutboxMessage.select().where(OutboxMessage.actor == "call_plugin").output(load_json=True)
    assert (call["payload"]["plugin"], call["payload"]["instance_id"]) == ("budget-check", created.id)
    done = await report_plugin_result(created.id, call["payload"]["call_id"], clock())
    assert done.status == "archived"
    with pytest.raises(TransitionError):  # the request has ended: nothing waits for this result
        await report_plugin_result(created.id, call["payload"]["call_id"], clock())

"""Durable time: due timers fire once through the engine, even with two schedulers at once."""

from __future__ import annotations

import asyncio
import datetime as dt

from runtime.service import (
    CreateRequest,
    TaskAction,
    TaskActionRequest,
    act_on_task,
    create_instance,
    fire_due_timers,
)
from storage.tables import Incident, Instance, InstanceEvent, Task, Timer
from tests.service.support import (
    Clock,
    caller,
    demo_flow,
    marketing_data,
    notices,
    open_task,
    person_id,
    publish,
)


async def submitted(template: str = "marketing-activity") -> int:
    request = CreateRequest(template=template, data=marketing_data(), submit=True)
    return (await create_instance(await caller("e1001"), request, Clock()())).id


async def test_an_overdue_task_is_reminded_and_flagged_once_by_two_schedulers(db: None) -> None:
    instance = await submitted()
    task = await open_task(instance, "e2001")
    late = task["due_at"] + dt.timedelta(hours=1)
    assert await fire_due_timers(task["created_at"] + dt.timedelta(hours=1)) == 0, "nothing is due yet"
    fired = await asyncio.gather(fire_due_timers(late), fire_due_timers(late))
    assert sum(fired) == 2, fired
    assert [row["status"] for row in await Timer.select(Timer.status)] == ["fired", "fired"]
    head = await person_id("e2001")
    assert [n["recipients"] for n in await notices("reminder")] == [[head]]
    assert [n["recipients"] for n in await notices("overdue")] == [[head]]
    kinds = [
        row["kind"] for row in await InstanceEvent.select(InstanceEvent.kind).order_by(InstanceEvent.seq)
    ]
    assert kinds.count("timer_fired") == 2 and kinds.count("overdue") == 1
    assert await fire_due_timers(late + dt.timedelta(days=30)) == 0, "fired timers never fire again"


async def test_an_overdue_approval_escalates_to_the_manager_once(db: None) -> None:
    flow = demo_flow()
    for node in flow["nodes"]:
        if node["id"] == "dept_head":
            node["sla"] = {"working_hours": 16, "overdue_action": "escalate_to_manager"}
    await publish("escalating-activity", flow)
    instance = await submitted("escalating-activity")
    task = await open_task(instance, "e2001")
    late = task["due_at"] + dt.timedelta(minutes=1)
    await asyncio.gather(fire_due_timers(late), fire_due_timers(late))
    escalated = await open_task(instance, "e3001", "dept_head")  # 王芳's manager is 李强
    assert escalated["reason"] == {"rule": "escalation", "from": await person_id("e2001")}
    closed = await Task.select(Task.outcome).where(Task.id == task["id"]).first()
    assert closed["outcome"] == "escalated"
    assert await InstanceEvent.count().where(InstanceEvent.kind == "escalated") == 1
    assert await Task.count().where(Task.status == "open") == 1


async def test_timers_of_a_decided_task_are_cancelled_and_never_fire(db: None) -> None:
    instance = await submitted()
    clock = Clock()
    task = await open_task(instance, "e2001")
    await act_on_task(
        await caller("e2001"), task["id"], TaskActionRequest(action=TaskAction.APPROVE), clock()
    )
    leader_task = await open_task(instance, "e3001")
    fired = await fire_due_timers(task["due_at"] + dt.timedelta(hours=1))
    assert fired == 1, "only the leader's reminder was due by then"
    statuses = {row["task_key"]: row["status"] for row in await Timer.select(Timer.task_key, Timer.status)}
    assert statuses[task["task_key"]] == "cancelled"
    assert [n["recipients"] for n in await notices("reminder")] == [[leader_task["assignee"]]]


async def test_a_timer_that_cannot_fire_becomes_an_incident_and_others_still_fire(db: None) -> None:
    broken = await submitted()
    healthy = await submitted()
    await Instance.update({Instance.state: '{"schema_version": 99}'}).where(Instance.id == broken)
    task = await open_task(healthy, "e2001")
    fired = await fire_due_timers(task["due_at"] + dt.timedelta(hours=1))
    assert fired == 2, "the healthy request's reminder and overdue timers"
    incidents = await Incident.select().output(load_json=True)
    assert [(row["source"], "StateDecodeError" in row["message"]) for row in incidents] == [
        ("timer", True)
    ] * 2
    failed = await Timer.select(Timer.status).where(Timer.instance == broken)
    assert [row["status"] for row in failed] == ["failed", "failed"]
    assert await fire_due_timers(task["due_at"] + dt.timedelta(days=1)) == 0, (
        "failed timers wait for an admin"
    )

"""The invariant checker the fault runs end with: quiet on a sound history, loud on each kind of damage."""

from __future__ import annotations

import datetime as dt

from runtime.flow.events import Approve  # noqa: F401  (the engine's events load with the service)
from runtime.service import CreateRequest, TaskAction, TaskActionRequest, act_on_task, create_instance
from runtime.service.invariants import check_invariants
from storage.tables import AuditEntry, InstanceEvent, OutboxMessage, Task, Timer
from tests.service.support import Clock, caller, marketing_data, open_task


async def _history(clock: Clock) -> int:
    e1001 = await caller("e1001")
    created = await create_instance(
        e1001, CreateRequest(template="marketing-activity", data=marketing_data(), submit=True), clock()
    )
    task = await open_task(created.id, "e2001")
    await act_on_task(
        await caller("e2001"),
        task["id"],
        TaskActionRequest(action=TaskAction.APPROVE, comment="同意"),
        clock.advance(hours=1),
    )
    return created.id


async def test_a_sound_history_has_no_problem(db: None) -> None:
    clock = Clock()
    await _history(clock)
    await OutboxMessage.update({OutboxMessage.status: "sent"}).where(OutboxMessage.actor != "notify")
    report = await check_invariants(clock(), settle=dt.timedelta(days=365))
    assert report.instances >= 1 and report.tasks >= 2
    assert report.problems == []


async def test_each_kind_of_damage_is_named(db: None) -> None:
    clock = Clock()
    instance_id = await _history(clock)
    # a task row the state does not know, a second decision, a timer that never fired, a lost message
    closed = await Task.select().where((Task.instance == instance_id) & (Task.status != "open")).first()
    await Task.update({Task.status: "open"}).where(Task.id == closed["id"])
    await InstanceEvent.insert(
        InstanceEvent(
            instance=instance_id, seq=999, at=clock(), kind="approve", task_key=closed["task_key"], data={}
        )
    )
    await Timer.update({Timer.due_at: clock() - dt.timedelta(days=2)}).where(Timer.instance == instance_id)
    await OutboxMessage.update(
        {OutboxMessage.status: "pending", OutboxMessage.created_at: clock() - dt.timedelta(days=2)}
    ).where(OutboxMessage.id == (await OutboxMessage.select(OutboxMessage.id).first())["id"])
    await AuditEntry.update({AuditEntry.actor_name: "someone else"}).where(
        AuditEntry.id
        == (await AuditEntry.select(AuditEntry.id).order_by(AuditEntry.id, ascending=False).first())["id"]
    )
    problems = "\n".join((await check_invariants(clock(), settle=dt.timedelta(hours=1))).problems)
    assert "open tasks in state" in problems
    assert f"task {closed['task_key']} was decided 2 times" in problems
    assert "never fired" in problems
    assert "neither went out nor became an incident" in problems
    assert "audit chain broken" in problems

"""Timers: reminders, the four overdue actions, waits, and timers that fire too late."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest

from runtime.flow import Status, new_instance
from runtime.flow._compiled import compile_flow
from runtime.flow._tasks import approval_deadline
from runtime.flow._work import Work
from runtime.flow.effects import CloseTask, CreateTask, Notify, ScheduleTimer, TaskOutcome
from runtime.flow.events import Approve, Submit, TimerFired, TimerKind
from runtime.flow.graph import OverdueAction, Sla, TaskNode, WaitNode
from runtime.flow.rules import InitiatorRule
from tests.runtime.driver import Driver
from tests.runtime.graphs import approval, chain
from tests.runtime.org import FIN_HEAD, FINANCE, MKT_HEAD, MONDAY, STAFF, VP, env


def timers(driver: Driver, task_id: str) -> dict[TimerKind, ScheduleTimer]:
    return {t.kind: t for t in driver.of_type(ScheduleTimer, driver.effects) if t.task_id == task_id}


def fire(driver: Driver, timer: ScheduleTimer):  # type: ignore[no-untyped-def]
    return driver.apply(TimerFired(timer_id=timer.timer_id, kind=timer.kind), after=timer.due_at - driver.now)


def started(sla: Sla, person: int = FINANCE) -> Driver:
    driver = Driver(chain(approval("a", person, sla=sla), approval("b", VP)), env(), MONDAY)
    driver.apply(Submit(actor=STAFF))
    return driver


def test_reminder_and_overdue_times_follow_the_sla() -> None:
    driver = started(Sla(working_hours=16, remind_before_hours=4, overdue_after_hours=8))
    task = driver.task_of(FINANCE)
    scheduled = timers(driver, task.id)
    calendar = driver.env.calendar
    assert task.due_at == calendar.add_working_hours(driver.now, 16)
    assert scheduled[TimerKind.REMINDER].due_at == calendar.add_working_hours(driver.now, 12)
    assert scheduled[TimerKind.OVERDUE].due_at == calendar.add_working_hours(driver.now, 24)
    assert scheduled[TimerKind.OVERDUE].key == f"FL1:{scheduled[TimerKind.OVERDUE].timer_id}"


def test_reminder_notifies_the_assignee() -> None:
    driver = started(Sla())
    reminder = timers(driver, driver.task_of(FINANCE).id)[TimerKind.REMINDER]
    fire(driver, reminder)
    (notice,) = driver.of_type(Notify)
    assert notice.recipients == (FINANCE,) and notice.template == "reminder"
    assert reminder.timer_id not in driver.task_of(FINANCE).timers


def test_overdue_remind() -> None:
    driver = started(Sla(overdue_action=OverdueAction.REMIND))
    fire(driver, timers(driver, driver.task_of(FINANCE).id)[TimerKind.OVERDUE])
    assert [n.template for n in driver.of_type(Notify)] == ["overdue"]
    assert driver.assignees() == [FINANCE]


def test_overdue_escalates_to_the_manager() -> None:
    driver = started(Sla(overdue_action=OverdueAction.ESCALATE_TO_MANAGER))
    old = driver.task_of(FINANCE)
    fire(driver, timers(driver, old.id)[TimerKind.OVERDUE])
    (closed,) = driver.of_type(CloseTask)
    assert (closed.task_id, closed.outcome) == (old.id, TaskOutcome.ESCALATED)
    (created,) = driver.of_type(CreateTask)
    assert created.assignee == FIN_HEAD and created.reason == {"rule": "escalation", "from": FINANCE}


def test_escalation_without_a_manager_reminds_instead() -> None:
    driver = started(Sla(overdue_action=OverdueAction.ESCALATE_TO_MANAGER), person=VP)
    fire(driver, timers(driver, driver.task_of(VP).id)[TimerKind.OVERDUE])
    assert [n.template for n in driver.of_type(Notify)] == ["overdue"]


def test_overdue_auto_approve_and_auto_reject() -> None:
    approving = started(Sla(overdue_action=OverdueAction.AUTO_APPROVE))
    fire(approving, timers(approving, approving.task_of(FINANCE).id)[TimerKind.OVERDUE])
    assert approving.assignees() == [VP] and approving.state.approvals == {"a": ()}

    rejecting = started(Sla(overdue_action=OverdueAction.AUTO_REJECT))
    fire(rejecting, timers(rejecting, rejecting.task_of(FINANCE).id)[TimerKind.OVERDUE])
    assert rejecting.status is Status.REJECTED


def test_a_timer_that_nothing_waits_on_is_ignored() -> None:
    driver = started(Sla())
    task = driver.task_of(FINANCE)
    overdue = timers(driver, task.id)[TimerKind.OVERDUE]
    driver.apply(Approve(actor=FINANCE, task_id=task.id))
    before = driver.state
    step = fire(driver, overdue)
    assert step.effects == () and step.state is before
    assert driver.apply(TimerFired(timer_id="nope", kind=TimerKind.WAIT)).state is before


def test_reminder_already_past_is_not_scheduled() -> None:
    driver = started(Sla(working_hours=2, remind_before_hours=4))
    assert set(timers(driver, driver.task_of(FINANCE).id)) == {TimerKind.OVERDUE}


def test_wait_until_a_date_field_plus_working_days() -> None:
    flow = chain(WaitNode(id="w", field="end_date", working_days=3), approval("a", MKT_HEAD))
    driver = Driver(flow, env({"end_date": "2025-09-30"}), MONDAY)
    driver.apply(Submit(actor=STAFF))
    assert driver.status is Status.EXECUTING
    (timer,) = driver.of_type(ScheduleTimer)
    assert timer.kind is TimerKind.WAIT
    assert timer.due_at == driver.env.calendar.opening(dt.date(2025, 10, 11))  # 9, 10, 11 (a worked Saturday)
    fire(driver, timer)
    assert driver.assignees() == [MKT_HEAD] and driver.status is Status.IN_APPROVAL


@pytest.mark.parametrize("value", [None, "not a date", "2025-09-01"])
def test_wait_without_a_usable_future_date_moves_on(value: str | None) -> None:
    flow = chain(WaitNode(id="w", field="end_date"), approval("a", MKT_HEAD))
    driver = Driver(flow, env({"end_date": value} if value else {}), MONDAY)
    driver.apply(Submit(actor=STAFF))
    assert driver.assignees() == [MKT_HEAD]


def test_late_stage_is_recorded_with_working_hours_late() -> None:
    from runtime.flow.effects import RecordEvent

    driver = Driver(
        chain(TaskNode(id="t", title="物料采购", owner=InitiatorRule(), planned_days=1)), env(), MONDAY
    )
    driver.apply(Submit(actor=STAFF))
    task = driver.task_of(STAFF)
    assert task.due_at == driver.env.calendar.closing(dt.date(2025, 9, 23))
    (overdue,) = driver.of_type(ScheduleTimer)
    fire(driver, overdue)
    assert [n.recipients for n in driver.of_type(Notify)] == [(STAFF,)]
    from runtime.flow.events import TaskCompleted

    note = "供应商缺货，改用备选"
    driver.apply(TaskCompleted(actor=STAFF, task_id=task.id, note=note), after=dt.timedelta(hours=16))
    (record,) = [r for r in driver.of_type(RecordEvent) if r.kind == "stage_completed"]
    assert record.data["late_hours"] == 1.0  # Tuesday 18:00 -> Wednesday 10:00 is one working hour
    assert record.data["note"] == "供应商缺货，改用备选"


def test_deadlines_shared_within_a_step_follow_the_sla_values_not_the_object() -> None:
    """A resumed step's SLA is a short-lived copy with the time that was left; the next copy can
    be allocated at the same address. The step's shared deadlines must not mix them up."""
    work = Work(compile_flow(chain(approval("a", MKT_HEAD))), new_instance("FLP"), MONDAY, env())
    short = approval_deadline(work, msgspec.structs.replace(Sla(), working_hours=2.0))
    long = approval_deadline(work, msgspec.structs.replace(Sla(), working_hours=16.0))
    calendar = work.env.calendar
    assert short[0] == calendar.add_working_hours(MONDAY, 2.0)
    assert long[0] == calendar.add_working_hours(MONDAY, 16.0)
    assert approval_deadline(work, Sla(working_hours=2.0)) == short  # equal SLAs still share

"""Opening and closing tasks, with their deadlines and timers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from runtime.calendar import BusinessCalendar
from runtime.flow._work import Work
from runtime.flow.effects import (
    CancelTimer,
    CloseTask,
    CreateTask,
    Reason,
    ScheduleTimer,
    TaskKind,
    TaskOutcome,
)
from runtime.flow.events import TimerKind
from runtime.flow.graph import Sla, TaskNode, WaitNode
from runtime.flow.state import OpenTask, TaskOrigin


def open_task(
    w: Work,
    *,
    node_id: str,
    kind: TaskKind,
    assignee: int,
    reason: Reason,
    title: str,
    origin: TaskOrigin = TaskOrigin.RULE,
    resume_for: int | None = None,
    sla: Sla | None = None,
    due_at: dt.datetime | None = None,
) -> OpenTask:
    """Create a task and its reminder/overdue timers (`CreateTask` implies notifying the assignee).

    With `sla` (approvals, change reviews) the deadline follows the SLA and urgency; else
    `due_at` (work stages) gets an overdue timer only.
    """
    task_id = w.new_id()
    remind_at: dt.datetime | None = None
    overdue_at = due_at
    if sla is not None:
        due_at, remind_at, overdue_at = approval_deadline(w, sla)
    estimate = due_at is not None and w.env.calendar.is_estimate(due_at)
    w.effects.append(
        CreateTask(
            task_id=task_id,
            node_id=node_id,
            kind=kind,
            assignee=assignee,
            reason=reason,
            title=title,
            due_at=due_at,
            due_is_estimate=estimate,
        )
    )
    timers: list[str] = []
    if remind_at is not None and remind_at > w.now:
        timers.append(schedule_timer(w, TimerKind.REMINDER, remind_at, task_id=task_id, node_id=node_id))
    if overdue_at is not None:
        timers.append(schedule_timer(w, TimerKind.OVERDUE, overdue_at, task_id=task_id, node_id=node_id))
    task = OpenTask(
        id=task_id,
        node=node_id,
        kind=kind,
        assignee=assignee,
        reason=reason,
        created_at=w.now,
        due_at=due_at,
        origin=origin,
        resume_for=resume_for,
        timers=tuple(timers),
    )
    w.tasks[task_id] = task
    return task


def close_task(w: Work, task: OpenTask, outcome: TaskOutcome, actor: int | None = None) -> None:
    del w.tasks[task.id]
    effects = w.effects
    effects.append(CloseTask(task_id=task.id, outcome=outcome, actor=actor))
    for timer_id in task.timers:
        effects.append(CancelTimer(timer_id=timer_id))


def close_all(w: Work, outcome: TaskOutcome = TaskOutcome.CANCELLED, *, keep_tokens: bool = False) -> None:
    """Close every open task, cancel every timer; drop runs, the change request and (unless
    `keep_tokens`) the tokens. Tokens kept lose their wait so that they can be re-entered."""
    for task in list(w.tasks.values()):
        close_task(w, task, outcome)
    for token in list(w.tokens.values()):
        if token.wait is not None:
            if token.timer or isinstance(w.flow.nodes[token.node], WaitNode):
                w.emit(CancelTimer(timer_id=token.wait))
            if keep_tokens:
                w.tokens[token.id] = token.__class__(id=token.id, node=token.node, frames=token.frames)
    w.runs.clear()
    w.change = None
    if not keep_tokens:
        w.tokens.clear()


def schedule_timer(
    w: Work, kind: TimerKind, due_at: dt.datetime, *, task_id: str | None = None, node_id: str | None = None
) -> str:
    timer_id = w.new_id()
    key = f"{w.state.instance_id}:{timer_id}"
    w.effects.append(
        ScheduleTimer(timer_id=timer_id, kind=kind, due_at=due_at, key=key, task_id=task_id, node_id=node_id)
    )
    return timer_id


def approval_deadline(w: Work, sla: Sla) -> tuple[dt.datetime, dt.datetime | None, dt.datetime]:
    """The SLA times of a task opened now; tasks opened in the same step share them."""
    times = w.deadlines.get(sla)
    if times is None:
        times = w.deadlines[sla] = sla_deadline(w.env.calendar, w.now, sla, urgent=w.is_urgent)
    return times


def sla_deadline(
    calendar: BusinessCalendar, start: dt.datetime, sla: Sla, *, urgent: bool
) -> tuple[dt.datetime, dt.datetime | None, dt.datetime]:
    """(due, reminder, overdue action) from `start`: working hours, or calendar hours if urgent."""
    before = sla.remind_before_hours
    after = sla.overdue_after_hours
    if urgent:
        due = start + dt.timedelta(hours=sla.urgent_hours)
        remind = due - dt.timedelta(hours=before) if before else None
        return due, remind, due + dt.timedelta(hours=after)
    hours = sla.working_hours
    due, overdue, remind = calendar.add_working_hours_each(
        start, (hours, hours + after, hours - (before or 0))
    )
    return due, remind if before else None, overdue


def stage_deadline(w: Work, node: TaskNode) -> dt.datetime:
    return stage_due(w.env.calendar, node, w.env.form, w.now)


def stage_due(
    calendar: BusinessCalendar, node: TaskNode, form: Mapping[str, Any], start: dt.datetime
) -> dt.datetime:
    """Closing time of the day `planned_days` working days after the stage's base day: the
    date in `due_from_field` when set and filled, else the day the stage starts."""
    base = as_date(form.get(node.due_from_field)) if node.due_from_field else None
    if base is None:
        base = calendar.local_date(start)
    key = (id(calendar), base, node.planned_days, start.tzinfo)
    known = _stage_dues.get(key)
    if known is not None and known[0] is calendar:
        return known[1]
    due = calendar.closing(calendar.add_working_days(base, node.planned_days), start.tzinfo)
    if len(_stage_dues) >= _STAGE_DUES_LIMIT:
        _stage_dues.clear()
    _stage_dues[key] = (calendar, due)
    return due


_STAGE_DUES_LIMIT = 4_096
_stage_dues: dict[tuple[int, dt.date, int, dt.tzinfo | None], tuple[BusinessCalendar, dt.datetime]] = {}
"""Stage deadlines by (calendar, base day, working days, zone): every stage that starts on the
same day with the same plan has the same deadline. The calendar is kept with the entry, so a
calendar with another identity (admin overrides) never reads an entry of an older one."""


def as_date(value: Any) -> dt.date | None:
    """A form value read as a date: a date, a datetime, or an ISO string; else None."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and len(value) >= 10:
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None

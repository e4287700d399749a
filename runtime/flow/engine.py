"""The engine: `advance(definition, state, event, now, env) -> Step(state, effects)`.

Pure: no database, no clock, no network, no randomness. The same inputs give the same
output, so an instance's state is the fold of `advance` over its event log from
`new_instance`. A refused event raises a `CommandError` and changes nothing; a timer or
plugin result that nothing waits on any more returns the state unchanged with no effects.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import msgspec

from runtime.flow import _decisions as decide
from runtime.flow._compiled import compile_flow
from runtime.flow._navigation import enter_again, move_on, run, settle_status, start
from runtime.flow._tasks import close_all, close_task, schedule_timer
from runtime.flow._timers import fire
from runtime.flow._work import Step, Work
from runtime.flow.effects import CancelTimer, SetTaskDue, TaskKind, TaskOutcome
from runtime.flow.environment import Environment
from runtime.flow.errors import (
    ActionNotAllowedError,
    InvalidCommandError,
    NotAssigneeError,
    NotPermittedError,
    StateDecodeError,
    TaskNotOpenError,
    TransitionError,
    UrgeTooSoonError,
)
from runtime.flow.events import (
    AddSigner,
    Approve,
    Archive,
    Cancel,
    ChangeRequestCancel,
    ChangeRequestSubmit,
    Comment,
    Event,
    MarkUrgent,
    PluginOutcome,
    PluginResult,
    Reject,
    Return,
    Submit,
    SummarySubmitted,
    TaskCompleted,
    TimerFired,
    TimerKind,
    Transfer,
    Urge,
    Withdraw,
    event_type,
)
from runtime.flow.graph import Action, FlowGraph, PluginNode, Sla
from runtime.flow.lifecycle import ACCEPTS, Status
from runtime.flow.state import STATE_SCHEMA_VERSION, InstanceState, OpenTask

URGE_INTERVAL = dt.timedelta(hours=1)


def advance(
    definition: FlowGraph, state: InstanceState, event: Event, now: dt.datetime, env: Environment
) -> Step:
    """Apply `event` to `state` at `now` (timezone-aware); the new state and its effects."""
    flow = compile_flow(definition)
    if state.schema_version != STATE_SCHEMA_VERSION:
        raise StateDecodeError(f"state schema {state.schema_version}; upgrade it with decode_state first")
    kind = event_type(event)
    if kind not in ACCEPTS[state.status]:
        raise TransitionError(
            f"a {state.status} request does not accept {kind}", status=state.status, attempted=kind
        )
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    w = Work(flow, state, now, env)
    if _HANDLERS[type(event)](w, event) is False:
        return Step(state, ())
    run(w)
    settle_status(w)
    return w.finish()


# -- requests -------------------------------------------------------------------------------


def _submit(w: Work, event: Submit) -> None:
    _require_initiator(w, event.actor, "submit")
    unknown = [node_id for node_id in event.chosen if node_id not in w.flow.nodes]
    if unknown:
        raise InvalidCommandError(f"chosen approvers for unknown steps {unknown}", field="chosen")
    w.urgent = w.urgent or event.urgent
    if event.chosen:
        w.chosen = dict(event.chosen)
    if w.status is Status.DRAFT:
        w.submitted_at = w.now
        start(w)
    else:
        decide.resubmit(w)
    run(w)
    settle_status(w, force=True)


def _withdraw(w: Work, event: Withdraw) -> None:
    _require_initiator(w, event.actor, "withdraw")
    assignees = _assignees(w)
    close_all(w)
    w.set_status(Status.WITHDRAWN)
    w.notify(assignees, "withdrawn", {"note": event.note})


def _urge(w: Work, event: Urge) -> None:
    _require_initiator(w, event.actor, "urge")
    if w.last_urged_at is not None and w.now < w.last_urged_at + URGE_INTERVAL:
        raise UrgeTooSoonError(w.last_urged_at + URGE_INTERVAL)
    assignees = _assignees(w)
    if not assignees:
        raise InvalidCommandError("no open task waits on a person", field="actor")
    w.last_urged_at = w.now
    w.notify(assignees, "urge", {"note": event.note})


def _mark_urgent(w: Work, event: MarkUrgent) -> bool:
    if event.actor != w.initiator and event.actor not in w.env.org.process_admins:
        raise NotPermittedError("only the initiator or a process admin marks a request urgent")
    if w.urgent:
        return False
    w.urgent = True
    for task in list(w.tasks.values()):
        sla = _sla_of(w, task)
        if sla is not None:
            _tighten(w, task, sla)
    return True


def _comment(w: Work, event: Comment) -> None:
    """A comment changes nothing but the version; the event log keeps its text."""
    if event.actor is None:
        raise InvalidCommandError("a comment needs an author", field="actor")


def _archive(w: Work, event: Archive) -> None:
    _require_admin(w, event.actor, "archive")
    close_all(w)
    w.set_status(Status.ARCHIVED)


def _cancel(w: Work, event: Cancel) -> None:
    _require_admin(w, event.actor, "cancel")
    close_all(w)
    w.set_status(Status.CANCELLED)
    w.notify((w.initiator,), "cancelled", {"reason": event.reason})


# -- tasks ----------------------------------------------------------------------------------


def _approve(w: Work, event: Approve) -> None:
    task = _own_task(w, event.task_id, event.actor, Action.APPROVE)
    decide.approve(w, task, event.actor, event.comment)


def _reject(w: Work, event: Reject) -> None:
    task = _own_task(w, event.task_id, event.actor, Action.REJECT)
    decide.reject(w, task, event.actor, event.comment)


def _return(w: Work, event: Return) -> None:
    task = _own_task(w, event.task_id, event.actor, Action.RETURN)
    if not event.note.strip():
        raise InvalidCommandError("a return needs a note saying what to add", field="note")
    if event.to_node is None:
        decide.return_to_applicant(w, task, event.actor, event.note)
    else:
        decide.return_to_node(w, task, event.actor, event.note, event.to_node)


def _transfer(w: Work, event: Transfer) -> None:
    task = _own_task(w, event.task_id, event.actor, Action.TRANSFER)
    decide.transfer(w, task, event.actor, event.to, event.note)


def _add_signer(w: Work, event: AddSigner) -> None:
    task = _own_task(w, event.task_id, event.actor, Action.ADD_SIGNER)
    assert event.actor is not None  # _own_task checked it is the assignee
    decide.add_signers(w, task, event.actor, event.people, event.position, event.note)


def _task_completed(w: Work, event: TaskCompleted) -> None:
    task = _own_task(w, event.task_id, event.actor, None)
    if task.kind is not TaskKind.STAGE:
        raise ActionNotAllowedError(f"task {task.id} is a {task.kind} task, not a work stage")
    data = {"result": event.result, "note": event.note, "attachments": list(event.attachments)}
    _complete_stage(w, task, event.actor, "stage_completed", data)


def _summary_submitted(w: Work, event: SummarySubmitted) -> None:
    if event.task_id is not None:
        task = _own_task(w, event.task_id, event.actor, None)
    else:
        mine = [t for t in w.tasks.values() if t.kind is TaskKind.SUMMARY and t.assignee == event.actor]
        if not mine:
            raise TaskNotOpenError("summary")
        task = mine[0]
    if task.kind is not TaskKind.SUMMARY:
        raise ActionNotAllowedError(f"task {task.id} is a {task.kind} task, not the summary")
    data = {"note": event.note, "attachments": list(event.attachments)}
    _complete_stage(w, task, event.actor, "summary_submitted", data)


def _complete_stage(w: Work, task: OpenTask, actor: int | None, kind: str, data: dict[str, Any]) -> None:
    close_task(w, task, TaskOutcome.COMPLETED, actor)
    for other in w.open_tasks(task.node):
        close_task(w, other, TaskOutcome.DECIDED_BY_OTHER)
    late = 0.0
    if task.due_at is not None and w.now > task.due_at:
        late = round(w.env.calendar.working_hours_between(task.due_at, w.now), 2)
    w.record(
        kind,
        node_id=task.node,
        task_id=task.id,
        actor=actor,
        data={**data, "planned": task.due_at, "late_hours": late},
    )
    token = next(t for t in w.tokens.values() if t.node == task.node)
    move_on(w, token)


def _timer_fired(w: Work, event: TimerFired) -> bool:
    return fire(w, event)


def _plugin_result(w: Work, event: PluginResult) -> bool:
    token = next((t for t in w.tokens.values() if t.wait == event.call_id and not t.timer), None)
    if token is None:
        return False
    node = w.flow.nodes[token.node]
    if not isinstance(node, PluginNode):
        return False
    if event.outcome == PluginOutcome.RETRY and node.plugin not in w.env.plugins:
        return False  # only a registered plugin can be asked again
    data = {
        "call_id": event.call_id,
        "outcome": str(event.outcome),
        "output": event.output,
        "note": event.note,
    }
    w.record("plugin_result", node_id=token.node, data=data)
    if event.outcome == PluginOutcome.REJECT:
        close_all(w)
        w.set_status(Status.REJECTED)
        w.notify((w.initiator,), "rejected", {"node_id": token.node, "comment": event.note})
    elif event.outcome == PluginOutcome.RETRY:
        enter_again(w, token)
    else:
        move_on(w, token)
    return True


def _change_submit(w: Work, event: ChangeRequestSubmit) -> None:
    actor = _require_initiator(w, event.actor, "request a change")
    decide.request_change(w, actor, dict(event.changes), event.reason)


def _change_cancel(w: Work, event: ChangeRequestCancel) -> None:
    actor = _require_initiator(w, event.actor, "cancel a change request")
    decide.cancel_change(w, actor)


# -- helpers --------------------------------------------------------------------------------


def _own_task(w: Work, task_id: str, actor: int | None, action: Action | None) -> OpenTask:
    task = w.tasks.get(task_id)
    if task is None:
        raise TaskNotOpenError(task_id)
    if actor is None or actor != task.assignee:
        raise NotAssigneeError(task_id, actor)
    if action is not None:
        decide.check_allowed(w, task, action)
    return task


def _require_initiator(w: Work, actor: int | None, what: str) -> int:
    if actor is None or actor != w.initiator:
        raise NotPermittedError(f"only the initiator may {what}")
    return actor


def _require_admin(w: Work, actor: int | None, what: str) -> None:
    if actor is None or actor not in w.env.org.process_admins:
        raise NotPermittedError(f"only a process admin may {what}")


def _assignees(w: Work) -> tuple[int, ...]:
    return tuple(dict.fromkeys(task.assignee for task in w.tasks.values()))


def _sla_of(w: Work, task: OpenTask) -> Sla | None:
    if task.kind is TaskKind.CHANGE_REVIEW:
        return decide.DEFAULT_SLA
    node = w.approval_node(task.node)
    return node.sla if task.kind is TaskKind.APPROVAL and node is not None else None


def _tighten(w: Work, task: OpenTask, sla: Sla) -> None:
    """Pull an open task's deadline in to its creation plus the urgent hours (not before now)."""
    due = max(w.now, task.created_at + dt.timedelta(hours=sla.urgent_hours))
    if task.due_at is not None and due >= task.due_at:
        return
    for timer_id in task.timers:
        w.emit(CancelTimer(timer_id=timer_id))
    w.emit(SetTaskDue(task_id=task.id, due_at=due))
    timers = []
    if sla.remind_before_hours and due - dt.timedelta(hours=sla.remind_before_hours) > w.now:
        remind_at = due - dt.timedelta(hours=sla.remind_before_hours)
        timers.append(schedule_timer(w, TimerKind.REMINDER, remind_at, task_id=task.id, node_id=task.node))
    overdue_at = due + dt.timedelta(hours=sla.overdue_after_hours)
    timers.append(schedule_timer(w, TimerKind.OVERDUE, overdue_at, task_id=task.id, node_id=task.node))
    w.tasks[task.id] = msgspec.structs.replace(task, due_at=due, timers=tuple(timers))


_HANDLERS: dict[type, Callable[[Work, Any], bool | None]] = {
    Submit: _submit,
    Approve: _approve,
    Reject: _reject,
    Return: _return,
    Transfer: _transfer,
    AddSigner: _add_signer,
    Withdraw: _withdraw,
    Urge: _urge,
    MarkUrgent: _mark_urgent,
    Comment: _comment,
    TimerFired: _timer_fired,
    TaskCompleted: _task_completed,
    SummarySubmitted: _summary_submitted,
    PluginResult: _plugin_result,
    ChangeRequestSubmit: _change_submit,
    ChangeRequestCancel: _change_cancel,
    Archive: _archive,
    Cancel: _cancel,
}

__all__ = ["Step", "advance"]

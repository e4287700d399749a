"""What approvers do with their tasks: approve, reject, return, transfer, add signers.

Completion of an approval node (per mode):
- any (或签): the first approval by an assigned or alongside approver closes the other tasks
  (except signers added "after", who still decide); one reject rejects the request.
- all (会签): every task must be approved.
- sequential (依次): approving an assigned task opens the next person's task in the queue.
The node completes when it has no open task, no queued person and no suspended task.
Signers added "before" decide first; when the last of them approves, the adder's suspended
task comes back. Any reject on an approval task rejects the request, except on a plugin node
whose decision says a rejection returns the request to the applicant (`RejectAction.RETURN`).
Tasks on a plugin node follow the approval node its `PluginTasks` decision behaves as
(`Work.approval_node`).
"""

from __future__ import annotations

import msgspec

from runtime.flow._navigation import assign, complete_approval, enter_again, start
from runtime.flow._tasks import close_all, close_task, open_task
from runtime.flow._work import Work
from runtime.flow.effects import Reason, TaskKind, TaskOutcome, UpdateFormData
from runtime.flow.errors import ActionNotAllowedError, InvalidCommandError
from runtime.flow.events import SignerPosition
from runtime.flow.graph import Action, ApprovalMode, ApprovalNode, EmptyPolicy, ResubmitFrom, Sla
from runtime.flow.lifecycle import Status
from runtime.flow.plugins import RejectAction
from runtime.flow.state import OpenTask, PendingChange, Queued, TaskOrigin, Token

CHANGE_NODE = "@change"
"""The node id of change-review tasks (not a valid graph node id, so it cannot clash)."""

_CHANGE_ACTIONS = frozenset({Action.APPROVE, Action.REJECT, Action.TRANSFER, Action.COMMENT})
_STAGE_ACTIONS = frozenset({Action.TRANSFER, Action.COMMENT})
DEFAULT_SLA = Sla()


def check_allowed(w: Work, task: OpenTask, action: Action) -> None:
    """Refuse an action the task's node was not configured for."""
    allowed: tuple[Action, ...] | frozenset[Action]
    if task.kind is TaskKind.APPROVAL:
        node = w.approval_node(task.node)
        allowed = node.actions if node is not None else ()
    elif task.kind is TaskKind.CHANGE_REVIEW:
        allowed = _CHANGE_ACTIONS
    else:
        allowed = _STAGE_ACTIONS
    if action not in allowed:
        raise ActionNotAllowedError(f"{action} is not allowed on task {task.id} ({task.kind})")


def approve(w: Work, task: OpenTask, actor: int | None, comment: str) -> None:
    if task.kind is TaskKind.CHANGE_REVIEW:
        _decide_change(w, task, actor, approved=True, comment=comment)
        return
    node = w.approval_node(task.node)
    assert node is not None  # approval tasks exist only on approval nodes and plugin tasks
    close_task(w, task, TaskOutcome.APPROVED, actor)
    run = w.runs[task.node]
    approved = run.approved if actor is None or actor in run.approved else (*run.approved, actor)
    queue, suspended = run.queue, run.suspended
    if task.origin is TaskOrigin.BEFORE:
        waiting = [
            t
            for t in w.open_tasks(task.node)
            if t.origin is TaskOrigin.BEFORE and t.resume_for == task.resume_for
        ]
        if not waiting:
            back = [s for s in suspended if s.assignee == task.resume_for]
            suspended = tuple(s for s in suspended if s.assignee != task.resume_for)
            for old in back:
                _reopen(w, old, node.sla)
    elif node.mode == ApprovalMode.ANY and task.origin in (TaskOrigin.RULE, TaskOrigin.ALONGSIDE):
        for other in w.open_tasks(task.node):
            if other.origin is not TaskOrigin.AFTER:
                close_task(w, other, TaskOutcome.DECIDED_BY_OTHER)
        queue, suspended = (), ()
    elif node.mode == ApprovalMode.SEQUENTIAL and task.origin is TaskOrigin.RULE and queue:
        following, queue = queue[0], queue[1:]
        open_task(
            w,
            node_id=node.id,
            kind=TaskKind.APPROVAL,
            assignee=following.person,
            reason=following.reason or run.reason,
            title=node.title or node.id,
            sla=node.sla,
        )
    if not queue and not suspended and not w.open_tasks(task.node):
        w.runs[task.node] = run
        complete_approval(w, task.node, approved)
    else:
        w.runs[task.node] = msgspec.structs.replace(run, approved=approved, queue=queue, suspended=suspended)


def reject(w: Work, task: OpenTask, actor: int | None, comment: str) -> None:
    if task.kind is TaskKind.CHANGE_REVIEW:
        _decide_change(w, task, actor, approved=False, comment=comment)
        return
    run = w.runs.get(task.node)
    if run is not None and run.plugin is not None and run.plugin.on_reject == RejectAction.RETURN:
        w.record("rejection_returns", node_id=task.node, task_id=task.id, actor=actor)
        return_to_applicant(w, task, actor, comment)
        return
    close_task(w, task, TaskOutcome.REJECTED, actor)
    close_all(w)
    w.set_status(Status.REJECTED)
    w.notify((w.initiator,), "rejected", {"node_id": task.node, "comment": comment})


def return_to_applicant(w: Work, task: OpenTask, actor: int | None, note: str) -> None:
    """Back to the applicant (退回补充): tasks and timers stop, tokens stay for the resubmission.

    The SLA clock pauses: each approval step keeps the time that was left on its deadline."""
    left = _time_left(w)
    close_task(w, task, TaskOutcome.RETURNED, actor)
    close_all(w, keep_tokens=True)
    for token in list(w.tokens.values()):
        if token.node in left:
            w.tokens[token.id] = msgspec.structs.replace(token, sla_left=left[token.node])
    w.set_status(Status.RETURNED)
    w.notify((w.initiator,), "returned", {"node_id": task.node, "note": note})


def _time_left(w: Work) -> dict[str, float]:
    """Approval node -> hours left until its earliest open deadline (never negative)."""
    left: dict[str, float] = {}
    for task in w.tasks.values():
        if task.kind is not TaskKind.APPROVAL or task.due_at is None:
            continue
        if w.is_urgent:
            hours = (task.due_at - w.now).total_seconds() / 3600
        else:
            hours = w.env.calendar.working_hours_between(w.now, task.due_at)
        left[task.node] = max(0.0, min(hours, left.get(task.node, hours)))
    return left


def return_to_node(w: Work, task: OpenTask, actor: int | None, note: str, target: str) -> None:
    """Back to an approval node decided earlier in this round, outside any parallel region."""
    node = w.flow.nodes.get(target)
    if not isinstance(node, ApprovalNode) or target not in w.approvals or w.flow.depth.get(target, 0):
        raise InvalidCommandError(f"{target!r} is not an earlier approval step to return to", field="to_node")
    close_task(w, task, TaskOutcome.RETURNED, actor)
    close_all(w)
    kept = list(w.approvals)
    w.approvals = {key: w.approvals[key] for key in kept[: kept.index(target)]}
    w.pending.append(Token(id=w.new_id(), node=target))


def resubmit(w: Work) -> None:
    """A returned request comes back: re-enter the nodes its tokens rest on, or start over."""
    if w.flow.graph.resubmit_from == ResubmitFrom.START or not w.tokens:
        w.tokens.clear()
        w.approvals = {}
        start(w)
        return
    for token in list(w.tokens.values()):
        enter_again(w, token)


def transfer(w: Work, task: OpenTask, actor: int | None, to: int, note: str) -> None:
    if to not in w.env.org.people:
        raise InvalidCommandError(f"unknown person {to}", field="to")
    if any(t.assignee == to for t in w.open_tasks(task.node)):
        raise InvalidCommandError(f"person {to} already has a task on this step", field="to")
    close_task(w, task, TaskOutcome.TRANSFERRED, actor)
    _replace_assignee(w, task, to, {"rule": "transfer", "from": task.assignee})


def escalate(w: Work, task: OpenTask, manager: int) -> None:
    close_task(w, task, TaskOutcome.ESCALATED)
    w.record("escalated", node_id=task.node, task_id=task.id, data={"to": manager})
    _replace_assignee(w, task, manager, {"rule": "escalation", "from": task.assignee})


def add_signers(
    w: Work, task: OpenTask, actor: int, people: tuple[int, ...], position: SignerPosition, note: str
) -> None:
    org = w.env.org
    unknown = [p for p in people if p not in org.people]
    if unknown:
        raise InvalidCommandError(f"unknown people {unknown}", field="people")
    present = {t.assignee for t in w.open_tasks(task.node)} | {actor}
    if present & set(people):
        raise InvalidCommandError("a person added already has a task on this step", field="people")
    people = tuple(dict.fromkeys(people))
    node = w.approval_node(task.node)
    assert node is not None  # add_signer is allowed on approval tasks only
    reason: Reason = {"rule": "add_signer", "position": str(position), "by": actor}
    run = w.runs[task.node]
    title = node.title or node.id
    if position == SignerPosition.BEFORE:
        close_task(w, task, TaskOutcome.SUSPENDED, actor)
        w.runs[node.id] = msgspec.structs.replace(run, suspended=(*run.suspended, task))
        for person in people:
            open_task(
                w,
                node_id=node.id,
                kind=TaskKind.APPROVAL,
                assignee=person,
                reason=reason,
                title=title,
                origin=TaskOrigin.BEFORE,
                resume_for=task.assignee,
                sla=node.sla,
            )
        return
    origin = TaskOrigin.ALONGSIDE if position == SignerPosition.ALONGSIDE else TaskOrigin.AFTER
    if origin is TaskOrigin.AFTER and node.mode == ApprovalMode.SEQUENTIAL:
        queued = tuple(Queued(person=p, reason=reason) for p in people)
        w.runs[node.id] = msgspec.structs.replace(run, queue=queued + run.queue)
    else:
        for person in people:
            open_task(
                w,
                node_id=node.id,
                kind=TaskKind.APPROVAL,
                assignee=person,
                reason=reason,
                title=title,
                origin=origin,
                sla=node.sla,
            )
    if origin is TaskOrigin.AFTER:
        approve(w, task, actor, note)


def request_change(w: Work, actor: int, changes: dict[str, object], why: str) -> None:
    if w.change is not None:
        raise InvalidCommandError("a change request is already pending", field="changes")
    people, reason = assign(w, CHANGE_NODE, w.flow.graph.change_approvers, EmptyPolicy.TO_PROCESS_ADMIN)
    people = tuple(p for p in people if p != actor) or tuple(
        p for p in w.env.org.process_admins if p != actor and p in w.env.org.people
    )
    if not people:
        raise InvalidCommandError("nobody but the requester could approve this change", field="changes")
    request_id = w.new_id()
    w.change = PendingChange(id=request_id, changes=dict(changes), requested_by=actor, reason=why)
    w.record(
        "change_requested",
        actor=actor,
        data={"request_id": request_id, "diff": _diff(w, changes), "reason": why},
    )
    for person in people:
        open_task(
            w,
            node_id=CHANGE_NODE,
            kind=TaskKind.CHANGE_REVIEW,
            assignee=person,
            reason={**reason, "for": "change_request"},
            title="流程变更申请",
            sla=DEFAULT_SLA,
        )


def cancel_change(w: Work, actor: int) -> None:
    if w.change is None:
        raise InvalidCommandError("no change request is pending", field="actor")
    for task in w.open_tasks(CHANGE_NODE):
        close_task(w, task, TaskOutcome.CANCELLED, actor)
    w.change = None


def _decide_change(w: Work, task: OpenTask, actor: int | None, *, approved: bool, comment: str) -> None:
    close_task(w, task, TaskOutcome.APPROVED if approved else TaskOutcome.REJECTED, actor)
    for other in w.open_tasks(CHANGE_NODE):
        close_task(w, other, TaskOutcome.DECIDED_BY_OTHER)
    change = w.change
    assert change is not None  # change-review tasks exist only while a change is pending
    w.change = None
    payload = {"request_id": change.id, "comment": comment}
    if approved:
        diff = _diff(w, change.changes)
        w.emit(UpdateFormData(request_id=change.id, changes=change.changes, diff=diff))
        w.record("change_applied", task_id=task.id, actor=actor, data={**payload, "diff": diff})
        w.notify((change.requested_by,), "change_approved", payload)
    else:
        w.record("change_rejected", task_id=task.id, actor=actor, data=payload)
        w.notify((change.requested_by,), "change_rejected", payload)


def _diff(w: Work, changes: dict[str, object]) -> dict[str, object]:
    return {key: {"before": w.env.form.get(key), "after": value} for key, value in changes.items()}


def _reopen(w: Work, old: OpenTask, sla: Sla) -> None:
    open_task(
        w,
        node_id=old.node,
        kind=old.kind,
        assignee=old.assignee,
        reason=old.reason,
        title=_title(w, old.node),
        origin=old.origin,
        resume_for=old.resume_for,
        sla=sla,
    )


def _replace_assignee(w: Work, task: OpenTask, person: int, reason: dict[str, str | int]) -> None:
    node = w.approval_node(task.node)
    sla = node.sla if node is not None else DEFAULT_SLA if task.kind is TaskKind.CHANGE_REVIEW else None
    open_task(
        w,
        node_id=task.node,
        kind=task.kind,
        assignee=person,
        reason=reason,
        title=_title(w, task.node),
        origin=task.origin,
        resume_for=task.resume_for,
        sla=sla,
        due_at=None if sla else task.due_at,
    )


def _title(w: Work, node_id: str) -> str:
    node = w.approval_node(node_id) or w.flow.nodes.get(node_id)
    return (node.title or node.id) if node is not None else "流程变更申请"

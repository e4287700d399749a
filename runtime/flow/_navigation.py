"""Moving tokens through the graph until each rests where something is awaited.

`run` drains `Work.pending`: a token entering a node either passes through (start, cc,
branch, parallel, a skipped approval, a plugin that continues), rests (approval, task, wait,
plugin, join) or is consumed (end). Every step is bounded by `CompiledFlow.budget` moves.
A plugin that rejects the request ends it: the tokens still pending are dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from runtime.flow._approvers import ApproverPlan, fallback, plan_approvers
from runtime.flow._tasks import as_date, close_all, open_task, schedule_timer, stage_deadline
from runtime.flow._work import Work
from runtime.flow.assignees import resolve
from runtime.flow.effects import CallPlugin, Reason, TaskKind
from runtime.flow.errors import FlowLoopError
from runtime.flow.events import TimerKind
from runtime.flow.graph import (
    ApprovalMode,
    ApprovalNode,
    BranchNode,
    CcNode,
    EmptyPolicy,
    EndNode,
    JoinNode,
    ParallelNode,
    PluginNode,
    StartNode,
    TaskNode,
    TaskPurpose,
    WaitNode,
)
from runtime.flow.lifecycle import PHASE_RANK, TERMINAL, Status
from runtime.flow.plugins import (
    NOTICE_TEMPLATE,
    PluginAwait,
    PluginContext,
    PluginContinue,
    PluginDecision,
    PluginFail,
    PluginNotice,
    PluginReject,
    PluginTasks,
    PluginTimer,
    plugin_approval,
)
from runtime.flow.rules import AssigneeRule
from runtime.flow.state import ApprovalRun, Queued, Token


def run(w: Work) -> None:
    budget = w.flow.budget
    nodes = w.flow.nodes
    while w.pending:
        budget -= 1
        if budget < 0:
            raise FlowLoopError(f"tokens moved more than {w.flow.budget} times in one step")
        token = w.pending.popleft()
        node = nodes[token.node]
        _ENTER[type(node)](w, token, node)


def start(w: Work) -> None:
    w.pending.append(Token(id=w.new_id(), node=w.flow.start))


def enter_again(w: Work, token: Token) -> None:
    """Re-enter the node a token rests on (a resubmitted request); joins keep waiting."""
    if isinstance(w.flow.nodes[token.node], JoinNode):
        return
    del w.tokens[token.id]
    w.pending.append(token)


def move_on(w: Work, token: Token, target: str | None = None) -> None:
    """The token leaves its node along its single outgoing edge (or to `target`)."""
    w.tokens.pop(token.id, None)
    w.pending.append(Token(id=token.id, node=target or w.flow.next[token.node], frames=token.frames))


def complete_approval(w: Work, node_id: str, approvers: tuple[int, ...]) -> None:
    """An approval node is decided: remember who approved it, and move its token on."""
    run_ = w.runs.pop(node_id, None)
    approvals = dict(w.approvals)
    approvals.pop(node_id, None)
    approvals[node_id] = approvers
    w.approvals = approvals
    w.record("node_completed", node_id=node_id, data={"approvers": list(approvers)})
    token = w.tokens.get(run_.token) if run_ else None
    if token is not None:
        move_on(w, token)


def settle_status(w: Work, *, force: bool = False) -> None:
    """Set the status the resting tokens imply (archived when none is left).

    Explicit statuses (returned, terminal) stay unless `force` (a resubmission); a terminal
    status always stays (a plugin may reject the request in the step that submits it)."""
    if w.status in TERMINAL or (not force and w.status not in _RUNNING):
        return
    if not w.tokens:
        close_all(w)  # a change request still under review has nothing left to change
        w.set_status(Status.ARCHIVED)
        return
    phase = w.flow.phase
    earliest: Status | None = None
    for token in w.tokens.values():
        status = phase[token.node]
        if status is Status.IN_APPROVAL:
            earliest = status
            break
        if status is not None and (earliest is None or PHASE_RANK[status] < PHASE_RANK[earliest]):
            earliest = status
    if earliest is not None:
        w.set_status(earliest)


_RUNNING = frozenset(PHASE_RANK)


# -- entering each kind of node ------------------------------------------------------------


def _start(w: Work, token: Token, node: Any) -> None:
    move_on(w, token)


def _end(w: Work, token: Token, node: Any) -> None:
    w.tokens.pop(token.id, None)


def _cc(w: Work, token: Token, node: CcNode) -> None:
    people, reason = resolve(node.recipients, w.rule_input(node.id))
    w.notify(people, "cc", {"node_id": node.id, "reason": reason})
    w.record("cc_sent", node_id=node.id, data={"recipients": list(people), "reason": reason})
    move_on(w, token)


def _branch(w: Work, token: Token, node: BranchNode) -> None:
    conditions, default = w.flow.branches[node.id]
    form = w.env.form
    for condition, target in conditions:
        if condition.holds(form, w.initiator_view):
            w.record("branch_taken", node_id=node.id, data={"to": target, "condition": condition.source})
            move_on(w, token, target)
            return
    w.record("branch_taken", node_id=node.id, data={"to": default, "condition": None})
    move_on(w, token, default)


def _parallel(w: Work, token: Token, node: ParallelNode) -> None:
    w.tokens.pop(token.id, None)
    frames = (*token.frames, w.new_id())
    for target in w.flow.fork[node.id]:
        w.pending.append(Token(id=w.new_id(), node=target, frames=frames))


def _join(w: Work, token: Token, node: JoinNode) -> None:
    if not token.frames:  # not inside a split (a valid graph never does this)
        move_on(w, token)
        return
    w.tokens[token.id] = token
    frame = token.frames[-1]
    arrived = [t for t in w.tokens.values() if t.node == node.id and t.frames and t.frames[-1] == frame]
    if len(arrived) < w.flow.arms[w.flow.split_of[node.id]]:
        return
    for sibling in arrived:
        del w.tokens[sibling.id]
    merged = Token(id=w.new_id(), node=node.id, frames=token.frames[:-1])
    move_on(w, merged)


def _approval(w: Work, token: Token, node: ApprovalNode) -> None:
    _open_approval(w, token, node, _plan(w, node))


def _plan(w: Work, node: ApprovalNode) -> ApproverPlan:
    previous = w.approvals[next(reversed(w.approvals))] if w.approvals else None
    return plan_approvers(node, w.rule_input(node.id), previous)


def _open_approval(
    w: Work, token: Token, node: ApprovalNode, plan: ApproverPlan, plugin: PluginTasks | None = None
) -> None:
    """Open the node's tasks per `plan` (or complete it at once when skipped); `plugin`: the
    decision of the plugin node whose tasks these are."""
    sla = node.sla
    if token.sla_left is not None:  # resubmitted: the paused clock resumes
        left = token.sla_left
        sla = msgspec.structs.replace(sla, working_hours=left, urgent_hours=left)
        token = Token(id=token.id, node=token.node, frames=token.frames)
    w.tokens[token.id] = token
    w.runs[node.id] = ApprovalRun(node=node.id, token=token.id, reason=plan.reason, plugin=plugin)
    if plan.skipped is not None or plan.auto_approved:
        because = plan.skipped or "no_assignee"
        kind = "node_skipped" if plan.skipped else "auto_approved"
        w.record(kind, node_id=node.id, data={"because": because, "reason": plan.reason})
        complete_approval(w, node.id, plan.people)
        return
    people = plan.people
    if node.mode == ApprovalMode.SEQUENTIAL:
        queue = tuple(Queued(person=p) for p in people[1:])
        w.runs[node.id] = ApprovalRun(
            node=node.id, token=token.id, reason=plan.reason, queue=queue, plugin=plugin
        )
        people = people[:1]
    title = node.title or node.id
    for person in people:
        open_task(
            w,
            node_id=node.id,
            kind=TaskKind.APPROVAL,
            assignee=person,
            reason=plan.reason,
            title=title,
            sla=sla,
        )


def assign(w: Work, node_id: str, rule: AssigneeRule, policy: EmptyPolicy) -> tuple[tuple[int, ...], Reason]:
    """People for a step that cannot be skipped (work stage, change review): when nobody
    resolves they go to the process admins, or the policy "error" stops the step."""
    given = w.rule_input(node_id)
    people, reason = resolve(rule, given)
    if people:
        return people, reason
    return fallback(given, node_id, policy, reason)


def _task(w: Work, token: Token, node: TaskNode) -> None:
    people, reason = assign(w, node.id, node.owner, node.empty_policy)
    w.tokens[token.id] = token
    due_at = stage_deadline(w, node)
    kind = TaskKind.SUMMARY if node.purpose == TaskPurpose.SUMMARY else TaskKind.STAGE
    for person in people:
        open_task(
            w, node_id=node.id, kind=kind, assignee=person, reason=reason, title=node.title, due_at=due_at
        )


def _wait(w: Work, token: Token, node: WaitNode) -> None:
    calendar = w.env.calendar
    base = as_date(w.env.form.get(node.field))
    if base is None:
        w.record("wait_skipped", node_id=node.id, data={"because": "no_date", "field": node.field})
        move_on(w, token)
        return
    due_at = calendar.opening(calendar.add_working_days(base, node.working_days), w.now.tzinfo)
    if due_at <= w.now:
        w.record("wait_skipped", node_id=node.id, data={"because": "already_due", "due_at": due_at})
        move_on(w, token)
        return
    timer_id = schedule_timer(w, TimerKind.WAIT, due_at, node_id=node.id)
    w.tokens[token.id] = Token(id=token.id, node=token.node, frames=token.frames, wait=timer_id)
    w.record("node_entered", node_id=node.id, data={"until": due_at})


def _plugin(w: Work, token: Token, node: PluginNode) -> None:
    token = Token(id=token.id, node=token.node, frames=token.frames, sla_left=token.sla_left)
    plugin = w.env.plugins.get(node.plugin)
    decision: PluginDecision = PluginAwait()
    if plugin is not None:
        context = PluginContext(
            instance_id=w.state.instance_id,
            node_id=node.id,
            initiator=w.initiator,
            form=w.env.form,
            now=w.now,
            org=w.env.org,
            calendar=w.env.calendar,
            urgent=w.is_urgent,
        )
        try:
            decision = plugin.enter(node, context)
        except Exception as exc:  # a broken plugin stops its own token, never the whole step
            decision = PluginFail(reason=f"{type(exc).__name__}: {exc}"[:2_000])
    apply = _DECIDED.get(type(decision))
    if apply is None:
        reason = f"{node.plugin} returned {type(decision).__name__}, not a decision"
        _plugin_awaits(w, token, node, PluginFail(reason=reason))
        return
    apply(w, token, node, decision)


def _plugin_continues(w: Work, token: Token, node: PluginNode, decision: PluginContinue) -> None:
    _send_notices(w, node, decision.notices)
    data: dict[str, Any] = {"plugin": node.plugin, "note": decision.note}
    if decision.output:
        data["output"] = decision.output
    w.record("plugin_continued", node_id=node.id, data=data)
    move_on(w, token)


def _plugin_rejects(w: Work, token: Token, node: PluginNode, decision: PluginReject) -> None:
    w.record("plugin_rejected", node_id=node.id, data={"plugin": node.plugin, "note": decision.note})
    w.pending.clear()
    close_all(w)
    if w.status is not Status.IN_APPROVAL:  # submitted or resubmitted in this very step
        w.set_status(Status.IN_APPROVAL)
    w.set_status(Status.REJECTED)
    w.notify((w.initiator,), "rejected", {"node_id": node.id, "comment": decision.note})


def _plugin_tasks(w: Work, token: Token, node: PluginNode, decision: PluginTasks) -> None:
    approval = plugin_approval(node, decision)
    plan = _plan(w, approval)
    plan = plan._replace(reason={**decision.reason, **plan.reason, "plugin": node.plugin})
    w.record("plugin_tasks", node_id=node.id, data={"plugin": node.plugin, "note": decision.note})
    _open_approval(w, token, approval, plan, decision)


def _plugin_timer(w: Work, token: Token, node: PluginNode, decision: PluginTimer) -> None:
    due_at = decision.due_at
    if due_at.tzinfo is None or due_at <= w.now:
        reason = f"timer due at {due_at.isoformat()} is not after now"
        _plugin_awaits(w, token, node, PluginFail(reason=reason))
        return
    timer_id = schedule_timer(w, TimerKind.WAIT, due_at, node_id=node.id)
    w.tokens[token.id] = Token(id=token.id, node=token.node, frames=token.frames, wait=timer_id, timer=True)
    data = {"plugin": node.plugin, "until": due_at, "note": decision.note}
    w.record("plugin_timer", node_id=node.id, data=data)


def _plugin_awaits(w: Work, token: Token, node: PluginNode, decision: PluginAwait | PluginFail) -> None:
    if isinstance(decision, PluginAwait):
        _send_notices(w, node, decision.notices)
    call_id = w.new_id()
    w.emit(CallPlugin(call_id=call_id, plugin=node.plugin, node_id=node.id, config=node.config, key=w.key()))
    w.tokens[token.id] = Token(id=token.id, node=token.node, frames=token.frames, wait=call_id)
    data = {"plugin": node.plugin, "call_id": call_id}
    if isinstance(decision, PluginFail):
        w.record("plugin_failed", node_id=node.id, data={**data, "reason": decision.reason})
    else:
        w.record("node_entered", node_id=node.id, data=data)


def _send_notices(w: Work, node: PluginNode, notices: tuple[PluginNotice, ...]) -> None:
    for notice in notices:
        w.notify(notice.recipients, NOTICE_TEMPLATE, {"node_id": node.id, "note": notice.text})


_DECIDED: dict[type, Callable[[Work, Token, PluginNode, Any], None]] = {
    PluginContinue: _plugin_continues,
    PluginReject: _plugin_rejects,
    PluginTasks: _plugin_tasks,
    PluginTimer: _plugin_timer,
    PluginAwait: _plugin_awaits,
    PluginFail: _plugin_awaits,
}


_ENTER: dict[type, Callable[[Work, Token, Any], None]] = {
    StartNode: _start,
    EndNode: _end,
    CcNode: _cc,
    BranchNode: _branch,
    ParallelNode: _parallel,
    JoinNode: _join,
    ApprovalNode: _approval,
    TaskNode: _task,
    WaitNode: _wait,
    PluginNode: _plugin,
}

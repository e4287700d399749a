"""Who would approve a request, and by when, before it is submitted (预览流程).

`preview_route` walks the graph from the start with the draft's form data: branches are
decided as the engine would decide them, approvers are resolved with the same rules, skips
and empty policies, and each step is assumed to take its full time (an approval its SLA, in
order for a sequential one; a stage its planned days), starting when the previous one is
due. Parallel arms run side by side and their join waits for the latest. A plugin step is
shown as its registered plugin decides it now: tasks it would open as an approval step, a
step it would pass as no step at all. Nothing is created.
"""

from __future__ import annotations

import datetime as dt
from collections import deque

import msgspec

from runtime.flow._approvers import plan_approvers
from runtime.flow._compiled import compile_flow
from runtime.flow._tasks import as_date, sla_deadline, stage_due
from runtime.flow._work import initiator_attributes
from runtime.flow.assignees import RuleInput, resolve
from runtime.flow.effects import Reason
from runtime.flow.environment import Environment
from runtime.flow.errors import NoAssigneeError
from runtime.flow.graph import (
    ApprovalMode,
    ApprovalNode,
    BranchNode,
    CcNode,
    FlowGraph,
    JoinNode,
    ParallelNode,
    PluginNode,
    TaskNode,
    WaitNode,
)
from runtime.flow.plugins import (
    PluginContext,
    PluginContinue,
    PluginDecision,
    PluginFail,
    PluginReject,
    PluginTasks,
    plugin_approval,
)


class PlannedStep(msgspec.Struct, frozen=True, kw_only=True):
    """One step of the predicted route. `kind`: approval, stage, summary, cc, wait or plugin.

    `reasons[i]` says why `assignees[i]` was chosen. `skipped` names why an approval would be
    skipped (approver_is_initiator, approved_previous_step, no_assignee); `problem` is set
    when the step could not be resolved (no_assignee under the "error" policy).
    """

    node_id: str
    title: str
    kind: str
    assignees: tuple[int, ...] = ()
    reasons: tuple[Reason, ...] = ()
    due_at: dt.datetime | None = None
    due_is_estimate: bool = False
    skipped: str | None = None
    problem: str | None = None


def preview_route(graph: FlowGraph, env: Environment, now: dt.datetime) -> list[PlannedStep]:
    """The steps a request with `env.form` would go through, in the order they would start."""
    flow = compile_flow(graph)
    calendar = env.calendar
    view: dict[str, object] = {}

    def initiator_view() -> dict[str, object]:
        if not view:
            view.update(initiator_attributes(env))
        return view

    steps: list[PlannedStep] = []
    pending: deque[tuple[str, dt.datetime]] = deque([(flow.start, now)])
    arrivals: dict[str, list[dt.datetime]] = {}
    seen: set[str] = set()
    previous: tuple[int, ...] | None = None
    while pending:
        node_id, ready = pending.popleft()
        node = flow.nodes[node_id]
        if isinstance(node, JoinNode):
            arrived = arrivals.setdefault(node_id, [])
            arrived.append(ready)
            if len(arrived) == flow.arms[flow.split_of[node_id]]:
                pending.append((flow.next[node_id], max(arrived)))
            continue
        if node_id in seen:  # a loop back: the preview follows each step once
            continue
        seen.add(node_id)
        given = RuleInput(env.org, env.initiator, env.form, ())
        title = node.title or node.id
        if isinstance(node, ApprovalNode):
            step, ready, previous = _approval(node, given, previous, ready, env)
            steps.append(step)
        elif isinstance(node, TaskNode):
            people, reason = resolve(node.owner, given)
            due = stage_due(calendar, node, env.form, ready)
            kind = str(node.purpose)
            steps.append(_step(node_id, title, kind, people, reason, due, env))
            ready = max(ready, due)
        elif isinstance(node, CcNode):
            people, reason = resolve(node.recipients, given)
            steps.append(_step(node_id, title, "cc", people, reason, None, env))
        elif isinstance(node, WaitNode):
            base = as_date(env.form.get(node.field))
            due = None
            if base is not None:
                due = calendar.opening(calendar.add_working_days(base, node.working_days)).astimezone(
                    now.tzinfo
                )
                ready = max(ready, due)
            steps.append(_step(node_id, title, "wait", (), {}, due, env))
        elif isinstance(node, PluginNode):
            decision = _plugin_decision(node, env, now)
            if isinstance(decision, PluginTasks):
                approval = plugin_approval(node, decision)
                step, ready, previous = _approval(approval, given, previous, ready, env)
                why = tuple({**decision.reason, **r, "plugin": node.plugin} for r in step.reasons)
                steps.append(msgspec.structs.replace(step, reasons=why))
            elif isinstance(decision, PluginReject):
                steps.append(PlannedStep(node_id=node_id, title=title, kind="plugin", problem="rejects"))
                continue  # the request would end here
            elif not isinstance(decision, PluginContinue):
                problem = "plugin_failed" if isinstance(decision, PluginFail) else None
                steps.append(PlannedStep(node_id=node_id, title=title, kind="plugin", problem=problem))
        if isinstance(node, BranchNode):
            conditions, default = flow.branches[node_id]
            target = next((t for c, t in conditions if c.holds(env.form, initiator_view)), default)
            pending.append((target, ready))
        elif isinstance(node, ParallelNode):
            pending.extend((target, ready) for target in flow.fork[node_id])
        elif node_id in flow.next:
            pending.append((flow.next[node_id], ready))
    return steps


def _plugin_decision(node: PluginNode, env: Environment, now: dt.datetime) -> PluginDecision | None:
    """What the registered plugin would decide now (None when no plugin is registered)."""
    plugin = env.plugins.get(node.plugin)
    if plugin is None:
        return None
    context = PluginContext(
        instance_id="",
        node_id=node.id,
        initiator=env.initiator,
        form=env.form,
        now=now,
        org=env.org,
        calendar=env.calendar,
        urgent=env.urgent,
    )
    try:
        return plugin.enter(node, context)
    except Exception as exc:  # the preview shows the step as failing, as the engine would
        return PluginFail(reason=f"{type(exc).__name__}: {exc}")


def _approval(
    node: ApprovalNode,
    given: RuleInput,
    previous: tuple[int, ...] | None,
    ready: dt.datetime,
    env: Environment,
) -> tuple[PlannedStep, dt.datetime, tuple[int, ...] | None]:
    title = node.title or node.id
    try:
        plan = plan_approvers(node, given, previous)
    except NoAssigneeError:
        step = PlannedStep(node_id=node.id, title=title, kind="approval", problem="no_assignee")
        return step, ready, previous
    if plan.skipped or plan.auto_approved:
        skipped = plan.skipped or "no_assignee"
        step = PlannedStep(node_id=node.id, title=title, kind="approval", skipped=skipped)
        return step, ready, plan.people
    rounds = len(plan.people) if node.mode == ApprovalMode.SEQUENTIAL else 1
    due = ready
    for _ in range(rounds):
        due = sla_deadline(env.calendar, due, node.sla, urgent=env.urgent)[0]
    return _step(node.id, title, "approval", plan.people, plan.reason, due, env), due, plan.people


def _step(
    node_id: str,
    title: str,
    kind: str,
    people: tuple[int, ...],
    reason: Reason,
    due: dt.datetime | None,
    env: Environment,
) -> PlannedStep:
    estimate = due is not None and env.calendar.is_estimate(due)
    return PlannedStep(
        node_id=node_id,
        title=title,
        kind=kind,
        assignees=people,
        reasons=tuple(reason for _ in people),
        due_at=due,
        due_is_estimate=estimate,
    )

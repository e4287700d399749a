"""The hook point for plugin steps: a plugin node is opaque to the engine.

When a token enters a `plugin` node, the engine asks the plugin registered under the node's
`plugin` name (`Environment.plugins`) for a decision, from a frozen input and without any
I/O. The decisions, and what the engine does with them:

- `PluginContinue` -> the token moves straight on; `notices` go out as in-app notifications.
- `PluginReject` -> the request is rejected, as if an approver had rejected it.
- `PluginTasks` -> approval tasks open on the plugin node and are decided like those of an
  approval node (`mode`, `sla`, `empty_policy`, `actions`); the decision is kept in the node's
  `ApprovalRun`. Once they are approved the token moves on; a rejection rejects the request or
  returns it to the applicant (`on_reject`).
- `PluginTimer` -> the token waits for a timer due at `due_at`; then the plugin is asked again.
- `PluginAwait` -> a `CallPlugin` effect; the token waits for a `PluginResult` with the call's id.
- `PluginFail` -> as `PluginAwait`, with the failure recorded: the plugin's actor retries the
  step and opens an incident when its retries run out. A plugin whose `enter` raises counts as
  failed, so a broken plugin stops its own token only.

A name nobody registered behaves as `PluginAwait`: the work happens outside, in the plugin's
actor. A `PluginResult` with outcome "retry" asks the registered plugin again (an admin's retry,
or the actor handing back a decision only the engine can apply).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from typing import Annotated, Any, Protocol

from msgspec import Meta

from runtime.calendar import BusinessCalendar
from runtime.flow._structure import Structure
from runtime.flow.effects import Reason
from runtime.flow.graph import (
    DEFAULT_ACTIONS,
    Action,
    ApprovalMode,
    ApprovalNode,
    EmptyPolicy,
    FlowGraph,
    ParallelNode,
    PluginNode,
    Sla,
)
from runtime.flow.org import OrgDirectory
from runtime.flow.rules import AssigneeRule
from runtime.flow.shape import Shape

Note = Annotated[str, Meta(max_length=2_000)]

NOTICE_TEMPLATE = "plugin_notice"
"""The notification template of a plugin's notice; its text is the payload's "note"."""


class PluginContext(Shape, frozen=True, kw_only=True):
    """What a plugin may read when its node is entered. `org` and `calendar` are the
    environment's; `urgent` says whether the request is urgent (加急)."""

    instance_id: str
    node_id: str
    initiator: int
    form: Mapping[str, Any]
    now: dt.datetime
    org: OrgDirectory = OrgDirectory()
    calendar: BusinessCalendar | None = None
    urgent: bool = False


class PluginNotice(Shape, frozen=True, kw_only=True):
    """An in-app notification sent when the decision is applied (template `plugin_notice`)."""

    recipients: tuple[int, ...]
    text: Annotated[str, Meta(min_length=1, max_length=2_000)]


class PluginContinue(Shape, frozen=True, kw_only=True):
    """Nothing to wait for: the token moves on. `note` and `output` go into the timeline."""

    note: Note = ""
    output: dict[str, Any] = {}
    notices: tuple[PluginNotice, ...] = ()


class PluginReject(Shape, frozen=True, kw_only=True):
    """The request is rejected (已驳回); `note` tells the initiator why."""

    note: Note = ""


class RejectAction(enum.StrEnum):
    """What a rejection of a plugin's task does."""

    REJECT = "reject"  # the request ends, rejected
    RETURN = "return"  # back to the applicant (退回补充); resubmitting re-enters the node


class PluginTasks(Shape, frozen=True, kw_only=True):
    """Open approval tasks on the plugin node.

    `reason` is merged into the reason of each task ("why this approver"), e.g.
    {"because": "amount_over_threshold", "amount": "200000.00"}; `title` names the tasks (the
    node's title when empty); `note` goes into the timeline.
    """

    assignees: AssigneeRule
    mode: ApprovalMode = ApprovalMode.ANY
    sla: Sla = Sla()
    on_reject: RejectAction = RejectAction.REJECT
    empty_policy: EmptyPolicy = EmptyPolicy.TO_PROCESS_ADMIN
    actions: tuple[Action, ...] = DEFAULT_ACTIONS
    reason: Reason = {}
    title: Annotated[str, Meta(max_length=200)] = ""
    note: Note = ""


class PluginTimer(Shape, frozen=True, kw_only=True):
    """Wait until `due_at` (timezone-aware, after now); the plugin is then asked again."""

    due_at: dt.datetime
    note: Note = ""


class PluginAwait(Shape, frozen=True, kw_only=True):
    """Hand the work to the plugin's actor and wait for its `PluginResult`."""

    note: Note = ""
    notices: tuple[PluginNotice, ...] = ()


class PluginFail(Shape, frozen=True, kw_only=True):
    """The plugin could not decide (`reason`); the actor retries, then opens an incident."""

    reason: Annotated[str, Meta(max_length=2_000)]


PluginDecision = PluginContinue | PluginReject | PluginTasks | PluginTimer | PluginAwait | PluginFail


class StepPlugin(Protocol):
    """What the engine needs from a step plugin: a pure decision on entering its node."""

    def enter(self, node: PluginNode, context: PluginContext) -> PluginDecision: ...


def plugin_approval(node: PluginNode, tasks: PluginTasks) -> ApprovalNode:
    """The approval node a plugin's tasks behave as (same id, so tasks and runs key on it)."""
    return ApprovalNode(
        id=node.id,
        title=tasks.title or node.title,
        assignees=tasks.assignees,
        mode=tasks.mode,
        empty_policy=tasks.empty_policy,
        sla=tasks.sla,
        actions=tasks.actions,
    )


class Placement(Shape, frozen=True, kw_only=True):
    """Where a node sits among the approval steps, for design-time checks of plugin configs.

    `after`: approval (and plugin) nodes passed on every path before this node, in flow
    order. `alongside`: approval (and plugin) nodes on the other arms of the innermost
    parallel split this node is on.
    """

    after: tuple[str, ...] = ()
    alongside: tuple[str, ...] = ()


def placement(graph: FlowGraph, node_id: str) -> Placement:
    """Where `node_id` sits in `graph` (empty for an unknown or unreachable node)."""
    structure = Structure(graph)
    dominators = structure.dominators.get(node_id)
    if dominators is None:
        return Placement()
    steps = (ApprovalNode, PluginNode)
    after = tuple(
        n
        for n in structure.order
        if n != node_id and n in dominators and isinstance(structure.nodes[n], steps)
    )
    join_of = {split: join for join, split in structure.split_of.items()}
    splits = [
        s
        for s in dominators
        if s != node_id
        and isinstance(structure.nodes[s], ParallelNode)
        and s in join_of
        and join_of[s] not in dominators
    ]
    if not splits:
        return Placement(after=after)
    split = max(splits, key=lambda s: len(structure.dominators[s]))
    beside: list[str] = []
    for first in structure.successors(split):
        arm = structure.arm_reach(split, first, join_of[split])
        if node_id not in arm:
            beside.extend(n for n in structure.order if n in arm and isinstance(structure.nodes[n], steps))
    return Placement(after=after, alongside=tuple(beside))

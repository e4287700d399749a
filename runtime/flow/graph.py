"""The flow graph: the stored shape of a flow definition (nodes, edges, node settings).

A published `FlowGraph` is immutable; instances pin the version they started with. Nodes are
a tagged union on "type"; edges carry the conditions of a branch. Semantics:

- `start` -> exactly one per graph; `end` -> a token that reaches it is consumed, and the
  instance is archived once no token is left.
- `approval` -> tasks for the resolved assignees, decided by `mode` (或签 any / 会签 all /
  依次 sequential); `cc` -> a notification, the token moves straight on.
- `branch` -> the first outgoing edge whose CEL condition holds (in the order of `edges`),
  else the edge marked `is_default`. Conditions read `form.<field>` and `initiator.<attr>`.
- `parallel` -> one token per outgoing edge; the matching `join` (the nearest parallel split
  that dominates it) waits until every one of them has arrived.
- `task` -> a work stage with an owner and a planned duration (working days); a task with
  `purpose` "summary" is the summary report that puts the instance in awaiting_summary.
- `wait` -> until the date in `field` plus `working_days` working days (at opening time).
- `plugin` -> a step provided by a plugin, opaque here: `config` is handed to the plugin.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from runtime.flow.rules import AssigneeRule, DepartmentHeadRule, FieldKey
from runtime.flow.shape import Shape

GRAPH_SCHEMA_VERSION = 1

NodeId = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_\-]*$")]
Title = Annotated[str, Meta(max_length=200)]
Expression = Annotated[str, Meta(min_length=1, max_length=4_000)]
Hours = Annotated[float, Meta(ge=0, le=10_000)]


class ApprovalMode(enum.StrEnum):
    ANY = "any"  # 或签: the first decision decides the node
    ALL = "all"  # 会签: everyone must approve; one reject rejects
    SEQUENTIAL = "sequential"  # 依次: one at a time, in the order of the rule


class EmptyPolicy(enum.StrEnum):
    """What to do when the rule resolves to nobody."""

    AUTO_APPROVE = "auto_approve"
    TO_PROCESS_ADMIN = "to_process_admin"
    ERROR = "error"


class OverdueAction(enum.StrEnum):
    REMIND = "remind"
    ESCALATE_TO_MANAGER = "escalate_to_manager"
    AUTO_APPROVE = "auto_approve"
    AUTO_REJECT = "auto_reject"


class FieldAccess(enum.StrEnum):
    EDITABLE = "editable"
    READ_ONLY = "read_only"
    HIDDEN = "hidden"


class Action(enum.StrEnum):
    """What an approver may do on a task of the node."""

    APPROVE = "approve"
    REJECT = "reject"
    RETURN = "return"
    TRANSFER = "transfer"
    ADD_SIGNER = "add_signer"
    COMMENT = "comment"


DEFAULT_ACTIONS: tuple[Action, ...] = tuple(Action)


class TaskPurpose(enum.StrEnum):
    STAGE = "stage"  # an execution stage (执行阶段)
    SUMMARY = "summary"  # the summary report (总结报告); the instance awaits it


class ResubmitFrom(enum.StrEnum):
    """Where a request returned to the applicant resumes once resubmitted."""

    RETURNING_NODE = "returning_node"
    START = "start"


class Sla(Shape, frozen=True, kw_only=True):
    """Deadline of an approval task, its reminder and what happens when it is overdue.

    `working_hours`: time allowed, in working hours (16 = 2 working days of 8 hours).
    `urgent_hours`: time allowed when the request is urgent (加急), in calendar hours.
    `remind_before_hours`: a reminder this long before the deadline (working hours; calendar
    hours when urgent); None for no reminder. `overdue_after_hours`: the overdue action runs
    this long after the deadline (working hours; calendar hours when urgent).
    """

    working_hours: Annotated[float, Meta(gt=0, le=10_000)] = 16.0
    urgent_hours: Annotated[float, Meta(gt=0, le=10_000)] = 24.0
    remind_before_hours: Hours | None = 4.0
    overdue_action: OverdueAction = OverdueAction.REMIND
    overdue_after_hours: Hours = 0.0


class _Node(Shape, tag_field="type", frozen=True, kw_only=True):
    id: NodeId
    title: Title = ""


class StartNode(_Node, tag="start", frozen=True, kw_only=True):
    """Where a submitted request enters the flow."""


class EndNode(_Node, tag="end", frozen=True, kw_only=True):
    """Consumes a token; the instance is archived when no token is left."""


class ApprovalNode(_Node, tag="approval", frozen=True, kw_only=True):
    """An approval step (审批节点)."""

    assignees: AssigneeRule
    mode: ApprovalMode = ApprovalMode.ANY
    empty_policy: EmptyPolicy = EmptyPolicy.TO_PROCESS_ADMIN
    skip_if_initiator: bool = False
    skip_if_approved_previous: bool = False
    sla: Sla = Sla()
    field_permissions: dict[str, FieldAccess] = {}
    """Field key (or "table.column") -> access on this node; unlisted fields are read-only."""
    actions: tuple[Action, ...] = DEFAULT_ACTIONS


class CcNode(_Node, tag="cc", frozen=True, kw_only=True):
    """Notifies people (抄送) without waiting for them."""

    recipients: AssigneeRule


class BranchNode(_Node, tag="branch", frozen=True, kw_only=True):
    """An exclusive choice; the conditions are on the outgoing edges."""


class ParallelNode(_Node, tag="parallel", frozen=True, kw_only=True):
    """Starts every outgoing edge at once."""


class JoinNode(_Node, tag="join", frozen=True, kw_only=True):
    """Waits for every token of its parallel split."""


class TaskNode(_Node, tag="task", frozen=True, kw_only=True):
    """A work stage (执行阶段) or the summary report.

    The planned completion is `planned_days` working days after the day the stage starts,
    or after the date in `due_from_field` when set (the summary is due 3 working days after
    `end_date`), at closing time.
    """

    owner: AssigneeRule
    planned_days: Annotated[int, Meta(ge=0, le=3_650)] = 1
    purpose: TaskPurpose = TaskPurpose.STAGE
    due_from_field: FieldKey | None = None
    empty_policy: EmptyPolicy = EmptyPolicy.TO_PROCESS_ADMIN
    field_permissions: dict[str, FieldAccess] = {}


class WaitNode(_Node, tag="wait", frozen=True, kw_only=True):
    """Waits until the date in `field` plus `working_days` working days, at opening time."""

    field: FieldKey
    working_days: Annotated[int, Meta(ge=-3_650, le=3_650)] = 0


class PluginNode(_Node, tag="plugin", frozen=True, kw_only=True):
    """A step provided by a plugin, named by `plugin`; `config` is the plugin's business."""

    plugin: Annotated[str, Meta(min_length=1, max_length=100)]
    config: dict[str, Any] = {}


Node = (
    StartNode
    | EndNode
    | ApprovalNode
    | CcNode
    | BranchNode
    | ParallelNode
    | JoinNode
    | TaskNode
    | WaitNode
    | PluginNode
)

WAITING_NODES = (ApprovalNode, TaskNode, WaitNode, PluginNode)
"""Node types where a token can rest (besides a join waiting for its siblings)."""


class Edge(Shape, frozen=True, kw_only=True):
    """A directed edge; on a branch, `condition` (CEL) or `is_default` chooses it."""

    source: NodeId = msgspec.field(name="from")
    target: NodeId = msgspec.field(name="to")
    condition: Expression | None = None
    is_default: bool = False


class FlowGraph(Shape, frozen=True, kw_only=True):
    """One version of a flow definition.

    `change_approvers` decide change requests (流程变更申请) during execution;
    `resubmit_from` says where a request returned to the applicant resumes.
    """

    key: Annotated[str, Meta(min_length=1, max_length=64)]
    version: Annotated[int, Meta(ge=1)] = 1
    schema_version: int = GRAPH_SCHEMA_VERSION
    title: Title = ""
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    change_approvers: AssigneeRule = DepartmentHeadRule()
    resubmit_from: ResubmitFrom = ResubmitFrom.RETURNING_NODE

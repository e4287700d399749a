"""The state of one instance: small, and independent of how long its history is.

Invariants (checked by the stateful tests):
- the state holds only what is open now: tokens, open tasks, one run per active approval
  node, the approvers of each approval node in the current round, the pending change
  request. History lives in the event log; 50 returns leave the state the size of one.
- every token rests on a node where something is awaited: an approval run with open tasks
  (or queued / suspended ones; a plugin node's tasks run the same way), a work stage with an
  open task, a wait timer, a plugin call or timer, or a join waiting for its siblings. No two
  tokens share an id.
- an instance in a terminal status has no token, no open task and no run.
- `version` grows by one per applied event; the service uses it for optimistic locking.
- `seq` numbers the ids the engine mints (`Environment.new_id(instance_id, seq)`).
"""

from __future__ import annotations

import datetime as dt
import enum

from runtime.flow.effects import Reason, TaskKind
from runtime.flow.lifecycle import Status
from runtime.flow.plugins import PluginTasks
from runtime.flow.shape import Shape

STATE_SCHEMA_VERSION = 1


class TaskOrigin(enum.StrEnum):
    """How a task came to exist on its node."""

    RULE = "rule"  # the node's assignee rule (or a transfer/escalation of such a task)
    ALONGSIDE = "alongside"  # added to decide together with the adder
    BEFORE = "before"  # added to decide before the adder (`resume_for`)
    AFTER = "after"  # added to decide after the adder approved


class Token(Shape, frozen=True, kw_only=True, omit_defaults=True):
    """A thread of control at a node. `frames`: the parallel splits it is inside, innermost last.

    `wait` is the timer (wait node) or plugin call (plugin node) the token waits for; `timer`
    says that a plugin node's `wait` is a timer (`PluginTimer`) rather than a call.
    `sla_left`: while the request is back with the applicant, the hours that were left on the
    approval step's deadline (working hours; calendar hours if urgent); the clock resumes
    from there when the request is resubmitted.
    """

    id: str
    node: str
    frames: tuple[str, ...] = ()
    wait: str | None = None
    sla_left: float | None = None
    timer: bool = False


class OpenTask(Shape, frozen=True, kw_only=True, omit_defaults=True):
    id: str
    node: str
    kind: TaskKind
    assignee: int
    reason: Reason
    created_at: dt.datetime
    due_at: dt.datetime | None = None
    origin: TaskOrigin = TaskOrigin.RULE
    resume_for: int | None = None
    """For a BEFORE task: the person whose task comes back once every such signer approved."""
    timers: tuple[str, ...] = ()


class Queued(Shape, frozen=True, kw_only=True, array_like=True, omit_defaults=True):
    """A person still to come in a sequential approval; `reason` None means the run's reason."""

    person: int
    reason: Reason | None = None


class ApprovalRun(Shape, frozen=True, kw_only=True, omit_defaults=True):
    """An approval node being decided: who approved so far, who is still to come."""

    node: str
    token: str
    reason: Reason
    queue: tuple[Queued, ...] = ()
    approved: tuple[int, ...] = ()
    suspended: tuple[OpenTask, ...] = ()
    """Tasks closed by an add-signer "before"; reopened once those signers approved."""
    plugin: PluginTasks | None = None
    """On a plugin node: the plugin's decision, which the tasks follow as an approval node's."""


class PendingChange(Shape, frozen=True, kw_only=True):
    id: str
    changes: dict[str, object]
    requested_by: int
    reason: str


class InstanceState(Shape, frozen=True, kw_only=True, omit_defaults=True):
    """See the module docstring for the invariants. Build a fresh one with `new_instance`."""

    instance_id: str
    schema_version: int
    status: Status = Status.DRAFT
    version: int = 0
    seq: int = 0
    urgent: bool = False
    tokens: tuple[Token, ...] = ()
    tasks: tuple[OpenTask, ...] = ()
    runs: tuple[ApprovalRun, ...] = ()
    approvals: dict[str, tuple[int, ...]] = {}
    """Approval node -> who approved it, in the current round, in completion order."""
    chosen: dict[str, tuple[int, ...]] = {}
    """Node -> the people the initiator chose for it (发起人自选)."""
    submitted_at: dt.datetime | None = None
    last_urged_at: dt.datetime | None = None
    change: PendingChange | None = None


def new_instance(instance_id: str) -> InstanceState:
    """The state of a draft that has not been submitted yet."""
    return InstanceState(instance_id=instance_id, schema_version=STATE_SCHEMA_VERSION)

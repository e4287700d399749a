"""Events: everything that can happen to an instance (a tagged union on "type").

An event is what the service feeds `advance` and what it appends to the instance's event log;
replaying the log from `new_instance` rebuilds the state. `actor` is the person acting, None
for the system (the scheduler firing a timer, a plugin reporting back).
"""

from __future__ import annotations

import enum
from typing import Annotated, Any

from msgspec import Meta

from runtime.flow.shape import Shape

Note = Annotated[str, Meta(max_length=2_000)]
RequiredNote = Annotated[str, Meta(min_length=1, max_length=2_000)]
TaskId = Annotated[str, Meta(min_length=1, max_length=100)]


class SignerPosition(enum.StrEnum):
    """Where added signers (加签) go relative to the person adding them."""

    BEFORE = "before"  # they decide first, then the task comes back to the adder
    AFTER = "after"  # the adder approves now, and they decide afterwards
    ALONGSIDE = "alongside"  # they decide together with the adder, per the node's mode


class TimerKind(enum.StrEnum):
    REMINDER = "reminder"
    OVERDUE = "overdue"
    WAIT = "wait"


class PluginOutcome(enum.StrEnum):
    CONTINUE = "continue"
    REJECT = "reject"
    RETRY = "retry"  # ask the (registered) plugin again, as when its node was entered


class _Event(Shape, tag_field="type", frozen=True, kw_only=True):
    actor: int | None = None


class Submit(_Event, tag="submit", frozen=True, kw_only=True):
    """Submit a draft, or resubmit a returned request. `chosen`: node id -> people (发起人自选)."""

    urgent: bool = False
    chosen: dict[str, tuple[int, ...]] = {}


class Approve(_Event, tag="approve", frozen=True, kw_only=True):
    task_id: TaskId
    comment: Note = ""


class Reject(_Event, tag="reject", frozen=True, kw_only=True):
    """Reject: the request ends (or, on a change-review task, the change request does)."""

    task_id: TaskId
    comment: Note = ""


class Return(_Event, tag="return", frozen=True, kw_only=True):
    """Send back with a note saying what to add (驳回并补充说明): to the applicant, or to `to_node`."""

    task_id: TaskId
    note: RequiredNote
    to_node: str | None = None


class Transfer(_Event, tag="transfer", frozen=True, kw_only=True):
    task_id: TaskId
    to: int
    note: Note = ""


class AddSigner(_Event, tag="add_signer", frozen=True, kw_only=True):
    task_id: TaskId
    people: Annotated[tuple[int, ...], Meta(min_length=1, max_length=50)]
    position: SignerPosition
    note: Note = ""


class Withdraw(_Event, tag="withdraw", frozen=True, kw_only=True):
    note: Note = ""


class Urge(_Event, tag="urge", frozen=True, kw_only=True):
    """催办: notify the current assignees; at most once an hour."""

    note: Note = ""


class MarkUrgent(_Event, tag="mark_urgent", frozen=True, kw_only=True):
    """加急: open approval tasks are due within their node's urgent hours."""


class Comment(_Event, tag="comment", frozen=True, kw_only=True):
    text: RequiredNote
    task_id: str | None = None


class TimerFired(_Event, tag="timer_fired", frozen=True, kw_only=True):
    """A due timer, fired by the scheduler. A timer that is no longer active is ignored."""

    timer_id: Annotated[str, Meta(min_length=1, max_length=120)]
    kind: TimerKind


class TaskCompleted(_Event, tag="task_completed", frozen=True, kw_only=True):
    """A work stage is done: the execution record's result, exception note and photos."""

    task_id: TaskId
    result: Annotated[str, Meta(max_length=200)] = "done"
    note: Note = ""
    attachments: tuple[str, ...] = ()


class SummarySubmitted(_Event, tag="summary_submitted", frozen=True, kw_only=True):
    """The summary report; `task_id` may be omitted when the actor has one summary task."""

    task_id: str | None = None
    note: Note = ""
    attachments: tuple[str, ...] = ()


class PluginResult(_Event, tag="plugin_result", frozen=True, kw_only=True):
    call_id: Annotated[str, Meta(min_length=1, max_length=120)]
    outcome: PluginOutcome = PluginOutcome.CONTINUE
    output: dict[str, Any] = {}
    note: Note = ""


class ChangeRequestSubmit(_Event, tag="change_request_submit", frozen=True, kw_only=True):
    """流程变更申请: new values for fields, applied only once approved."""

    changes: Annotated[dict[str, Any], Meta(min_length=1)]
    reason: RequiredNote


class ChangeRequestCancel(_Event, tag="change_request_cancel", frozen=True, kw_only=True):
    note: Note = ""


class Archive(_Event, tag="archive", frozen=True, kw_only=True):
    """A process admin archives an executing request early; open work is closed."""

    note: Note = ""


class Cancel(_Event, tag="cancel", frozen=True, kw_only=True):
    """A process admin stops the request."""

    reason: RequiredNote


Event = (
    Submit
    | Approve
    | Reject
    | Return
    | Transfer
    | AddSigner
    | Withdraw
    | Urge
    | MarkUrgent
    | Comment
    | TimerFired
    | TaskCompleted
    | SummarySubmitted
    | PluginResult
    | ChangeRequestSubmit
    | ChangeRequestCancel
    | Archive
    | Cancel
)


def event_type(event: Event) -> str:
    """The "type" tag of an event, as `lifecycle.ACCEPTS` lists it."""
    return type(event).__struct_config__.tag  # type: ignore[return-value]

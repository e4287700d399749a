"""Effects: what the service must do after `advance` decides (a tagged union on "type").

The service applies them in the same transaction as the new state: task rows, timer rows,
outbox rows for notifications and plugin calls, event-log rows. Effects that leave the
database carry `key`, an idempotency key unique per instance, so a retried delivery is
recognised.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from runtime.flow.events import TimerKind
from runtime.flow.lifecycle import Status
from runtime.flow.shape import Shape

Reason = dict[str, str | int]
"""Why a person got a task, e.g. {"rule": "department_head", "department": "市场部"}."""


class TaskKind(enum.StrEnum):
    APPROVAL = "approval"
    STAGE = "stage"
    SUMMARY = "summary"
    CHANGE_REVIEW = "change_review"


class TaskOutcome(enum.StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"
    RETURNED = "returned"
    TRANSFERRED = "transferred"
    ESCALATED = "escalated"
    SUSPENDED = "suspended"  # waits for signers added before (前加签); comes back as a new task
    DECIDED_BY_OTHER = "decided_by_other"  # 或签: another approver decided
    COMPLETED = "completed"
    CANCELLED = "cancelled"  # the request ended another way (rejected, withdrawn, cancelled, returned)


class _Effect(Shape, tag_field="type", frozen=True, kw_only=True):
    pass


class CreateTask(_Effect, tag="create_task", frozen=True, kw_only=True):
    """A new task. It implies the "task_assigned" notification to `assignee`, keyed by `task_id`
    (the commonest notification, so it is not repeated as a `Notify`)."""

    task_id: str
    node_id: str
    kind: TaskKind
    assignee: int
    reason: Reason
    title: str = ""
    due_at: dt.datetime | None = None
    due_is_estimate: bool = False
    """True when the due date lies in a year without holiday data (weekends only)."""


class CloseTask(_Effect, tag="close_task", frozen=True, kw_only=True):
    task_id: str
    outcome: TaskOutcome
    actor: int | None = None


class SetTaskDue(_Effect, tag="set_task_due", frozen=True, kw_only=True):
    """An open task's deadline moved (the request was marked urgent)."""

    task_id: str
    due_at: dt.datetime


class ScheduleTimer(_Effect, tag="schedule_timer", frozen=True, kw_only=True):
    timer_id: str
    kind: TimerKind
    due_at: dt.datetime
    key: str
    task_id: str | None = None
    node_id: str | None = None


class CancelTimer(_Effect, tag="cancel_timer", frozen=True, kw_only=True):
    timer_id: str


class Notify(_Effect, tag="notify", frozen=True, kw_only=True):
    recipients: tuple[int, ...]
    template: str
    payload: dict[str, Any]
    key: str


class CallPlugin(_Effect, tag="call_plugin", frozen=True, kw_only=True):
    call_id: str
    plugin: str
    node_id: str
    config: dict[str, Any]
    key: str


class SetStatus(_Effect, tag="set_status", frozen=True, kw_only=True):
    status: Status
    previous: Status


class RecordEvent(_Effect, tag="record_event", frozen=True, kw_only=True):
    """A derived fact for the timeline and analytics (node entered, skipped, completed, ...)."""

    kind: str
    node_id: str | None = None
    task_id: str | None = None
    actor: int | None = None
    data: dict[str, Any] = {}


class UpdateFormData(_Effect, tag="update_form_data", frozen=True, kw_only=True):
    """An approved change request: write `changes` into the instance's form data."""

    request_id: str
    changes: dict[str, Any]
    diff: dict[str, Any]
    """field -> {"before": ..., "after": ...}, for the record."""


Effect = (
    CreateTask
    | CloseTask
    | SetTaskDue
    | ScheduleTimer
    | CancelTimer
    | Notify
    | CallPlugin
    | SetStatus
    | RecordEvent
    | UpdateFormData
)

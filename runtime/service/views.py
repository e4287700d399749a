"""What commands and queries return: the response shapes of the instance API.

Times are UTC. Person references carry the name so that a client needs no second look-up.
`reason` is the engine's record of why a person got a task ({"rule": "department_head",
"department": "市场部"}); `why` words it in the reader's language ("市场部负责人").
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from runtime.flow import Status
from runtime.flow.lifecycle import LABELS_ZH

_LABELS_EN = {
    Status.DRAFT: "Draft",
    Status.IN_APPROVAL: "In approval",
    Status.RETURNED: "Returned for more information",
    Status.EXECUTING: "Executing",
    Status.AWAITING_SUMMARY: "Awaiting summary",
    Status.ARCHIVED: "Archived",
    Status.REJECTED: "Rejected",
    Status.WITHDRAWN: "Withdrawn",
    Status.CANCELLED: "Cancelled",
}


def status_label(status: str, locale: str) -> str:
    known = Status(status)
    return _LABELS_EN[known] if locale == "en" else LABELS_ZH[known]


class _View(msgspec.Struct, frozen=True, kw_only=True):
    pass


class PersonRef(_View, frozen=True, kw_only=True):
    id: int
    name: str


class CommandResult(_View, frozen=True, kw_only=True):
    """The instance after a command. `row_version` grows with every change."""

    id: int
    number: str
    status: str
    current_step: str
    row_version: int


class TaskView(_View, frozen=True, kw_only=True):
    """An open task of an instance. `actions`: what the viewer may do on it (their own tasks)."""

    id: int
    node_id: str
    title: str
    kind: str
    assignee: PersonRef
    created_at: dt.datetime
    due_at: dt.datetime | None
    overdue: bool
    reason: dict[str, Any]
    why: str
    actions: list[str] = []


class TimelineEntry(_View, frozen=True, kw_only=True):
    """One row of the event log: the command, a derived fact (node completed, branch taken,
    status changed, task created, ...), with who did it."""

    seq: int
    at: dt.datetime
    kind: str
    actor: PersonRef | None
    node_id: str | None
    node_title: str | None
    data: dict[str, Any]


class InstanceDetail(_View, frozen=True, kw_only=True):
    """A request as one viewer may see it.

    `data` went through the viewer's field mask (hidden fields left out) and sensitive values
    are "****" unless the viewer may see them. `field_access` gives every field's access for
    the viewer (editable / read_only / hidden). `actions` are the instance commands the viewer
    may send now (submit, update_data, withdraw, urge, mark_urgent, comment, progress,
    change_request, summary).
    """

    id: int
    number: str
    title: str
    template: str
    template_name: str
    template_version: int
    status: str
    status_label: str
    urgent: bool
    current_step: str
    initiator: PersonRef
    department_id: int | None
    created_at: dt.datetime
    submitted_at: dt.datetime | None
    updated_at: dt.datetime
    closed_at: dt.datetime | None
    row_version: int
    data: dict[str, Any]
    field_access: dict[str, str]
    change_pending: bool
    tasks: list[TaskView]
    timeline: list[TimelineEntry]
    actions: list[str]


class InstanceRow(_View, frozen=True, kw_only=True):
    """A request in a list. `template_version`: the version it is pinned to."""

    id: int
    number: str
    title: str
    template: str
    template_name: str
    template_version: int
    status: str
    status_label: str
    current_step: str
    urgent: bool
    initiator: PersonRef
    created_at: dt.datetime
    submitted_at: dt.datetime | None
    updated_at: dt.datetime


class InstancePage(_View, frozen=True, kw_only=True):
    items: list[InstanceRow]
    total: int
    page: int
    page_size: int


class RequestProgress(_View, frozen=True, kw_only=True):
    """Where a request in a list stands: its open tasks and the events that move its steps
    (tasks created, steps completed or skipped, branches taken, decisions), oldest first."""

    instance_id: int
    tasks: list[TaskView]
    steps: list[TimelineEntry]


class CopyRow(_View, frozen=True, kw_only=True):
    """A request a copy step (抄送) sent to the reader, at `copied_at`."""

    instance_id: int
    number: str
    title: str
    template: str
    template_name: str
    status: str
    status_label: str
    initiator: PersonRef
    copied_at: dt.datetime


class CopyPage(_View, frozen=True, kw_only=True):
    items: list[CopyRow]
    total: int
    page: int
    page_size: int


class InboxFacets(_View, frozen=True, kw_only=True):
    """What the inbox can be filtered by: the templates and the applicants of one tab's tasks."""

    templates: list[str]
    applicants: list[PersonRef]


class TaskRow(_View, frozen=True, kw_only=True):
    """A task in someone's inbox, with its request. `overdue`: open and past its due time."""

    id: int
    instance_id: int
    number: str
    instance_title: str
    template: str
    title: str
    kind: str
    node_id: str
    status: str
    outcome: str | None
    urgent: bool
    overdue: bool
    created_at: dt.datetime
    due_at: dt.datetime | None
    closed_at: dt.datetime | None
    initiator: PersonRef
    reason: dict[str, Any]
    why: str


class TaskPage(_View, frozen=True, kw_only=True):
    items: list[TaskRow]
    total: int
    page: int
    page_size: int


class Counts(_View, frozen=True, kw_only=True):
    """The badges of the navigation."""

    open_tasks: int
    overdue_tasks: int
    drafts: int
    returned: int


class RouteStepView(_View, frozen=True, kw_only=True):
    """One predicted step: who would decide (and why), by when. `skipped`/`problem` as in
    `runtime.flow.PlannedStep`."""

    node_id: str
    title: str
    kind: str
    assignees: list[PersonRef]
    why: list[str]
    reasons: list[dict[str, Any]]
    due_at: dt.datetime | None
    due_is_estimate: bool
    skipped: str | None
    problem: str | None


class RoutePreview(_View, frozen=True, kw_only=True):
    steps: list[RouteStepView]
    warnings: list[str]
